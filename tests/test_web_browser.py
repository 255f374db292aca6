"""The web page in a real browser: headless Debian Chromium driven by Playwright.

Uploads a marked file and an unmarked one through the page and asserts on the rendered verdict,
then saves a screenshot (under the test's tmp dir; also to docs/screenshots/verify-page.png when
FOLEYSEAL_SAVE_SCREENSHOT=1). CI installs ``chromium`` and ``chromium-driver`` (see .ci/run);
the test is skipped only where /usr/bin/chromium is absent.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.service import ServiceConfig
from tests import _verify_fixtures
from tests._verify_fixtures import VerifyEnv, running_server

# The session fixture, held by this module (which therefore builds its own): assigned, since an
# imported fixture reads to pyflakes as an unused import that each test's argument redefines.
verify_env = _verify_fixtures.verify_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium (CI installs it)"
)


@pytest.fixture(scope="module")
def server(verify_env: VerifyEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service's base URL (one real server for the module: starting one takes seconds)."""
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path_factory.mktemp("web-up"), workers=1,
                           rate_limit_per_min=0)
    with running_server(config) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageLog:
    """What went wrong while a page was open: script errors, console errors, failed requests and
    answers of 400 or more (each as one line)."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for."""


def wait_for_text(page: Any, selector: str, wanted: Callable[[str], bool], timeout_s: float = 60.0) -> str:
    """The text of ``selector`` once ``wanted(text)`` holds, polled from here: Playwright's
    ``wait_for_function`` with a string polls through ``eval``, which the page's Content Security
    Policy refuses (an EvalError whenever the condition did not already hold)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not wanted(text := page.inner_text(selector)):
        assert time.monotonic() < deadline, f"{selector} still reads {text!r}"
        page.wait_for_timeout(20)
    return text


def open_page(browser: Any, *, width: int = 1100, height: int = 900) -> tuple[Any, PageLog]:
    """A new page in a fresh context (no shared cache or state) and its :class:`PageLog`."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    log = PageLog()
    page.on("pageerror", lambda e: log.errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: log.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: log.errors.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: log.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: log.requests.append(r.url))
    return page, log


def test_page_verifies_marked_and_unmarked_files(
    verify_env: VerifyEnv, server: str, browser: Any, tmp_path: Path
) -> None:
    shot = tmp_path / "verify-page.png"
    page, log = open_page(browser)
    try:
        page.goto(server + "/")
        assert page.title() == "FoleySeal: verify audio"
        # Accessible: the file input has a label, the drop zone is keyboard-focusable.
        file_input = page.get_by_label("Audio or video file")
        assert page.get_attribute("#drop", "tabindex") == "0"

        file_input.set_input_files(str(verify_env.files["marked_wav"]))
        page.wait_for_selector('#verdict[data-verdict="credentials_valid"]', timeout=60_000)
        assert page.inner_text("#verdict-code") == "credentials_valid"
        assert page.inner_text("#verdict-title") == "Valid Content Credentials"
        assert "AI-generated" in page.inner_text("#explanation")
        creds = page.inner_text("#credentials")
        assert "FoleySeal Development Signer" in creds and "Trusted" in creds
        assert "a brook with water drops" in creds  # the prompt from the generation record
        assert page.locator("#timeline svg rect.segment").count() == 1
        assert "Watermarked: 0:00.0" in page.inner_text("#timeline-caption")
        page.screenshot(path=str(shot), full_page=True)

        file_input.set_input_files(str(verify_env.files["unmarked"]))
        page.wait_for_selector('#verdict[data-verdict="no_evidence"]', timeout=60_000)
        assert page.inner_text("#verdict-title") == "No provenance evidence found"
        assert "does NOT mean the audio was made by a person" in page.inner_text("#explanation")
        assert page.locator("#timeline svg rect.segment").count() == 0

        junk = tmp_path / "junk.wav"
        junk.write_bytes(b"definitely not audio\n" * 30)
        file_input.set_input_files(str(junk))
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        assert "junk.wav" in page.inner_text("#error")
        assert page.get_attribute("#verdict", "data-verdict") == "error"
        assert [e for e in log.errors if "422" not in e] == []  # junk.wav is answered 422, as it should
    finally:
        page.context.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("FOLEYSEAL_SAVE_SCREENSHOT") == "1":
        dest = REPO / "docs" / "screenshots" / "verify-page.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)


def test_the_page_loads_with_its_icon_and_no_failed_request(server: str, browser: Any) -> None:
    # Without an icon of its own, the browser asked for /favicon.ico on every load: a 404 logged.
    page, log = open_page(browser)
    try:
        with page.expect_response(lambda r: "favicon" in r.url) as icon:
            page.goto(server + "/")
        assert (icon.value.url, icon.value.status) == (server + "/static/favicon.svg", 200)
        assert icon.value.headers["content-type"].startswith("image/svg+xml")
        page.wait_for_load_state("networkidle")
        assert log.errors == []
    finally:
        page.context.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_page_has_no_sideways_scroll_and_readable_lists_on_a_phone_or_desktop(
    verify_env: VerifyEnv, server: str, browser: Any, tmp_path: Path, width: int
) -> None:
    # At 375 px the verdict list's terms (credentials_recovered_by_watermark) squeezed each meaning
    # into a 16 px column, and the verdict code stuck out of the page by a pixel. A long file name
    # without spaces ran the status and file lines past the card at any width.
    long_name = tmp_path / ("a" * 180 + ".mp3")
    shutil.copyfile(verify_env.files["mp3_64"], long_name)
    page, _ = open_page(browser, width=width, height=800)
    try:
        page.goto(server + "/")
        page.set_input_files("#file", str(long_name))
        page.wait_for_selector('#verdict[data-verdict="credentials_recovered_by_watermark"]', timeout=60_000)
        # The stored manifest of a copy cannot match the copy's bytes: that is no "Invalid" under
        # a green verdict, but a valid, trusted signature over the original.
        trust = page.inner_text("#credentials")
        assert "Invalid" not in trust and "valid and trusted" in trust and "copy" in trust, trust
        layout = page.evaluate("""() => {
            const width = document.documentElement.clientWidth;
            const wider = [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > width + 0.5)
                .map((e) => `${e.tagName.toLowerCase()}#${e.id} ${e.getBoundingClientRect().right}`);
            const meanings = [...document.querySelectorAll("dl.facts dd")].map((d) => d.getBoundingClientRect().width);
            return {width, scrollWidth: document.documentElement.scrollWidth, wider, narrowest: Math.min(...meanings)};
        }""")
        assert layout["width"] == width and layout["scrollWidth"] == width, layout
        assert layout["wider"] == [], layout
        assert layout["narrowest"] >= 200, layout  # px: a meaning spans (nearly) the card
        # the timeline's time labels were drawn in an 800-unit view box: 6 px tall on a phone
        labels = page.evaluate("""() => [...document.querySelectorAll("#timeline svg text")]
            .map((t) => { const r = t.getBoundingClientRect(); return [r.left, r.right, r.height]; })""")
        assert len(labels) >= 3 and min(h for _, _, h in labels) >= 12, labels
        assert all(a[1] < b[0] for a, b in zip(labels, labels[1:])), labels  # side by side, not overlapping
    finally:
        page.context.close()


def test_the_page_shows_the_servers_upload_limit_when_its_store_is_down(server: str, browser: Any) -> None:
    """/v1/health answers 503 while the store is down, with the same body; the page then kept
    its built-in limit (500 MiB) rather than the server's."""
    page, _ = open_page(browser)
    try:
        page.goto(server + "/")
        page.wait_for_load_state("networkidle")
        default = page.inner_text("#max-size")
        body = '{"status": "degraded", "store": "unavailable", "max_upload_bytes": 1048576}'
        page.route("**/v1/health", lambda route: route.fulfill(status=503, content_type="application/json", body=body))
        page.goto(server + "/")
        wait_for_text(page, "#max-size", lambda t: "1" in t)
        assert page.inner_text("#max-size") == "1.0 MiB" != default
    finally:
        page.context.close()


class HeldVerifications:
    """Holds the page's ``POST /v1/verify`` requests numbered in ``hold`` (1 = the first sent
    after this was set up) until the test answers them (``page.route``); the others go through
    to the server."""

    def __init__(self, page: Any, hold: Collection[int] = (1,)) -> None:
        self.page = page
        self.routes: list[Any] = []
        self._hold = set(hold)
        self._sent = 0
        page.route("**/v1/verify", self._handle)

    def _handle(self, route: Any) -> None:
        self._sent += 1
        if self._sent in self._hold:
            self.routes.append(route)
        else:
            route.continue_()

    def wait(self, n: int, timeout_s: float = 30.0) -> Any:
        """The ``n``-th held route (1-based, in the order held), once the page has sent it."""
        import time

        deadline = time.monotonic() + timeout_s
        while len(self.routes) < n:
            assert time.monotonic() < deadline, f"the page sent {len(self.routes)} held request(s), not {n}"
            self.page.wait_for_timeout(20)
        return self.routes[n - 1]


def _fake_report(verdict: str, file: str) -> str:
    """A minimal report body, as /v1/verify answers it."""
    import json

    return json.dumps({"verdict": verdict, "title": verdict, "explanation": "", "file": file, "size_bytes": 1,
                       "container": None, "credentials": None, "watermark": [], "store": [], "notes": []})


def test_a_newer_choice_aborts_the_running_verification(verify_env: VerifyEnv, server: str, browser: Any) -> None:
    # While A ran, choosing B started a second request; whichever answered last was shown (A's
    # verdict under B's name), and A's end re-enabled Verify while B still ran.
    from playwright.sync_api import Error as PlaywrightError

    page, _ = open_page(browser)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.failure or "") if "/v1/verify" in r.url else None)
    try:
        page.goto(server + "/")
        held = HeldVerifications(page)
        page.set_input_files("#file", str(verify_env.files["unmarked"]))
        first = held.wait(1)
        assert page.is_disabled("#submit")
        page.set_input_files("#file", str(verify_env.files["marked_wav"]))
        page.wait_for_selector('#verdict[data-verdict="credentials_valid"]', timeout=60_000)
        # A's answer, arriving late: too late to be shown (its request was aborted).
        try:
            first.fulfill(status=200, content_type="application/json", body=_fake_report("no_evidence", "unmarked.wav"))
        except PlaywrightError:
            pass  # the page has cancelled it: the answer has nowhere to go
        page.wait_for_timeout(300)
        assert page.get_attribute("#verdict", "data-verdict") == "credentials_valid"
        assert page.inner_text("#file-line").startswith("marked.wav")
        assert page.inner_text("#status") == "Verified marked.wav."
        assert failed and all("abort" in f.lower() for f in failed), failed  # A was cancelled, not left running
        assert not page.is_disabled("#submit") and page.get_attribute("#verify-form", "aria-busy") == "false"
    finally:
        page.context.close()


def test_a_verdict_never_stands_under_another_files_name(verify_env: VerifyEnv, server: str, browser: Any) -> None:
    # A's verdict stayed on screen while B uploaded, and under B's error when B failed without a
    # report (413, 429, a time-out, the network).
    page, _ = open_page(browser)
    try:
        page.goto(server + "/")
        page.set_input_files("#file", str(verify_env.files["marked_wav"]))
        page.wait_for_selector('#verdict[data-verdict="credentials_valid"]', timeout=60_000)
        held = HeldVerifications(page, hold=(1, 3))
        page.set_input_files("#file", str(verify_env.files["unmarked"]))
        too_large = held.wait(1)
        assert page.is_hidden("#result"), "A's verdict is shown while B is verified"
        too_large.fulfill(status=413, content_type="application/json", body='{"detail": "upload is too large"}')
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("unmarked.wav: upload is too large (HTTP 413)")
        assert page.is_hidden("#result")

        page.set_input_files("#file", str(verify_env.files["marked_wav"]))
        page.wait_for_selector('#verdict[data-verdict="credentials_valid"]', timeout=60_000)
        page.set_input_files("#file", str(verify_env.files["unmarked"]))
        held.wait(2).abort("connectionreset")
        page.wait_for_selector("#error:not([hidden])")
        # in words, not the browser's "TypeError: Failed to fetch"
        assert page.inner_text("#error") == ("Could not reach the verification service: check the connection, "
                                             "or try again in a moment.")
        assert page.is_hidden("#result")
    finally:
        page.context.close()


def test_a_file_cut_from_two_outputs_shows_each_span_with_its_payload_and_each_record(
    verify_env: VerifyEnv, server: str, browser: Any, tmp_path: Path
) -> None:
    """The page showed the first record only, and a timeline of two green spans without saying
    which output each came from; only the explanation named both."""
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    a, b = read_audio(verify_env.files["marked_wav"]), read_audio(verify_env.files["marked_mp4"])
    joined = tmp_path / "joined.wav"
    write_audio(joined, Audio(np.concatenate([a.samples, b.samples[:, : a.frames]], axis=1), a.sample_rate,
                              subtype="PCM_16"))
    page, log = open_page(browser)
    try:
        page.goto(server + "/")
        page.set_input_files("#file", str(joined))
        page.wait_for_selector("#verdict:not([data-verdict=''])", timeout=60_000)
        wait_for_text(page, "#status", lambda t: t.startswith("Verified"))
        caption = page.inner_text("#timeline-caption")
        for payload in (verify_env.payload, verify_env.mp4_payload):
            assert f"(payload {payload})" in caption, caption
            assert f"(payload {payload}," in page.inner_text("#store")
        payloads = page.eval_on_selector_all("#timeline svg rect.segment", "rs => rs.map(r => r.dataset.payload)")
        assert set(payloads) == {verify_env.payload, verify_env.mp4_payload}, payloads
        assert "the first of 2" in page.inner_text("#credentials")
        assert log.errors == []
    finally:
        page.context.close()


def drop_files(page: Any, paths: list[Path], target: str) -> dict[str, bool]:
    """Drag ``paths`` onto the element ``target`` (a CSS selector) and drop them there, as a
    person would; which of the events the page cancelled (``dragover``, ``drop``: the browser
    opens a file dropped where they are not cancelled, in place of the page)."""
    import base64

    files = [{"name": p.name, "b64": base64.b64encode(p.read_bytes()).decode()} for p in paths]
    return page.evaluate("""([files, target]) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, {type: "application/octet-stream"}));
        }
        const el = document.querySelector(target);
        const fire = (type) => !el.dispatchEvent(
            new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        return {dragenter: fire("dragenter"), dragover: fire("dragover"), drop: fire("drop")};
    }""", [files, target])


def test_a_file_dropped_beside_the_zone_is_verified_not_opened(
    verify_env: VerifyEnv, server: str, browser: Any
) -> None:
    # Dropped outside the drop zone, a file replaced the page (the browser's default).
    page, log = open_page(browser)
    try:
        page.goto(server + "/")
        cancelled = drop_files(page, [verify_env.files["marked_wav"]], "h1")
        assert cancelled == {"dragenter": True, "dragover": True, "drop": True}
        page.wait_for_selector('#verdict[data-verdict="credentials_valid"]', timeout=60_000)
        # On the zone itself, as before: one verification per drop.
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/v1/verify") else None)
        assert drop_files(page, [verify_env.files["unmarked"]], "#drop")["drop"]
        page.wait_for_selector('#verdict[data-verdict="no_evidence"]', timeout=60_000)
        assert len(sent) == 1 and log.errors == []
    finally:
        page.context.close()


def test_a_file_and_its_sidecar_are_sent_together(verify_env: VerifyEnv, server: str, browser: Any) -> None:
    # The page sent one file: an Ogg whose manifest is in its .c2pa sidecar could not be verified.
    ogg = verify_env.files["signed_ogg"]
    sidecar = Path(str(ogg) + ".c2pa")
    page, log = open_page(browser)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/v1/verify") else None)

    def status_after(text: str) -> None:
        wait_for_text(page, "#status", lambda t: t == text)

    try:
        page.goto(server + "/")
        assert page.get_attribute("#file", "multiple") is not None
        page.set_input_files("#file", [str(ogg), str(sidecar)])
        status_after("Verified signed.ogg with its sidecar signed.ogg.c2pa.")
        assert page.get_attribute("#verdict", "data-verdict") == "credentials_valid"
        assert "sidecar signed.ogg.c2pa (sent with the file)" in page.inner_text("#credentials")

        drop_files(page, [sidecar, ogg], "#drop")  # in either order
        status_after("Verified signed.ogg with its sidecar signed.ogg.c2pa.")
        assert page.get_attribute("#verdict", "data-verdict") == "credentials_valid"

        page.set_input_files("#file", str(ogg))  # without it: no credentials travel with the file
        status_after("Verified signed.ogg.")
        assert page.get_attribute("#verdict", "data-verdict") != "credentials_valid"
        assert len(sent) == 3

        page.set_input_files("#file", str(sidecar))  # alone: a manifest, not media; nothing sent
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("signed.ogg.c2pa is a C2PA manifest (a sidecar)")
        assert page.is_hidden("#result") and len(sent) == 3 and log.errors == []
    finally:
        page.context.close()


def test_the_api_documentation_renders_offline(server: str, browser: Any) -> None:
    # The page links to /docs, which loaded Swagger UI from a CDN: a blank page offline.
    page, log = open_page(browser)
    try:
        page.goto(server + "/")
        # the page's own requests (its health check, its icon) are done before it is left: a click
        # while they are in flight aborts them, which is no error of either page
        page.wait_for_load_state("networkidle")
        page.click("text=OpenAPI documentation")
        page.wait_for_selector(".opblock", timeout=15_000)
        page.wait_for_load_state("networkidle")
        assert page.url == server + "/docs"
        operations = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/v1/verify", "/v1/health", "/matches/byContent"} <= {o.replace("\u200b", "") for o in operations}
        assert [u for u in log.requests if not u.startswith(server + "/")] == []  # nothing from outside
        assert log.errors == []
    finally:
        page.context.close()
