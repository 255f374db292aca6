"""The verification engine: one function that tells what a file is.

:func:`verify` combines every signal FoleySeal has about a file:

1. the container (format, codecs, duration, rate, channels) from PyAV;
2. Content Credentials (C2PA): embedded manifest or sidecar, validated against the verifier's
   trust configuration (FoleySeal's root plus the configured anchors and trust list; nothing
   else is trusted);
3. the watermark, searched with every key of the verifier's keyring in overlapping 60 s windows
   (memory stays bounded for long files); a window with a suggestive miss, or with audible
   unmarked stretches, is searched again in 8 s sub-windows. ``partially_marked`` needs an
   audible gap in which a separate presence test finds no trace of the mark (not asked of a mark
   that only the store's issued payloads could confirm: too weak to show in a gap), and the
   segment edges next to such gaps are then placed by bisection (to 0.2 s);
4. the manifest store: the record each decoded payload (and the file's SHA-256) points to, and
   whether that record's detached manifest validates against this exact file (*hard binding*) or
   only identifies it (*soft binding*: the content was re-encoded or edited);

and reduces them to one :class:`~detectors.report.Verdict` with a plain-language explanation.

Each step's parts live in their own module: taking the file in (:mod:`detectors.intake`), the
container (:mod:`detectors.container`), credentials (:mod:`detectors.credentials`), the watermark
search (:mod:`detectors.watermark_scan`, which also holds the keyring), gaps in a partly marked
file (:mod:`detectors.gaps`), and the verdict's wording (:mod:`detectors.report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from provenance.c2pa.sidecar import find_sidecar
from provenance.core.errors import FoleySealError, FormatError, InputError, StoreError
from provenance.core.io.read import cut_short
from provenance.core.text import first_few

from detectors.container import probe
from detectors.credentials import classify_credentials, parent_changed, unparseable, why_record_does_not_vouch
from detectors.decode import DeadlineExceeded, DecodeStats, iter_mono
from detectors.gaps import confirmed_gaps, refine_boundaries
from detectors.intake import SIDECAR_BESIDE, hash_and_scan, is_manifest_store, manifest_not_media, spooled
from detectors.limits import VerifyLimits
from detectors.report import (
    ContainerInfo,
    StoreMatch,
    Verdict,
    VerificationReport,
    WatermarkResult,
    error_report,
    explain,
)
from detectors.watermark_scan import load_keyring, scan_watermark

log = logging.getLogger(__name__)


_ALIAS_PATH = re.compile(r"[^\s'\"]*foleyseal-alias-[^/\\\s'\"]+[/\\]asset\.[A-Za-z0-9]+")
"""A path inside :meth:`Verifier._c2pa_path`'s temporary folder, as a library message quotes it."""


def _binary_stream(source: object) -> bool:
    """Whether ``source`` is an open stream that gives bytes (a text-mode file gives str)."""
    if not callable(getattr(source, "read", None)) or getattr(source, "closed", False):
        return False
    if isinstance(source, io.TextIOBase):
        return False
    return "b" in getattr(source, "mode", "b")


def _reason(exc: BaseException) -> str:
    """What went wrong, for a note: a FoleySeal error's own message (it names the store), else the
    exception's type, with its traceback logged, since that is a bug to report."""
    if isinstance(exc, FoleySealError):
        return exc.message
    log.error("unexpected %s", type(exc).__name__, exc_info=exc)
    return type(exc).__name__


def _in_callers_terms(report: VerificationReport, path: Path, display: str) -> VerificationReport:
    """The report with the paths the verifier opened replaced by the name the caller gave.

    Decoders and the C2PA reader quote the path they were handed. For an upload that is the
    server's spool file (or a temporary alias of it), which a report must neither show nor
    leak to a client; the caller knows the file by ``display``.
    """
    def scrub(text: str) -> str:
        for opened in {str(path), os.path.abspath(path)}:
            if opened != display:
                text = text.replace(opened, display)
        return _ALIAS_PATH.sub(lambda _m: display, text)

    credentials = report.credentials
    if credentials is not None and getattr(credentials, "error", None):
        credentials = dataclasses.replace(credentials, error=scrub(credentials.error))
    return dataclasses.replace(
        report,
        credentials=credentials,
        explanation=scrub(report.explanation),
        error=None if report.error is None else scrub(report.error),
        notes=[scrub(n) for n in report.notes],
    )


@dataclasses.dataclass
class _Evidence:
    """What :meth:`Verifier._verify_path` has learnt about one file so far, step by step."""

    size: int
    """Bytes."""
    sha: str
    """SHA-256 of the file's bytes, hex."""
    notes: list[str] = dataclasses.field(default_factory=list)
    container: ContainerInfo | None = None
    container_error: str | None = None
    credentials: Any | None = None
    stats: DecodeStats = dataclasses.field(default_factory=DecodeStats)
    watermark: list[WatermarkResult] = dataclasses.field(default_factory=list)
    decode_error: str | None = None
    store_matches: list[StoreMatch] = dataclasses.field(default_factory=list)
    store_read: bool = True
    """False: a configured store failed to open or to answer (the reason is in ``notes``)."""
    progress: Callable[[float], None] | None = None
    """Called with the share (0-1) of the audio read, as the watermark scan goes."""


_MORE_TIME = "Allow it more time: foleyseal verify --time-limit SECONDS, or the service's --verify-timeout."
_CHECK_PATH = "Check the path: it must name a readable audio or video file."


def _keyring_argument(keyring: Any) -> list[Any]:
    """``keyring`` as a list of :class:`WatermarkKey`: each entry in any form ``embed`` and
    ``detect`` take (a key, its 32 bytes, a key file's path), and one key alone as a keyring of
    one. A path or bytes used to reach the detector as they were, which failed with an
    AttributeError said as "decoding failed", and a path string was taken letter by letter."""
    from provenance.watermark import WatermarkKey
    from provenance.watermark.keys import as_key

    if isinstance(keyring, (WatermarkKey, str, bytes, bytearray, os.PathLike)):
        return [as_key(keyring)]
    try:
        entries = list(keyring)
    except TypeError:
        raise InputError(f"keyring must be a list of watermark keys (or key file paths), not "
                         f"{type(keyring).__name__}") from None
    return [as_key(k) for k in entries]


class Verifier:
    """A reusable verifier: settings, trust anchors, keyring and store opened once.

    Thread-compatible but not thread-safe (one per worker process or thread).
    """

    def __init__(
        self,
        settings: Any | None = None,
        keyring: Sequence[Any] | None = None,
        *,
        extra_trust_anchors: Sequence[str | Path] = (),
        limits: VerifyLimits | None = None,
        use_store: bool = True,
        threads: int | None = None,
        sidecar_advice: str = SIDECAR_BESIDE,
    ) -> None:
        """``sidecar_advice``: what the error for a bare manifest store (a ``.c2pa`` file given
        as the file to verify) tells its reader to do instead; the service says how to send one."""
        from provenance.core.config import Settings, load_settings, trust_anchors

        if settings is not None and not isinstance(settings, Settings):
            raise InputError(f"settings must be a Settings (provenance.core.config.load_settings(home)), "
                             f"not {type(settings).__name__}")
        if limits is not None and not isinstance(limits, VerifyLimits):
            raise InputError(f"limits must be a VerifyLimits, not {type(limits).__name__}")
        self.settings = settings if settings is not None else load_settings()
        self.limits = limits or VerifyLimits()
        self.threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        self.sidecar_advice = sidecar_advice
        anchors = trust_anchors(self.settings, extra_trust_anchors)
        self.trust_pem = anchors.pem
        self.trust_anchor_count = anchors.count
        self.trust_notes = list(anchors.notes)
        """Anchors left out (expired ...): said in the report of every file with credentials."""
        self.keyring = _keyring_argument(keyring) if keyring is not None else load_keyring(self.settings)
        self._use_store = use_store
        self._store: Any | None = None
        self._store_opened = False
        self._store_error: Exception | None = None
        """Why the store failed to open, kept so every file of a run gives the same reason."""
        self._no_store_reason = ""
        """Why there is no store to ask (not used, or no database), for the notes."""

    # The store is opened on first use, and only if it exists: verifying must not create
    # an empty database on a machine that only verifies.
    def _get_store(self) -> Any | None:
        if self._store_opened:
            if self._store_error is not None:
                raise self._store_error
            return self._store
        self._store_opened = True
        if not self._use_store:
            self._no_store_reason = "The manifest store is not used in this verification (--no-store)"
            return None
        url = self.settings.store_url
        if url.startswith("sqlite:///"):
            db = url[len("sqlite:///") :]
            if db and db != ":memory:" and not Path(db).exists():
                self._no_store_reason = f"The manifest store has no database yet (none at {db})"
                return None
        from provenance.store import open_store

        try:
            self._store = open_store(self.settings)
        except StoreError as exc:
            # Verifying only reads: a store on a read-only medium (or a file this user may only
            # read) still answers when opened for reading.
            try:
                self._store = open_store(self.settings, read_only=True)
            except StoreError:
                self._store_error = exc
                raise exc from None
        return self._store

    def _issued_payloads(self) -> Any | None:
        """The store's issued watermark payloads (:class:`~provenance.store.IssuedPayloads`), or
        None without a store. A store that cannot be opened is left for :meth:`_store_lookup`
        to report."""
        try:
            store = self._get_store()
        except Exception:
            return None  # _store_lookup says why (the same error: it is kept)
        if store is None:
            return None
        from provenance.watermark import SOFT_BINDING_ALG

        return store.issued_payloads(SOFT_BINDING_ALG)

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
        self._store = None
        self._store_opened = False
        self._store_error = None

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------

    def verify(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        name: str | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> VerificationReport:
        """Verify a file (path) or a binary stream; ``name`` is the display name (e.g. the
        uploaded file's name: used only for its extension and in messages). ``progress``, if
        given, is called with the share (0-1) of the audio read by the watermark scan, the long
        part of a long file."""
        t0 = time.monotonic()
        deadline = t0 + self.limits.time_limit_s if self.limits.time_limit_s else None
        if name is None:
            name = str(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", "upload"))
        if not isinstance(source, (str, os.PathLike)) and not _binary_stream(source):
            report = self._error_report(
                name, f"cannot read {type(source).__name__}: give a path, or a stream opened in binary mode ('rb')"
            )
            report.elapsed_s = time.monotonic() - t0
            return report
        try:
            with spooled(source, name, self.limits) as (path, display, _tmp):
                report = _in_callers_terms(self._verify_path(path, display, deadline, progress), path, display)
        except DeadlineExceeded as exc:
            report = self._error_report(name, exc.message, advice=_MORE_TIME)
        except InputError as exc:  # includes the size limit of a stream
            report = self._error_report(name, exc.message)
        except OSError as exc:
            report = self._error_report(name, f"cannot read file: {exc.strerror or exc}")
        except ValueError as exc:  # e.g. reading a stream closed meanwhile
            report = self._error_report(name, f"cannot read the stream: {exc}")
        report.elapsed_s = time.monotonic() - t0
        return report

    def _error_report(self, display: str, message: str, *, advice: str | None = None, **kw: Any) -> VerificationReport:
        """The report of a file that could not be examined; ``advice``: what to do about it
        (None: check that it is media; empty: the message says it)."""
        return error_report(display, message, advice=advice, trust_anchors=self.trust_anchor_count, **kw)

    def _verify_path(self, path: Path, display: str, deadline: float | None,
                     progress: Callable[[float], None] | None = None) -> VerificationReport:
        """The report on the file at ``path``, which the caller knows as ``display``."""
        size = self._size_or_refusal(path, display)
        if isinstance(size, VerificationReport):
            return size
        sha, has_manifest_box = hash_and_scan(path, deadline)
        if has_manifest_box and is_manifest_store(path):
            return self._error_report(
                display, manifest_not_media(self.sidecar_advice), advice="", size_bytes=size, sha256=sha
            )
        ev = _Evidence(size=size, sha=sha, progress=progress)
        try:
            # 1. container
            self._probe_container(path, display, ev)

            with tempfile.TemporaryDirectory(prefix="foleyseal-alias-") as alias_dir:
                c2pa_path = self._c2pa_path(path, display, ev.container, Path(alias_dir))

                # 2. credentials carried with the file
                self._carried_credentials(c2pa_path, has_manifest_box, ev)
                if (unused := _unused_sidecar_note(path, ev.credentials)) is not None:
                    ev.notes.append(unused)

                # 3. watermark
                if ev.container is not None and ev.container.has_audio:
                    try:
                        self._check_watermark(path, display, deadline, ev)
                    except DeadlineExceeded as exc:
                        if classify_credentials(ev.credentials) is None:
                            raise
                        # The credentials carried with the file decide the verdict whatever the
                        # watermark holds: an error report would hide credentials already validated.
                        ev.watermark = []
                        ev.notes.append(
                            f"{exc.message[0].upper()}{exc.message[1:]}: the watermark and the manifest store were "
                            f"not checked, and the verdict rests on the credentials carried with the file. {_MORE_TIME}"
                        )
                        return self._conclude(path, display, None, ev)

                # 4. store
                ev.store_matches, ev.store_read = self._store_lookup(c2pa_path, sha, ev.watermark, ev.notes)

            # 5. verdict
            return self._conclude(path, display, deadline, ev)
        except DeadlineExceeded as exc:
            # what was learnt before the limit (size, hash, container) still describes the file
            return self._error_report(display, exc.message, advice=_MORE_TIME, size_bytes=size, sha256=sha,
                                      container=ev.container)

    def _size_or_refusal(self, path: Path, display: str) -> int | VerificationReport:
        """The size of the file at ``path`` (bytes), or the error report refusing it: not there,
        not a regular file, empty, or over the size limit."""
        try:
            st = os.stat(path)
        except OSError as exc:
            return self._error_report(display, f"cannot open file: {exc.strerror or exc}", advice=_CHECK_PATH)
        if not os.path.isfile(path):
            return self._error_report(display, "not a regular file (a folder, pipe or device)", advice=_CHECK_PATH)
        size = st.st_size
        if size == 0:
            return self._error_report(display, "the file is empty (0 bytes)", size_bytes=0)
        if self.limits.max_bytes is not None and size > self.limits.max_bytes:
            return self._error_report(
                display, f"the file is larger than the limit of {self.limits.max_bytes} bytes", size_bytes=size
            )
        return size

    def _probe_container(self, path: Path, display: str, ev: _Evidence) -> None:
        """Step 1: the container, or why it could not be parsed."""
        try:
            ev.container = probe(path, name=display)
        except FormatError as exc:
            ev.container_error = exc.message
        except Exception as exc:  # a demuxer bug must not take the verifier down
            log.exception("container probe failed for %s", display)
            ev.container_error = f"the container could not be parsed ({type(exc).__name__})"
        if ev.container is not None and not ev.container.has_audio:
            # a recognised container (its credentials are still read, as that type) with nothing
            # for the watermark and the verdict about audio
            ev.container_error = "has no audio track" if ev.container.has_video else "holds no audio stream"
        if ev.container is not None and ev.container.extension_mismatch:
            ev.notes.append(
                f"The file name's extension does not match its content, which is {ev.container.format.upper()}; "
                "the content was used."
            )

    def _carried_credentials(self, c2pa_path: Path, has_manifest_box: bool, ev: _Evidence) -> None:
        """Step 2: the Content Credentials carried with the file (embedded, or a sidecar)."""
        credentials = self._read_credentials(c2pa_path, ev.notes)
        if unparseable(credentials) and not has_manifest_box:
            # No manifest in the bytes: the reader's "Invalid" is about the asset, not about
            # credentials. Saying "tampered credentials" would be false.
            if "jumbf" in str(getattr(credentials, "error", "") or "").lower():
                # the reader found the format's place for a manifest (a WAV's C2PA chunk, an MP4's
                # box) holding something else: random bytes where a manifest was
                ev.notes.append("The file has a place for a C2PA manifest (its C2PA chunk or box), but what it "
                                "holds is no readable manifest (invalid JUMBF): the manifest was damaged or "
                                "replaced, so no credentials could be checked.")
            else:
                ev.notes.append("The C2PA reader could not parse this file; it holds no C2PA manifest.")
            credentials = dataclasses.replace(
                credentials, present=False, source=None, state=None, failure_codes=()
            )
        elif has_manifest_box and credentials is not None and not credentials.present:
            # e.g. a WAV whose data chunk was made longer: the reader sees the manifest's chunk
            # as audio, and the credentials would vanish without a word
            ev.notes.append(
                "The file contains the bytes of a C2PA manifest, but the C2PA reader did not find "
                "it where the file's format keeps one: the file's structure was changed after "
                "signing (or the manifest was pasted in), so those credentials could not be checked."
            )
        ev.credentials = credentials

    def _check_watermark(self, path: Path, display: str, deadline: float | None, ev: _Evidence) -> None:
        """Step 3: the watermark, searched with every key (the audio decoded once without
        keys), and notes on how the audio decoded."""
        from provenance.watermark.embed import min_duration_s

        stats = ev.stats
        if not self.keyring:
            ev.notes.append("No watermark key is configured: the watermark was not checked.")
        try:
            ev.watermark = self._decode_and_scan(path, ev.container, deadline, stats, ev.notes, ev.progress)
        except DeadlineExceeded:
            raise
        except FoleySealError as exc:
            ev.decode_error = exc.message
        except Exception as exc:  # decoders on hostile input (MemoryError included)
            log.exception("decoding failed for %s", display)
            ev.decode_error = f"the audio could not be decoded ({type(exc).__name__})"
        if stats.nonfinite:
            ev.notes.append(f"{stats.nonfinite} NaN or infinite samples were treated as silence.")
        if stats.truncated_at_s is not None and self.keyring:  # without keys, 1 s shows it decodes
            ev.notes.append(f"Only the first {stats.truncated_at_s:.0f} s were analysed.")
        if stats.decode_errors:
            ev.notes.append(f"{stats.decode_errors} corrupt audio packet(s) were skipped while decoding.")
        if stats.holes:
            spans = first_few([f"{a + stats.start_s:.2f}-{b + stats.start_s:.2f} s" for a, b in stats.holes], 4)
            ev.notes.append(
                f"The audio track has no audio at {spans} of the file (damaged or missing packets): silence was "
                "put in its place, so the times given stay on the file's timeline."
            )
        if stats.jumps:
            jumps = first_few([f"{by:.1f} s at {at + stats.start_s:.2f} s" for at, by in stats.jumps], 4)
            ev.notes.append(
                f"The audio track's timestamps jump by {jumps}: too far to be audio lost there (damaged "
                "timestamps), so nothing was put in their place, and times after a jump are given as decoded."
            )
        if stats.audio_tracks > 1:
            ev.notes.append(
                f"The file has {stats.audio_tracks} audio tracks; the watermark was read from track "
                f"{stats.track} (counting from 0), the main one players pick. FoleySeal marks every "
                f"track, but a file put together elsewhere may carry the mark on some of them only "
                f"(`foleyseal watermark detect FILE --key KEYFILE --track N` reads another)."
            )
        if ev.decode_error:
            ev.notes.append(f"Audio decoding failed: {ev.decode_error}")
        elif (shortfall := _shortfall_note(ev.container, stats)) is not None:
            ev.notes.append(shortfall)
        decoded_s = stats.frames / stats.sample_rate if stats.sample_rate else 0.0
        if any(w.found and not w.payloads for w in ev.watermark) and decoded_s < min_duration_s():
            ev.notes.append(
                f"The audio is {decoded_s:.2f} s long, shorter than one {min_duration_s():.2f} s watermark block, which "
                "holds the whole payload: a payload in so short a file may not decode on its own (a verifier "
                "holding the manifest store names it more often)."
            )
        if (self.keyring and not ev.decode_error and stats.frames and decoded_s < FINDABLE_S
                and not any(w.found for w in ev.watermark)):
            # "no watermark was detected" of 0.05 s of audio would read like an examination
            ev.notes.append(
                f"The audio is only {stats.frames} samples ({decoded_s:.2f} s) long: too short for a watermark to be found (that takes "
                f"about {FINDABLE_S:g} s of audio, and {min_duration_s():.2f} s to read its payload in full)."
            )

    def _decode_and_scan(
        self, path: Path, container: ContainerInfo, deadline: float | None, stats: DecodeStats, notes: list[str],
        progress: Callable[[float], None] | None = None,
    ) -> list[WatermarkResult]:
        """Every key's watermark result; without keys, none, once the audio is shown to decode.
        Raises what decoding raises (:class:`FormatError` when no audio decodes)."""
        if self.keyring:
            return scan_watermark(
                path, container, self.keyring, self.limits, deadline, stats, notes, self.threads,
                known=self._issued_payloads(), progress=progress,
            )
        # Still decode once: a file whose audio cannot be decoded must say so.
        for _ in iter_mono(
            path, container_format=container.format, deadline=deadline,
            max_duration_s=min(self.limits.max_duration_s, 1.0), stats=stats,
        ):
            pass
        if stats.frames == 0:
            raise FormatError("no audio could be decoded from the file")
        return []

    def _conclude(self, path: Path, display: str, deadline: float | None, ev: _Evidence) -> VerificationReport:
        """Step 5: the verdict the evidence supports, and the report that explains it."""
        cred_verdict = classify_credentials(ev.credentials)
        hard = [m for m in ev.store_matches if m.binding in ("hard", "hash")]
        soft = [m for m in ev.store_matches if m.binding == "soft" and m.refused is None]
        found = [w for w in ev.watermark if w.found]
        partial = False
        if found and cred_verdict is None and not hard and ev.container is not None:
            partial = self._mark_gaps(path, deadline, ev)
        if ev.stats.start_s:
            # The detector reads the audio's own time; a player shows the file's timeline.
            ev.watermark = [dataclasses.replace(w, segments=tuple(s.shifted(ev.stats.start_s) for s in w.segments))
                            for w in ev.watermark]
            ev.notes.append(
                f"The audio track starts {ev.stats.start_s:.2f} s into the file; times are on the file's timeline."
            )
        if cred_verdict is not None:
            verdict = cred_verdict
        elif hard:
            verdict = classify_credentials(hard[0].credentials) or Verdict.CREDENTIALS_TAMPERED
        elif partial:
            verdict = Verdict.PARTIALLY_MARKED
        elif soft:
            verdict = Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
        elif found:
            verdict = Verdict.WATERMARK_ONLY
        elif ev.container is None or not ev.container.has_audio or (ev.decode_error and not ev.stats.frames):
            message = ev.container_error or ev.decode_error or "unreadable file"
            return self._error_report(display, message, size_bytes=ev.size, sha256=ev.sha, container=ev.container,
                                      credentials=ev.credentials, notes=ev.notes)
        else:
            verdict = Verdict.NO_EVIDENCE
        cred_text = ev.credentials if cred_verdict is not None else (hard[0].credentials if hard else None)
        return self._report(display, ev, verdict, cred_text, hard or soft)

    def _report(
        self, display: str, ev: _Evidence, verdict: Verdict, cred_text: Any | None, matches: list[StoreMatch]
    ) -> VerificationReport:
        """The report of ``verdict``, explained with ``cred_text`` (the credentials that decided
        it, if any) and the store ``matches`` behind it."""
        if ev.container_error and verdict is not Verdict.ERROR:
            ev.notes.append(f"Container: {ev.container_error}")
        deciding = cred_text if cred_text is not None else (matches[0].credentials if matches else None)
        if (replaced := _replaced_mark_note(deciding)) is not None:
            ev.notes.append(replaced)
        if (sound_only := _sound_only_record_note(ev.container, verdict, matches)) is not None:
            ev.notes.append(sound_only)
        if (longer := _longer_than_record_note(ev.stats, verdict, matches)) is not None:
            ev.notes.append(longer)
        if (thin := _thin_mark_note(ev.watermark, verdict)) is not None:
            ev.notes.append(thin)
        explanation = explain(
            verdict,
            credentials=cred_text,
            watermark=ev.watermark,
            store=matches,
            keys_checked=len(self.keyring),
            watermark_analysed=any(w.windows for w in ev.watermark),
            store_read=ev.store_read,
            # A store that failed to open is configured; one that is not there was not consulted.
            store_configured=self._store is not None or not ev.store_read,
            refused=[m for m in ev.store_matches if m.refused],
            sha256=ev.sha,
        )
        if verdict is Verdict.CREDENTIALS_UNTRUSTED and self.trust_notes:
            # "add the signer's root" reads wrong when it is configured and was left out as expired
            explanation += (" Some configured trust anchors were left out because they have expired or are not "
                            "valid yet (see the notes): if the signer's root is one of them, that is why.")
        return VerificationReport(
            file=display,
            verdict=verdict,
            explanation=explanation,
            size_bytes=ev.size,
            sha256=ev.sha,
            container=ev.container,
            credentials=ev.credentials,
            watermark=ev.watermark,
            store=ev.store_matches,
            notes=ev.notes,
            trust_anchors=self.trust_anchor_count,
            store_unavailable=not ev.store_read,
        )

    def _mark_gaps(self, path: Path, deadline: float | None, ev: _Evidence) -> bool:
        """Whether a found mark leaves audible gaps in which a separate test finds no trace of it;
        the first such key's segment edges are then placed by bisection, and the gaps noted."""
        keys = {k.key_id: k for k in self.keyring}
        for j, w in enumerate(ev.watermark):
            # A mark only an issued payload could confirm is too weak to show in a gap's few
            # seconds: its absence there is no evidence that the gap was not marked.
            if not w.found or w.store_confirmed:
                continue
            gaps = confirmed_gaps(path, ev.container, w, keys[w.key_id], ev.stats, self.limits, deadline)
            if gaps:
                ev.watermark[j] = refine_boundaries(
                    path, ev.container, w, keys[w.key_id], gaps, self.limits, deadline
                )
                spans = ", ".join(f"{a + ev.stats.start_s:.1f}-{b + ev.stats.start_s:.1f} s" for a, b in gaps[:4])
                ev.notes.append(f"No trace of the watermark in audible audio at {spans} (checked separately).")
                return True
        return False

    def _c2pa_path(self, path: Path, display: str, container: ContainerInfo | None, alias_dir: Path) -> Path:
        """The path to hand to the C2PA reader: the file itself, or (when its name's extension
        lies about the content, or it has none) a link named with the right extension, since the
        reader picks the format from the extension. A sidecar next to the file comes along."""
        if container is None:
            return path
        if path.suffix.lower() == container.extension:
            return path
        alias = alias_dir / ("asset" + container.extension)
        try:
            os.symlink(os.path.abspath(path), alias)
        except OSError:
            shutil.copyfile(path, alias)
        sidecar = find_sidecar(path)
        if sidecar is not None:
            with contextlib.suppress(OSError):
                os.symlink(os.path.abspath(sidecar), alias.with_suffix(".c2pa"))
                os.symlink(os.path.abspath(sidecar), Path(str(alias) + ".c2pa"))
        return alias

    def _read_credentials(self, path: Path, notes: list[str], manifest_bytes: bytes | None = None) -> Any | None:
        from provenance.c2pa.read import read_credentials

        try:
            credentials = read_credentials(path, trust_anchors_pem=self.trust_pem or None,
                                           manifest_bytes=manifest_bytes)
        except FoleySealError:
            raise
        except Exception as exc:  # the reader promises not to raise; a verifier must not trust that
            log.exception("reading credentials failed for %s", path)
            notes.append(f"Content Credentials could not be read ({type(exc).__name__}).")
            return None
        if credentials.present:
            notes.extend(n for n in self.trust_notes if n not in notes)
            if (changed := parent_changed(credentials)) and manifest_bytes is None:
                notes.append(
                    "When these credentials were signed, the file they record as this one's parent carried "
                    f"Content Credentials that did not validate ({', '.join(changed)}): it had been changed "
                    "after it was signed, and these credentials vouch only for what was done to it since."
                )
        elif credentials.source == "sidecar" and credentials.error:  # one beside it, holding nothing
            notes.append(f"{credentials.error[0].upper()}{credentials.error[1:]}.")
        return credentials

    def _store_lookup(
        self, path: Path, sha: str, watermark: list[WatermarkResult], notes: list[str]
    ) -> tuple[list[StoreMatch], bool]:
        """Records for the file's watermark payloads and its hash, and whether the store could be
        read (False: a configured store failed to open or to answer; the reason is in ``notes``)."""
        from provenance.watermark import SOFT_BINDING_ALG

        wanted: list[tuple[str, str]] = []
        for w in watermark:
            if w.found:
                wanted.extend((SOFT_BINDING_ALG, p) for p in w.payloads)
        try:
            store = self._get_store()
        except Exception as exc:
            notes.append(f"The manifest store could not be opened ({_reason(exc)}); no records were looked up.")
            return [], False
        if store is None:
            if any(w.found for w in watermark):
                notes.append(f"{self._no_store_reason}: no record was looked up for the watermark.")
            return [], True
        matches: list[StoreMatch] = []
        seen: set[str] = set()
        try:
            records = [(store.find_by_payload(alg, payload), "soft") for alg, payload in wanted]
            records += [(r, "hash") for r in store.find_by_asset_hash(sha)]
        except Exception as exc:
            notes.append(f"The manifest store lookup failed ({_reason(exc)}).")
            return [], False
        for record, how in records:
            if record is None or record.id in seen:
                continue
            seen.add(record.id)
            cred = self._read_credentials(path, notes, manifest_bytes=record.manifest)
            ok = classify_credentials(cred) in (Verdict.CREDENTIALS_VALID, Verdict.CREDENTIALS_UNTRUSTED)
            binding = ("hash" if how == "hash" else "hard") if ok else "soft"
            if how == "hash" and not ok:
                continue  # same bytes but the manifest does not validate: nothing to recover
            # said in the explanation and the record's line: a planted record proves nothing
            refused = why_record_does_not_vouch(cred, record.payload) if binding == "soft" else None
            matches.append(
                StoreMatch(
                    record_id=record.id,
                    payload=record.payload,
                    algorithm=record.algorithm,
                    binding=binding,
                    record=record.to_dict(without_manifest=True),
                    credentials=cred,
                    refused=refused,
                )
            )
        # Hard bindings first: they are the stronger statement.
        matches.sort(key=lambda m: 0 if m.binding in ("hard", "hash") else 1)
        return matches, True


def verify(
    path_or_stream: str | os.PathLike[str] | IO[bytes],
    *,
    settings: Any | None = None,
    keyring: Sequence[Any] | None = None,
    trust_anchors: Sequence[str | Path] = (),
    limits: VerifyLimits | None = None,
    name: str | None = None,
) -> VerificationReport:
    """Verify one file (a path, or a binary stream) and return its :class:`VerificationReport`.

    ``settings`` default to :func:`provenance.core.config.load_settings`; ``keyring`` (watermark
    keys, or key file paths, or one key) to :func:`load_keyring`; ``trust_anchors`` are extra PEM
    files trusted in addition to the configuration. A bad file never raises: it yields verdict
    ``error`` with a message. Bad arguments (a settings, limits or keyring of the wrong type, a
    key file that cannot be read) raise :class:`InputError` or :class:`KeyFileError`.
    """
    with Verifier(settings, keyring, extra_trust_anchors=trust_anchors, limits=limits) as v:
        return v.verify(path_or_stream, name=name)


def _unused_sidecar_note(path: Path, credentials: Any | None) -> str | None:
    """A note when a ``.c2pa`` sidecar lies beside a file whose embedded manifest was the one
    checked (the reader takes an embedded one first): the sidecar was ignored without a word."""
    if credentials is None or getattr(credentials, "source", None) != "embedded":
        return None
    sidecar = find_sidecar(path)
    if sidecar is None:
        return None
    return (f"A sidecar, {sidecar.name}, lies beside the file, but the file carries an embedded manifest: that "
            "one was checked, and the sidecar was not.")


def _thin_mark_note(watermark: list[WatermarkResult], verdict: Verdict) -> str | None:
    """A note when credentials recovered through the watermark rest on a mark read in under half
    of the audio: the rest is unaccounted for (two marked outputs mixed together read as one
    recovered output, whose mark covered 4 % of the audio)."""
    found = next((w for w in watermark if w.found), None)
    if verdict is not Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK or found is None or found.analysed_s <= 0:
        return None
    if found.coverage >= _THIN_MARK_COVERAGE:
        return None
    return (f"The mark was read in only {found.coverage:.0%} of the {found.analysed_s:.1f} s of audio: the record "
            "vouches for that part at most; the rest may be other audio (a mix, or another mark this reading could "
            "not separate).")


_THIN_MARK_COVERAGE = 0.5
"""Share of the analysed audio under which a recovered mark's coverage is noted."""


def _sound_only_record_note(container: ContainerInfo | None, verdict: Verdict,
                            matches: list[StoreMatch]) -> str | None:
    """A note when a video's credentials come, through its watermark, from a record of an audio
    file: they vouch for its sound, not its pictures (a video's audio track replaced by a marked
    output's read as credentials recovered, with no word of the video)."""
    if verdict is not Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK or container is None or not container.has_video:
        return None
    mime = str(matches[0].record.get("mime_type") or "") if matches else ""
    if not mime.startswith("audio/"):
        return None
    return (f"The stored record is of an audio file ({mime}): the credentials recovered vouch for this "
            "video's sound, not for its pictures.")


def _longer_than_record_note(stats: DecodeStats, verdict: Verdict, matches: list[StoreMatch]) -> str | None:
    """A note when audio whose watermark leads to a record lasts longer than the record's output
    (by over a second): not a trim or re-encode of it, whatever else it may be (an issued payload
    put into other audio with the watermark key reads as a derivative otherwise)."""
    if verdict is not Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK or not matches or stats.sample_rate <= 0:
        return None
    registered = matches[0].record.get("duration_s")
    heard = stats.frames / stats.sample_rate
    if not registered or heard <= float(registered) + _LONGER_THAN_RECORD_S:
        return None
    return (f"The audio lasts {heard:.1f} s, longer than the registered output ({float(registered):.1f} s): it is "
            "not a trim or a re-encoding of it alone, so the watermark may be all that links the two.")


_LONGER_THAN_RECORD_S = 1.0
"""Seconds by which audio may outlast its record before it is noted (an encoder's padding, a
resampler's tail, a fade added)."""


def _replaced_mark_note(cred: Any | None) -> str | None:
    """A note when ``cred`` (the credentials behind the verdict) record that the output was marked
    over an earlier FoleySeal output (``mark`` of a marked file replaces its payload): the one
    link to that output's record once the earlier credentials were stripped."""
    record = getattr(cred, "generation_record", None) or {}
    replaces = (record.get("watermark") or {}).get("replaces") if isinstance(record, dict) else None
    if not isinstance(replaces, dict) or not replaces.get("payload"):
        return None
    where = f" (stored record {replaces['manifest']})" if replaces.get("manifest") else ""
    return (f"Its manifest records that it was marked over an earlier FoleySeal output, whose watermark payload "
            f"{replaces['payload']}{where} this mark replaced.")


FINDABLE_S = 1.0
"""Seconds of marked audio the detector needs to find a mark (measured: 0.75 s of a marked
excerpt is found, 0.5 s is not); its payload needs a whole block, :func:`min_duration_s`."""


def _shortfall_note(container: ContainerInfo, stats: DecodeStats) -> str | None:
    """A note when the audio decoded to the end is much shorter than its stream header declares
    (a file cut short or damaged, by the readers' rule), or its container's structure says it is
    cut short (a WAV, an Ogg stream: libsndfile gives what the file holds as its length), else None."""
    if stats.damage:
        return (f"The file is cut short or damaged ({stats.damage[0].lower()}{stats.damage[1:]}): only "
                "what decodes was checked.")
    declared = next((s.duration_s for s in container.streams if s.kind == "audio"), None)
    if not declared or stats.truncated_at_s is not None or stats.sample_rate <= 0:
        return None
    if container.format == "aac" and not stats.decode_errors:
        return None  # raw ADTS declares no length: FFmpeg's is guessed from the first frames' bitrate
    if not cut_short(declared * stats.sample_rate, stats.frames, stats.sample_rate):
        return None
    decoded = stats.frames / stats.sample_rate
    lost_inside = (" Corrupt packets were skipped, so audio was lost inside the file too: times after the "
                   "damage may be early by what was lost.") if stats.decode_errors else ""
    return (f"The audio decodes to {decoded:.1f} s of the {declared:.1f} s its header declares: the file "
            f"is truncated or damaged, and only what decodes was checked.{lost_inside}")


__all__ = ["Verifier", "VerifyLimits", "classify_credentials", "load_keyring", "verify"]
