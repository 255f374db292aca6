"""Container probing with PyAV: format, streams, codecs, duration, sample rate, channels.

Only demuxers for audio and audio-in-video containers are accepted; FFmpeg will happily
"recognise" a text file as ANSI art (``tty``) or a PNG as a video, and a verifier must not
pretend such files are media. Probing reads headers only (bounded by ``probesize``).
"""

from __future__ import annotations

import os
from pathlib import Path

from provenance.core.errors import FormatError
from provenance.core.io import main_audio_stream
from provenance.core.io.headers import kind_by_signature

from detectors.report import ContainerInfo, StreamInfo

# FFmpeg demuxer name -> (short format name, extension, mime type). For the ISO-BMFF family
# the entry is refined from the brand and the presence of video (see _refine_bmff).
_DEMUXERS: dict[str, tuple[str, str, str]] = {
    "wav": ("wav", ".wav", "audio/wav"),
    "w64": ("w64", ".w64", "audio/x-w64"),
    "flac": ("flac", ".flac", "audio/flac"),
    "mp3": ("mp3", ".mp3", "audio/mpeg"),
    "ogg": ("ogg", ".ogg", "audio/ogg"),
    "mov,mp4,m4a,3gp,3g2,mj2": ("mp4", ".mp4", "video/mp4"),
    "matroska,webm": ("webm", ".webm", "video/webm"),
    "aiff": ("aiff", ".aiff", "audio/aiff"),
    "aac": ("aac", ".aac", "audio/aac"),
    "ac3": ("ac3", ".ac3", "audio/ac3"),
    "caf": ("caf", ".caf", "audio/x-caf"),
    "au": ("au", ".au", "audio/basic"),
    "avi": ("avi", ".avi", "video/x-msvideo"),
    "mpegts": ("mpegts", ".ts", "video/mp2t"),
}

# Extensions that name each short format (to flag a file whose name lies about its content).
_EXTENSIONS: dict[str, set[str]] = {
    "wav": {".wav", ".wave"},
    "w64": {".w64"},
    "flac": {".flac"},
    "mp3": {".mp3"},
    "ogg": {".ogg", ".oga", ".opus"},
    "mp4": {".mp4", ".m4v", ".m4a", ".mov", ".3gp"},
    "m4a": {".m4a", ".mp4", ".aac"},
    "mov": {".mov", ".qt", ".mp4"},
    "webm": {".webm", ".mkv", ".mka"},
    "mkv": {".mkv", ".mka"},
    "aiff": {".aiff", ".aif", ".aifc"},
    "aac": {".aac", ".adts"},
    "ac3": {".ac3"},
    "caf": {".caf"},
    "au": {".au", ".snd"},
    "avi": {".avi"},
    "mpegts": {".ts", ".m2ts", ".mts", ".m2t", ".trp"},
}

_PROBE_OPTIONS = {"probesize": str(8 * 1024 * 1024), "analyzeduration": str(10_000_000)}


def _quiet_ffmpeg() -> None:
    # FFmpeg logs every oddity of a hostile file to stderr; the report carries what matters.
    import av.logging

    av.logging.set_level(av.logging.PANIC)


def _refine_bmff(container: object, has_video: bool) -> tuple[str, str, str]:
    brand = str(getattr(container, "metadata", {}).get("major_brand", "")).strip().lower()
    if brand == "qt":
        return ("mov", ".mov", "video/quicktime")
    if not has_video:
        return ("m4a", ".m4a", "audio/mp4")
    return ("mp4", ".mp4", "video/mp4")


def _refine_matroska(path: Path, has_video: bool) -> tuple[str, str, str]:
    """WebM or Matroska, from the EBML header's DocType (FFmpeg names one demuxer for both): a
    Matroska file (H.264 and AAC, say, which WebM cannot hold) is no WebM."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        head = b""
    if b"matroska" in head:
        return ("mkv", ".mkv", "video/x-matroska") if has_video else ("mkv", ".mka", "audio/x-matroska")
    return ("webm", ".webm", "video/webm") if has_video else ("webm", ".webm", "audio/webm")


def probe(path: str | Path, *, name: str | None = None) -> ContainerInfo:
    """Probe ``path`` and describe its container.

    ``name`` is the file name as given by the user (an upload's name), used only to compare its
    extension with the detected format. Raises :class:`FormatError` for files that are not in
    an audio or video container; a container without an audio stream (a silent video) is
    described, with no sample rate, channels or codec (:attr:`ContainerInfo.has_audio`).
    """
    import av

    _quiet_ffmpeg()
    path = Path(path)
    size = _file_size(path, shown=name or path)
    try:
        container = av.open(str(path), options=_PROBE_OPTIONS)
    except av.error.FFmpegError as exc:
        kind = kind_by_signature(path)
        if kind is not None:  # an MP4 whose index was never written (a download cut short) reads so
            raise FormatError(
                f"starts like {kind} file, but its container cannot be parsed: it is probably cut short "
                "(an interrupted download or copy) or damaged", path=name or path,
            ) from exc
        raise FormatError(
            "not a recognised audio or video file (the container could not be parsed)", path=name or path
        ) from exc
    except (OSError, ValueError, MemoryError, OverflowError) as exc:
        raise FormatError(f"not a readable audio or video file ({type(exc).__name__})", path=name or path) from exc
    try:
        return _describe(container, path, name, size)
    finally:
        container.close()


def _file_size(path: Path, shown: str | Path) -> int:
    """Size of ``path`` in bytes; :class:`FormatError` (naming ``shown``) when unreadable or empty."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise FormatError(f"cannot read file: {exc.strerror}", path=shown) from exc
    if size == 0:
        raise FormatError("file is empty (0 bytes)", path=shown)
    return size


def _describe(container: object, path: Path, name: str | None, size: int) -> ContainerInfo:
    """Describe an opened ``container`` of ``size`` bytes; the main audio stream (the one decoded,
    :func:`provenance.core.io.main_audio_stream`) sets rate and codec."""
    demuxer = container.format.name
    if demuxer not in _DEMUXERS:
        raise FormatError(
            f"not an audio or video file (content looks like '{container.format.long_name or demuxer}')",
            path=name or path,
        )
    streams = [_stream_info(s) for s in container.streams]
    audio = [s for s in streams if s.kind == "audio"]
    # Cover art in an MP3 or M4A shows up as a one-frame "video" (mjpeg/png): not a video.
    video = [s for s in streams if s.kind == "video" and s.codec not in ("mjpeg", "png", "bmp", "gif")]
    if audio:
        main = main_audio_stream(container).index
        audio.sort(key=lambda s: s.index != main)  # the main one first
    fmt, ext, mime = _DEMUXERS[demuxer]
    if fmt == "mp4":
        fmt, ext, mime = _refine_bmff(container, bool(video))
    elif fmt == "webm":
        fmt, ext, mime = _refine_matroska(path, bool(video))
    elif fmt == "ogg" and audio and audio[0].codec == "opus":
        ext = ".opus"
    duration = None
    if container.duration is not None and container.duration > 0:
        duration = container.duration / 1_000_000.0
    elif audio and audio[0].duration_s:
        duration = audio[0].duration_s
    given_ext = Path(name or path.name).suffix.lower()
    mismatch = bool(given_ext) and given_ext not in _EXTENSIONS.get(fmt, {ext})
    return ContainerInfo(
        format=fmt,
        format_long=container.format.long_name or demuxer,
        mime_type=mime,
        extension=ext,
        size_bytes=size,
        duration_s=duration,
        sample_rate=audio[0].sample_rate if audio else None,
        channels=audio[0].channels if audio else None,
        codec=audio[0].codec if audio else None,
        has_video=bool(video),
        streams=tuple(streams),
        extension_mismatch=mismatch,
    )


def _stream_info(s: object) -> StreamInfo:
    """One stream's kind, codec and parameters (Hz, seconds); a field it lacks or gets wrong is None."""
    kind = s.type or "data"
    # Unknown codecs (a hostile fmt tag) have no codec context at all.
    cc = getattr(s, "codec_context", None)
    dur = None
    try:
        if s.duration is not None and s.time_base is not None:
            dur = float(s.duration * s.time_base)
    except (TypeError, ZeroDivisionError, OverflowError):
        dur = None
    if dur is None:  # Matroska/WebM: in a tag (a cut file's shortfall is then noted too)
        from provenance.core.io.common import tagged_duration_s

        dur = tagged_duration_s(s)
    return StreamInfo(
        index=int(s.index),
        kind=kind,
        codec=getattr(cc, "name", None) if cc is not None else None,
        sample_rate=int(cc.sample_rate) if kind == "audio" and getattr(cc, "sample_rate", 0) else None,
        channels=int(cc.channels) if kind == "audio" and getattr(cc, "channels", 0) else None,
        width=int(cc.width) if kind == "video" and getattr(cc, "width", 0) else None,
        height=int(cc.height) if kind == "video" and getattr(cc, "height", 0) else None,
        duration_s=dur if dur is not None and dur >= 0 else None,
        bit_rate=int(s.bit_rate) if getattr(s, "bit_rate", None) else None,
    )
