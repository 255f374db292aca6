"""The web page in a real browser: headless Debian Chromium driven by Playwright.

Uploads a marked file and an unmarked one through the page and asserts on the rendered verdict,
then saves a screenshot (under the test's tmp dir; also to docs/screenshots/verify-page.png when
FOLEYSEAL_SAVE_SCREENSHOT=1). CI installs ``chromium`` and ``chromium-driver`` (see .ci/run);
the test is skipped only where /usr/bin/chromium is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from detectors.service import ServiceConfig
from tests._verify_fixtures import VerifyEnv, running_server, verify_env  # noqa: F401

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


def test_page_verifies_marked_and_unmarked_files(verify_env: VerifyEnv, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=1, rate_limit_per_min=0)
    shot = tmp_path / "verify-page.png"
    with running_server(config) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
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
            assert errors == []
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("FOLEYSEAL_SAVE_SCREENSHOT") == "1":
        dest = REPO / "docs" / "screenshots" / "verify-page.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)
