"""Video: replacing the audio track of a video file while copying its video streams."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

from provenance.core.atomic import atomic_path
from provenance.core.audio import Audio
from provenance.core.errors import FoleySealError, FormatError, InputError
from provenance.core.io.common import (
    _VIDEO_MUXERS,
    WRITE_FORMATS,
    PathLike,
    _as_block,
    _check_file,
    _check_finite,
    _check_params,
    _output_mode,
    _wrapped,
)
from provenance.core.io.read import _is_moving_picture, _rechunk
from provenance.core.io.write import _AvAudioEncoder, _check_codec_channels, _validate_audio


_WEBM_VIDEO_CODECS = {"vp8", "vp9", "av1", "libdav1d", "libvpx", "libvpx-vp9"}


def replace_audio_track(video_in: PathLike, audio: Audio, video_out: PathLike, *,
                        codec: str | None = None, bitrate_kbps: float | None = 192,
                        start_s: float | None = None) -> None:
    """Write ``video_out``: the video stream(s) of ``video_in`` copied packet for packet (no
    re-encode) plus ``audio`` encoded as its only audio track; the old audio is dropped.

    The output container follows the extension of ``video_out`` (mp4, m4v, mov, mkv, webm).
    ``codec`` is ``aac`` (default for MP4/MOV/MKV; FFmpeg's fast coder), ``opus`` (default, and the
    only choice, for WebM), ``mp3``, or ``float`` (uncompressed 32-bit float PCM, MKV only: a
    lossless intermediate); ``bitrate_kbps`` is the audio bitrate.

    ``start_s`` is the time (s, on the video's timeline) at which the first sample plays. By
    default it is the start time of the audio track being replaced (0.0 if there is none), so
    audio read with :func:`read_audio` from ``video_in`` and written back stays in sync even when
    the track starts late (real files often start it tens of ms after time 0). Pass
    ``start_s=0.0`` for audio made against the video's own timeline, e.g. a generated soundtrack.
    The new track always starts at time 0, with ``start_s`` of leading silence: MP4/MOV cannot
    both delay an AAC track and trim its encoder priming, so silence is the portable way.

    Written atomically. Raises FormatError if ``video_in`` has no video stream or the container
    cannot hold the streams. :func:`replace_audio_track_stream` does the same with the audio
    given block by block, for tracks of any length in bounded memory.
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    _validate_audio(audio, video_out)
    x, step = audio.samples, _feed_frames(audio.sample_rate)
    blocks = (x[:, i:i + step] for i in range(0, audio.frames, step))
    _write_video(video_in, video_out, blocks, audio.sample_rate, audio.channels,
                 codec=codec, bitrate_kbps=bitrate_kbps, start_s=start_s)


def replace_audio_track_stream(video_in: PathLike, blocks: Iterable[np.ndarray | Audio],
                               video_out: PathLike, *, sample_rate: int, channels: int,
                               codec: str | None = None, bitrate_kbps: float | None = 192,
                               start_s: float | None = None) -> None:
    """:func:`replace_audio_track` with the new audio given as consecutive ``blocks`` of float
    samples ``(channels, frames)`` (or :class:`Audio` at ``sample_rate``), of any sizes, instead
    of one :class:`Audio`: each block is encoded and muxed as the video packets reach its time
    and then dropped, so memory stays bounded at any length (the blocks are pulled about one
    second of the timeline ahead of the video packets copied).

    Same container, codec, ``start_s`` and atomic-write rules. The blocks are checked as they
    arrive: a wrong shape or rate, NaN/Inf samples, or no samples at all raise :class:`InputError`
    naming ``video_out``, and what the iterator itself raises propagates unchanged; either way
    ``video_out`` is left as it was and no temporary file remains.
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    _check_params(sample_rate, channels, video_out)
    checked = _checked_blocks(blocks, int(sample_rate), int(channels), video_out)
    try:
        _write_video(video_in, video_out, checked, int(sample_rate), int(channels),
                     codec=codec, bitrate_kbps=bitrate_kbps, start_s=start_s)
    except _BlockSourceError as failed:
        raise failed.error from None


class _BlockSourceError(Exception):
    """Carries an exception raised by the caller's block iterator past :func:`_wrapped`, which
    would report it as a fault of the output file."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _checked_blocks(blocks: Iterable[np.ndarray | Audio], sample_rate: int, channels: int,
                    path: Path) -> Iterator[np.ndarray]:
    """The caller's blocks as float32 ``(channels, n)``, each checked; InputError if none holds a sample."""
    source = iter(blocks)
    position = 0
    while True:
        try:
            data = next(source)
        except StopIteration:
            break
        except FoleySealError:
            raise
        except Exception as exc:
            raise _BlockSourceError(exc) from exc
        block = _as_block(data, channels, sample_rate, path)
        _check_finite(block, path, position, sample_rate)
        position += block.shape[1]
        if block.shape[1]:
            yield block
    if position == 0:
        raise InputError("no audio samples were given (zero length)", path=path)


def _feed_frames(sample_rate: int) -> int:
    """Frames handed to the encoder at a time: a quarter of a second."""
    return max(1, sample_rate // 4)


def _write_video(video_in: Path, video_out: Path, blocks: Iterator[np.ndarray], sample_rate: int,
                 channels: int, *, codec: str | None, bitrate_kbps: float | None,
                 start_s: float | None) -> None:
    """The checks and the atomic write shared by :func:`replace_audio_track` and
    :func:`replace_audio_track_stream`; ``blocks`` are the new audio, already validated."""
    ext = video_out.suffix.lower().lstrip(".")
    if ext not in _VIDEO_MUXERS:
        raise FormatError(f"cannot write video with extension {video_out.suffix!r}; supported: "
                          f"{', '.join(sorted(_VIDEO_MUXERS))}", path=video_out)
    muxer, format_key = _VIDEO_MUXERS[ext]
    allowed = WRITE_FORMATS[format_key].subtypes
    subtype = (codec or allowed[0]).upper()
    if subtype not in allowed:
        raise FormatError(f"a {ext} file cannot carry {subtype} audio; use "
                          f"{' or '.join(s.lower() for s in allowed)}", path=video_out)
    _check_codec_channels(subtype, channels, video_out)
    if start_s is not None and not (math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"start_s must be a finite time >= 0 s, got {start_s}", path=video_out)
    with _wrapped(video_in, "read the video"), av.open(str(video_in)) as src:
        videos = [s for s in src.streams.video if _is_moving_picture(s)]
        if not videos:
            raise FormatError("contains no video stream", path=video_in)
        foreign = sorted({s.codec_context.name for s in videos} - _WEBM_VIDEO_CODECS)
        if muxer == "webm" and foreign:
            # copied packets cannot change codec; say so before anything is written
            raise FormatError(f"WebM holds VP8, VP9 or AV1 video only, and {video_in.name} is "
                              f"{', '.join(foreign)}; write .mkv, .mp4 or .mov instead", path=video_out)
        _check_video_fits(videos, muxer, ext, video_in, video_out)
        if start_s is None:
            start_s = _audio_start_s(src)
        start_frame = round(start_s * sample_rate)
        with atomic_path(video_out, mode=_output_mode()) as tmp, \
                _wrapped(video_out, f"write the {ext} file"), \
                av.open(str(tmp), "w", format=muxer) as dst:
            _remux_with_audio(src, videos, dst, blocks, sample_rate, channels, subtype,
                              bitrate_kbps, start_frame)


def _check_video_fits(videos: list[av.VideoStream], muxer: str, ext: str, video_in: Path, video_out: Path) -> None:
    """:class:`FormatError` naming the codec and the containers that take it when the ``muxer``
    cannot hold the copied video (VP9 in MOV, VP8 in MP4...), before anything is written."""
    if _takes(muxer, videos):
        return
    codecs = ", ".join(sorted({s.codec_context.name for s in videos}))
    takers = [e for e, (m, _) in sorted(_VIDEO_MUXERS.items()) if e != ext and _takes(m, videos)]
    instead = f"; write {', '.join('.' + e for e in takers)} instead" if takers else ""
    raise FormatError(f"a .{ext} file cannot hold {video_in.name}'s {codecs} video (it is copied, not "
                      f"re-encoded){instead}", path=video_out)


def _takes(muxer: str, videos: list[av.VideoStream]) -> bool:
    """Whether ``muxer`` can hold ``videos`` as they are: their header is written to memory (no
    table of codecs per container to keep in step with FFmpeg's)."""
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as trial:
            for s in videos:
                trial.add_stream_from_template(s)
            trial.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True


def _timeline_blocks(blocks: Iterable[np.ndarray], channels: int, start_frame: int,
                     chunk: int) -> Iterator[np.ndarray]:
    """The new audio track from time 0 in blocks of ``chunk`` frames (the last ones may be
    shorter): ``start_frame`` frames of silence, then the samples of ``blocks`` regrouped."""
    for i in range(0, start_frame, chunk):
        yield np.zeros((channels, min(chunk, start_frame - i)), np.float32)
    yield from _rechunk(blocks, chunk)


def _audio_start_s(container: av.container.InputContainer) -> float:
    """Start time (s) of the main audio stream on the container timeline; 0.0 without audio."""
    if not container.streams.audio:
        return 0.0
    stream = container.streams.best("audio") or container.streams.audio[0]
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return max(0.0, float(stream.start_time * stream.time_base))


def _remux_with_audio(src: av.container.InputContainer, videos: list[av.VideoStream],
                      dst: av.container.OutputContainer, audio: Iterable[np.ndarray],
                      sample_rate: int, channels: int, subtype: str, bitrate_kbps: float | None,
                      start_frame: int) -> None:
    """Copy the packets of ``videos`` into ``dst`` and encode the ``audio`` blocks alongside,
    starting at frame ``start_frame`` of the timeline, interleaved: audio is pulled and encoded
    about 1 s ahead of the video packets, so the muxer never buffers much and only a block or
    two of ``audio`` is held at a time."""
    out_streams = {s: dst.add_stream_from_template(s) for s in videos}
    # A soundtrack for video is delivered at a generous bitrate, where FFmpeg's "fast" AAC
    # coder is transparent and three times faster than its default two-loop search.
    options = {"aac_coder": "fast"} if subtype == "AAC" else None
    encoder = _AvAudioEncoder(dst, subtype, sample_rate, channels,
                              bitrate_kbps=bitrate_kbps, options=options)
    blocks = _timeline_blocks(audio, channels, start_frame, _feed_frames(sample_rate))
    pending = next(blocks, None)
    position = 0  # frames of the track encoded so far, from time 0

    def feed_audio_until(t_s: float) -> None:
        nonlocal pending, position
        while pending is not None and position < t_s * sample_rate:
            for packet in encoder.encode(pending):
                dst.mux(packet)
            position += pending.shape[1]
            pending = next(blocks, None)

    for packet in src.demux(videos):
        if packet.size == 0:
            continue  # demuxer flush packet, carries no data
        # Matroska stores no DTS, so its first packets of B-frame video come without one
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is not None:
            feed_audio_until(float(stamp * packet.time_base) + 1.0)
        packet.stream = out_streams[packet.stream]
        dst.mux(packet)
    feed_audio_until(math.inf)
    for packet in encoder.flush():
        dst.mux(packet)
