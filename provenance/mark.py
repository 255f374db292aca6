"""``mark``: the one entry that makes a file identifiable (payload -> watermark -> sign -> store).

Order, and why:

1. **Allocate** a fresh, unpredictable 64-bit payload and **reserve** it in the manifest store
   under the new manifest's id (``urn:c2pa:<uuid4>``). The store's UNIQUE constraint makes the
   payload unique across concurrent processes; the reservation exists before any file does.
2. **Watermark** the input into a private temporary directory beside the output (the
   watermark changes the audio, so it comes before the signature that hashes it).
3. **Sign** the watermarked file: an embedded manifest (WAV, FLAC, MP3, M4A, MP4, MOV), or,
   for the formats c2pa cannot embed into (Ogg/Opus, MKV, WebM, AIFF, CAF, W64, AU:
   :data:`provenance.c2pa.sign.SIDECAR_ONLY`), a byte copy plus a detached manifest that
   becomes the sidecar. The manifest
   declares the watermark (``c2pa.watermarked.bound`` + ``c2pa.soft-binding`` with the payload),
   so the signature covers the watermarked audio and the binding to the payload.
4. **Record**: the reservation is completed with the manifest bytes that validate against the
   exact bytes about to be published (see :mod:`provenance.c2pa.sign` for why those bytes).
5. **Publish**: the sidecar (if any), then the output, are renamed into place.

Any failure before step 5 completes deletes the reservation/record and the temporary files:
no output file, no dangling record, and the unsigned watermarked intermediate never appears
at the output path. Only a hard kill (SIGKILL, power loss) can leave something behind: a
reservation (between steps 1 and 4; the next ``mark`` into the same store removes it once it
is :data:`STALE_RESERVATION_S` old) or a record whose file was never renamed into place
(between steps 4 and 5). A published file without its record cannot happen. Of two runs
publishing one output at once, the second fails (:meth:`_Reservation.sign_and_publish`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from provenance.c2pa.manifest import (
    Ingredient,
    ManifestSpec,
    generation_assertion,
    new_manifest_label,
)
from provenance.c2pa.sidecar import sidecar_path
from provenance.c2pa.sign import MIME_BY_SUFFIX, content_mime, mime_for, sign_to
from provenance.core import io as audio_io
from provenance.core.atomic import (
    atomic_write_bytes,
    check_writable,
    output_error,
    owner_tag,
    replace_keeping_mode,
    reported_as,
    same_file,
    sweep_stale,
    writing_beside,
)
from provenance.core.audio import Audio
from provenance.core.arguments import flag_argument, path_argument, text_argument
from provenance.core.c2pa_types import MarkResult, SoftBinding, SoftBindingBlock, StoreRecord
from provenance.core.config import Settings, load_settings
from provenance.core.digest import sha256_file
from provenance.core.errors import (
    InputError,
    MarkLostInEncodingError,
    NoAudioError,
    OutputError,
    UnreadableMarkError,
    note_published,
)
from provenance.core.interrupts import stop_signals_deferred
from provenance.core.text import valid_unicode
from provenance.keys.signers import SigningIdentity, load_identity
from provenance.store.repository import ManifestStore, open_store
from provenance.watermark import SOFT_BINDING_ALG, WatermarkKey
from provenance.watermark.files import embed_file, prior_payload
from provenance.watermark.keys import load_home_key

_VIDEO_MIMES = frozenset({"video/mp4", "video/quicktime", "video/x-matroska", "video/webm"})
STALE_RESERVATION_S = 24 * 3600.0
"""Age (s) past which a reservation is a killed run's, not a live one (a 3-hour 192 kHz file
marks in minutes), and the next ``mark`` deletes it."""


@contextlib.contextmanager
def _no_watermark_hint(applies: bool) -> Iterator[None]:
    """A mark that cannot be read back from a user's file: say how to sign it without one."""
    try:
        yield
    except UnreadableMarkError as exc:
        if not applies or isinstance(exc, MarkLostInEncodingError):
            raise
        raise type(exc)(f"{exc.message}; nothing was published (`foleyseal sign` gives a file C2PA "
                        "credentials without a watermark)", path=exc.path) from exc


@contextlib.contextmanager
def _silent_video_hint() -> Iterator[None]:
    """A video with no sound to mark: say what makes it one."""
    try:
        yield
    except NoAudioError as exc:
        raise NoAudioError(f"{exc.message}; `foleyseal generate` makes a soundtrack for a video, marked and "
                           "signed", path=exc.path) from exc


@contextlib.contextmanager
def _published_files_named(reservation: _Reservation) -> Iterator[None]:
    """An interrupt delivered after the output was published names it (and its sidecar):
    :func:`provenance.core.errors.published_before`."""
    try:
        yield
    except BaseException as exc:
        if reservation.published:
            note_published(exc, tuple(p for p in (reservation.sidecar, reservation.output_path) if p is not None))
        raise


def _check_paths(input_path: Path, output_path: Path, source_video: Path | None) -> None:
    if not input_path.exists():
        raise InputError("input file not found", path=input_path)
    if not input_path.is_file():
        raise InputError("input is not a regular file", path=input_path)
    if not output_path.parent.is_dir():
        what = "is a file, not a folder" if output_path.parent.exists() else "does not exist"
        raise InputError(f"the output's folder {what}", path=output_path.parent)
    if output_path.is_dir():
        raise InputError("output path is a directory", path=output_path)
    check_writable(output_path)  # a device or pipe named as OUTPUT is not replaced (as root, /dev/null)
    if same_file(output_path, input_path):
        # mark replaces OUTPUT: the unmarked original would be gone
        raise InputError("output is the input file; mark writes a new file", path=output_path)
    if source_video is not None and not source_video.is_file():
        raise InputError("source video not found", path=source_video)
    if source_video is not None and same_file(output_path, source_video):
        raise InputError("output is the source video; mark writes a new file", path=output_path)
    if source_video is not None and not audio_io.is_video(source_video):
        # c2pa read it only after the watermark work: "Io: failed to fill whole buffer"
        raise InputError("source video is not a readable video file (empty, corrupt, or audio only)",
                         path=source_video)
    if audio_io.is_video_extension(output_path) and audio_io.is_video(input_path):
        # before a payload is reserved: the picture and subtitles must fit the output container
        audio_io.check_video_output(input_path, output_path)


def _ingredient_mime(path: Path) -> str:
    """MIME type to reference ``path`` as an ingredient, from its content where that can be told
    (a FLAC named .wav: c2pa read it as WAV and failed with "Unknown error" after all the
    watermark work), else from its name (c2pa accepts opaque bytes too)."""
    return content_mime(path) or MIME_BY_SUFFIX.get(path.suffix.lower(), "application/octet-stream")


def _output_mime(input_path: Path, output_path: Path) -> str:
    """The MIME type ``output_path``'s extension asks for. Audio without a picture into an ISO
    BMFF name (.mp4, .mov: an audio-only MP4 is common, and what `watermark embed` writes) is
    ``audio/mp4``; Matroska and WebM names are for videos (their audio files are .mka, .ogg)."""
    mime = mime_for(output_path)
    if mime in _VIDEO_MIMES and not audio_io.is_video(input_path):
        audio_io.audio_info(input_path)  # an unreadable input is reported as such, not as audio
        if mime in ("video/mp4", "video/quicktime"):
            return "audio/mp4"
        raise InputError(f"is a video container ({output_path.suffix}) and the input {input_path.name} has "
                         "no picture; name the output .mka, .m4a, .mp4, .ogg or .flac", path=output_path)
    return mime


def _working_folder(output_path: Path) -> tempfile.TemporaryDirectory[str]:
    """mark's private temporary folder beside ``output_path`` (a failure names the output); the
    folders that killed runs left there are removed first."""
    sweep_stale(output_path.parent, ".foleyseal-mark.")
    try:
        return tempfile.TemporaryDirectory(prefix=f".foleyseal-mark{owner_tag()}", dir=output_path.parent)
    except OSError as exc:
        raise output_error(exc, output_path) from exc


def _manifest_spec(
    input_path: Path,
    source_video: Path | None,
    *,
    video_sha: str | None,
    generation_record: dict[str, Any] | None,
    include_prompts: bool,
    generated: bool,
    mime: str,
    title: str,
    label: str,
    key_id: str,
    payload: str,
    duration_s: float,
    replaced: _PriorMark | None = None,
) -> ManifestSpec:
    """The manifest of the marked output: the watermark (``payload`` bound over its
    ``duration_s`` seconds, and the ``replaced`` mark the input carried), the input as parent
    ingredient unless ``generated``, the source video as an ``inputTo`` ingredient, and the
    generation record."""
    extra: dict[str, Any] = {"watermark": {"alg": SOFT_BINDING_ALG, "key_id": key_id}}
    if replaced is not None:
        # the input's own credentials may be gone (a stripped copy): this is then the one link
        # from the new record to the one its watermark led to
        extra["watermark"]["replaces"] = {"payload": replaced.payload, "manifest": replaced.record_id}
    parent = None
    if not generated:
        extra["input_sha256"] = sha256_file(input_path)
        parent = Ingredient(input_path, _ingredient_mime(input_path), "parentOf", title=input_path.name)
    inputs: tuple[Ingredient, ...] = ()
    if source_video is not None:
        inputs = (
            Ingredient(source_video, _ingredient_mime(source_video), "inputTo", title=source_video.name),
        )
    record_data = generation_assertion(
        generation_record,
        include_prompts=include_prompts,
        source_video_sha256=video_sha,
        operation="generate" if generation_record else "mark",
        extra=extra,
    )
    return ManifestSpec(
        mime_type=mime,
        title=title,
        generated=generated,
        soft_binding=SoftBinding(
            SOFT_BINDING_ALG, (SoftBindingBlock(0.0, round(duration_s, 3), payload),)
        ),
        generation_record=record_data,
        parent=parent,
        inputs=inputs,
        label=label,
    )


@dataclass(frozen=True)
class _PriorMark:
    """This operator's watermark found in the input: its payload, and the store's record of it."""

    payload: str
    record_id: str | None


def _prior_mark(input_path: Path, key: WatermarkKey, store: ManifestStore) -> _PriorMark | None:
    """The watermark of ``key`` that ``input_path`` already carries (marking replaces it), and
    the store's record of its payload; None when it carries none."""
    payload = prior_payload(input_path, key)
    if payload is None:
        return None
    record = store.find_by_payload(SOFT_BINDING_ALG, payload)
    return _PriorMark(payload, record.id if record is not None else None)


@dataclass
class _Reservation:
    """The store's reservation for manifest ``label``, and what was written for it beside
    ``output_path``. As a context: any failure before the output is published deletes the
    sidecar and the reservation/record (see the module docstring); the store is closed either
    way."""

    store: ManifestStore
    label: str
    output_path: Path
    sidecar: Path | None = None
    published: bool = False
    found: OutputSnapshot | None = None
    """What lay at ``output_path`` when the run began; taken on entering when not given."""

    def __enter__(self) -> _Reservation:
        if self.found is None:
            self.found = OutputSnapshot.of(self.output_path)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None and not self.published:
                self._roll_back(exc)
        finally:
            with contextlib.suppress(Exception):
                self.store.close()

    def _roll_back(self, exc: BaseException) -> None:
        """Delete the sidecar and the reservation/record after ``exc``."""
        if self.sidecar is not None:
            self.sidecar.unlink(missing_ok=True)
        try:
            self.store.discard(self.label)
        except Exception as cleanup_exc:  # keep the original error; say what was left
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note(f"also failed to delete store reservation {self.label}: {cleanup_exc}")

    def sign_and_publish(
        self, spec: ManifestSpec, identity: SigningIdentity, marked: Path, signed: Path, payload: str,
        duration_s: float, before_publishing: Callable[[], None] = lambda: None,
    ) -> tuple[StoreRecord, bool]:
        """Sign ``marked`` into ``signed``, complete the reservation with the manifest, then
        publish: the sidecar (for formats c2pa cannot embed into), then the output. Returns the
        record and whether the manifest is embedded. ``before_publishing`` is called once the
        signature is made, before the record is completed."""
        embedded, manifest, digest = sign_to(spec, identity, marked, signed)
        before_publishing()
        record = StoreRecord(
            id=self.label,
            payload=payload,
            algorithm=SOFT_BINDING_ALG,
            manifest=manifest,
            asset_sha256=digest,
            mime_type=spec.mime_type,
            duration_s=duration_s,
            created_at=dt.datetime.now(dt.timezone.utc),
            title=spec.title,
        )
        with _directory_locked(self.output_path.parent):
            # Two runs writing one output both said "marked", and both records were published,
            # for one file: the first to publish keeps it, the other fails and takes its record back.
            if _file_identity(self.output_path) != self.found.identity:
                raise OutputError("was written by another process while this run went on: not replaced (run "
                                  "again to replace it)", path=self.output_path)
            self.store.publish(record)
            if not embedded:
                self.sidecar = sidecar_path(self.output_path)
                atomic_write_bytes(self.sidecar, manifest)
            replace_keeping_mode(signed, self.output_path)
            self.published = True
        return record, embedded


def _file_identity(path: Path) -> tuple[int, ...] | None:
    """Device, inode, size and modification time (ns) of ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class OutputSnapshot:
    """What lay at an output path when a run began (device, inode, size and modification time;
    None: no file): :func:`mark` replaces only that, so of two runs writing one output the
    second to finish fails instead of silently replacing the first's published file."""

    identity: tuple[int, ...] | None

    @classmethod
    def of(cls, path: str | Path) -> OutputSnapshot:
        return cls(_file_identity(Path(path)))


@contextlib.contextmanager
def _directory_locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (flock on the folder itself: no lock
    file is left behind): the publishing of two marks into one folder takes turns."""
    import fcntl

    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a folder one may write into but not list: published unlocked
        yield
        return
    try:
        with contextlib.suppress(OSError):  # a file system without locks (some network ones): unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def mark(
    input_path: str | Path,
    output_path: str | Path,
    *,
    settings: Settings | None = None,
    generation_record: dict[str, Any] | None = None,
    source_video: Path | None = None,
    include_prompts: bool = True,
    generated: bool = False,
    title: str | None = None,
    audio: Audio | None = None,
    confirm: bool = True,
    progress: Callable[[str, float], None] | None = None,
    found: OutputSnapshot | None = None,
) -> MarkResult:
    """Watermark, sign and record ``input_path`` into ``output_path`` (format from its extension).

    ``generated=True`` discloses the audio as AI-generated (``c2pa.created`` with
    ``trainedAlgorithmicMedia``); otherwise the input is someone else's file that FoleySeal
    opened and edited (``c2pa.opened`` + ``c2pa.edited``, the input as parent ingredient).
    ``generation_record`` (generator, version, prompt, negative_prompt, seed, parameters ...)
    goes into the ``org.foleyseal.generation`` assertion, without the prompts when
    ``include_prompts`` is False. ``source_video`` (the video the soundtrack was made for)
    becomes an ``inputTo`` ingredient and its SHA-256 is recorded.

    ``audio``, when given, is the soundtrack to mark instead of ``input_path``'s own audio:
    ``input_path`` is then the video it was made for (first sample with its first picture), whose
    video stream is copied into a video ``output_path``; an audio ``output_path`` gets the
    soundtrack alone. Generators use it to deliver without an intermediate file.
    With ``confirm`` (the default), the mark is read back from the file written, as a verifier
    holding the manifest store would read it (and, with ``audio``, from the marked audio in
    memory first): :class:`UnreadableMarkError` (nothing published, no record) unless the
    detector finds the payload, so audio too silent to carry the mark (digital silence, a few
    short sounds), or an output codec that takes it, is never published as marked. Such a file
    can still get C2PA credentials, without a watermark, from :func:`provenance.sign.sign`.
    ``progress(stage, share)`` follows the marking and the read-back (:func:`embed_file`).
    ``found``: what lay at ``output_path`` when the caller's run began (``generate``, before it
    made the soundtrack); by default, what lies there when this call begins. An output another
    process wrote since is not replaced (:class:`OutputError`).
    An input that already carries this operator's watermark gets the new payload in place of the
    old one (a file carries one at a time); the old payload and its record are named in
    :class:`MarkResult` and in the manifest's generation record (``watermark.replaces``), so the
    new record leads to the old one even when the input's own credentials were stripped.

    Raises :class:`InputError`/:class:`FormatError` for bad files, :class:`KeyFileError` for
    missing keys, :class:`SigningError`, :class:`StoreError`; on any error nothing is left
    behind.
    """
    settings = settings or load_settings()
    input_path, output_path = path_argument("input_path", input_path), path_argument("output_path", output_path)
    source_video = path_argument("source_video", source_video) if source_video is not None else None
    generated, include_prompts = flag_argument("generated", generated), flag_argument("include_prompts", include_prompts)
    title, confirm = text_argument("title", title), flag_argument("confirm", confirm)
    _check_paths(input_path, output_path, source_video)
    mime = _output_mime(input_path, output_path)

    # Everything that can fail cheaply fails before the store is touched.
    identity = load_identity(settings)
    wm_key = load_home_key(settings)
    if audio is None:
        with _silent_video_hint():
            audio_io.audio_info(input_path)  # no sound to mark, or none that decodes: said before the store
    video_sha = sha256_file(source_video) if source_video is not None else None
    title = valid_unicode(title or output_path.name)

    label = new_manifest_label()
    with _Reservation(open_store(settings), label, output_path, found=found) as reservation, \
            _published_files_named(reservation), contextlib.ExitStack() as publishing:
        prior = _prior_mark(input_path, wm_key, reservation.store) if audio is None else None
        # A killed run's reservation would stay for good, counted among the issued payloads
        reservation.store.purge_reservations(older_than_s=STALE_RESERVATION_S)
        payload = reservation.store.reserve_payload(label, SOFT_BINDING_ALG)
        with _working_folder(output_path) as tmp, writing_beside(output_path):
            tmpdir = Path(tmp)
            marked = tmpdir / f"watermarked{output_path.suffix}"
            with reported_as(marked, output_path), _no_watermark_hint(audio is None):
                embed_file(input_path, marked, wm_key, payload, audio=audio, confirm=confirm, progress=progress)
            duration_s = audio_io.audio_info(marked).duration_s
            spec = _manifest_spec(
                input_path, source_video, video_sha=video_sha, generation_record=generation_record,
                include_prompts=include_prompts, generated=generated, mime=mime, title=title, label=label,
                key_id=wm_key.key_id, payload=payload, duration_s=duration_s, replaced=prior,
            )
            # From publishing until the working folder is gone, a stop signal waits: arriving in
            # between, it left the folder (with a whole marked copy of a video) behind and said
            # "interrupted" of a run whose output was published. It is delivered afterwards.
            record, embedded = reservation.sign_and_publish(
                spec, identity, marked, tmpdir / f"signed{output_path.suffix}", payload, duration_s,
                before_publishing=lambda: publishing.enter_context(stop_signals_deferred()),
            )
    return MarkResult(output=output_path, payload=payload, record=record, manifest_embedded=embedded,
                      sidecar=reservation.sidecar, replaced_payload=prior.payload if prior else None,
                      replaced_record=prior.record_id if prior else None)
