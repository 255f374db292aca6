"""Decode video with PyAV: frame timestamps from the stream, frames reduced for analysis.

Timing comes only from each frame's presentation timestamp (``pts * time_base``), so
variable frame rate and odd rates (30000/1001) need no special case. Frames are yielded
one at a time at a reduced size; nothing accumulates, so memory does not grow with length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from provenance.core.errors import FormatError, InputError
from provenance.core.io.common import tagged_duration_s
from provenance.core.io.read import cut_short, not_a_video_container
from v2a_core.types import Frame, VideoInfo

#: Long side of the analysis frames, pixels.
DEFAULT_MAX_SIDE = 320
_MIN_SIDE = 16


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a video file", path=path)
    if not path.is_file():  # a pipe or a device: FFmpeg would wait on it, or read nothing
        raise InputError("is not a regular file (a pipe, device or socket), not a video file", path=path)
    if path.stat().st_size == 0:
        raise InputError("is empty (0 bytes)", path=path)
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise FormatError(f"cannot be read as a video file ({reason})", path=path) from exc


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if (what := not_a_video_container(container)) is not None:
        raise InputError(f"is {what}; FoleySeal generates soundtracks for videos", path=path)
    streams = [s for s in container.streams.video if s.codec_context is not None]
    # Cover art is stored as a one-packet "video" stream; it is not a video.
    streams = [s for s in streams if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise InputError(
            f"has no video stream (streams: {', '.join(kinds)}); FoleySeal generates soundtracks for videos",
            path=path,
        )
    return streams[0]


def probe(path: str | Path) -> VideoInfo:
    """Read the container header of ``path``; raise InputError/FormatError if it has no usable video."""
    path = Path(path)
    with _open(path) as container:
        vs = _video_stream(container, path)
        cc = vs.codec_context
        duration = 0.0
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = vs.average_rate or vs.guessed_rate or Fraction(0)
        return VideoInfo(
            path=path,
            width=int(cc.width or 0),
            height=int(cc.height or 0),
            duration_s=max(0.0, duration),
            frame_count=int(vs.frames or 0),
            average_fps=float(rate),
            codec=cc.name or "unknown",
            has_audio=bool(container.streams.audio),
            rotation_deg=0,
            start_s=_start_s(vs),
        )


def _start_s(vs: av.video.stream.VideoStream) -> float:
    """The stream's start time, seconds, never below 0 (a negative start is the codec's delay)."""
    if vs.start_time is None or not vs.time_base:
        return 0.0
    return max(0.0, float(vs.start_time * vs.time_base))


def _declared_end_s(vs: av.video.stream.VideoStream) -> float | None:
    """Where the video stream's header says it ends, seconds: start time + the stream's own
    duration, or, in Matroska/WebM, its ``DURATION`` tag (an end time); None when it says nothing.
    The container's duration is not used: it covers every stream, and an audio track may run on."""
    start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    if vs.duration and vs.time_base:
        return start + float(vs.duration * vs.time_base)
    tagged = tagged_duration_s(vs)
    if tagged is None:
        return None
    # FFmpeg's Matroska muxer writes the stream's end time there (last timestamp + duration), not
    # its length; read as a length, a picture starting 0.5 s in was "truncated" by 0.5 s. A tag
    # below the start can only be a length. Read as an end, a length understates the end by the
    # start: the check only becomes more lenient.
    return tagged if tagged > start else start + tagged


def _check_complete(path: Path, declared_end_s: float | None, decoded_end_s: float) -> None:
    """:class:`FormatError` when the frames decoded end well before the header's declared end:
    the file is truncated or damaged. The tolerance is the audio reader's (``cut_short``: 0.25 s
    or 2 %), applied to seconds (a "sample rate" of 1 Hz)."""
    if declared_end_s is not None and cut_short(declared_end_s, decoded_end_s, 1):
        raise FormatError(
            f"video is truncated or damaged: its frames end at {decoded_end_s:.2f} s of the "
            f"{declared_end_s:.2f} s its header declares",
            path=path,
        )


def analysis_size(width: int, height: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """(width, height) of analysis frames: aspect kept, long side <= ``max_side``, even, never upscaled."""
    if width <= 0 or height <= 0:
        raise InputError(f"video has invalid dimensions {width}x{height}")
    scale = min(1.0, max_side / max(width, height))
    w = max(_MIN_SIDE, int(round(width * scale / 2)) * 2)
    h = max(_MIN_SIDE, int(round(height * scale / 2)) * 2)
    return w, h


def _plane(plane: av.video.plane.VideoPlane) -> np.ndarray:
    buf = np.frombuffer(plane, np.uint8)
    return buf.reshape(plane.height, plane.line_size)[:, : plane.width]


def _shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (w, h): an integer-factor area average first (OpenCV's fast path),
    then bilinear for the remainder, instead of a slow fractional area resize."""
    w, h = size
    k = min(img.shape[1] // w, img.shape[0] // h)
    if k >= 4:
        # halve by taking every other pixel first (a free view): area-averaging a 4x4 block
        # costs five times more than a 2x2 one and the analysis does not need the extra
        # anti-aliasing of a 1280x720 picture shrunk to 320x180
        img = img[::2, ::2]
        k //= 2
    if k >= 2:
        img = cv2.resize(img, (img.shape[1] // k, img.shape[0] // k), interpolation=cv2.INTER_AREA)
    if img.shape[1] != w or img.shape[0] != h:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def _small_yuv(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3) YUV of ``frame`` at ``size``; reads planes directly for 4:2:0 (no colour conversion)."""
    w, h = size
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"):
        planes = frame.planes
        y = _shrink(_plane(planes[0]), (w, h))
        u = _shrink(_plane(planes[1]), (w, h))
        v = _shrink(_plane(planes[2]), (w, h))
        return cv2.merge((y, u, v))
    small = frame.reformat(width=w, height=h, format="yuv444p")
    return np.dstack([_plane(p).copy() for p in small.planes[:3]])


def _frame_duration_s(frame: av.VideoFrame, vs: av.video.stream.VideoStream, step_s: float) -> float:
    """How long ``frame`` is shown, seconds: its own duration where the container gives one (a
    still held at the end counts whole), else the last frame interval ``step_s``."""
    duration = getattr(frame, "duration", None)
    if duration and vs.time_base:
        return float(duration * vs.time_base)
    return step_s


def _rotate(img: np.ndarray, rotation_deg: int) -> np.ndarray:
    turns = (-(rotation_deg // 90)) % 4  # display matrix angle is counter-clockwise
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def iter_frames(
    path: str | Path,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    max_duration_s: float | None = None,
) -> Iterator[Frame]:
    """Yield every frame of the first video stream, reduced to the analysis size, with its timestamp.

    Times are ``pts * time_base`` in seconds from the stream's start (its first picture is at
    0 s whatever the file's timestamps start at); a frame with no timestamp gets the previous
    time plus the previous frame interval. Frames whose time goes backwards are dropped.
    Raises InputError when the file has no video stream or no decodable frame, and FormatError,
    once the frames run out, when they end well before the end the stream's header declares
    (a truncated or damaged file; not checked when ``max_duration_s`` stopped the decoding).
    """
    path = Path(path)
    container = _open(path)
    vs: av.video.stream.VideoStream | None = None
    drained = False  # whether the decoder gave up every frame it held (decoding ran to the end)
    try:
        vs = _video_stream(container, path)
        vs.thread_type = "AUTO"
        cc = vs.codec_context
        size: tuple[int, int] | None = None
        rotation: int | None = None
        index = 0
        last_t: float | None = None
        end_t = 0.0  # end of the last decoded frame, seconds: its time plus its duration
        step = 1.0 / float(vs.average_rate) if vs.average_rate else 1.0 / 30.0
        origin = _start_s(vs)
        reached_limit = False
        try:
            for frame in container.decode(vs):
                t = frame.time
                if t is None:
                    t = (last_t + step) if last_t is not None else 0.0
                t = float(t) - origin
                if last_t is not None:
                    if t <= last_t:
                        continue  # duplicate or out-of-order timestamp: keep time monotonic
                    step = t - last_t
                if max_duration_s is not None and t > max_duration_s:
                    reached_limit = True
                    break
                if rotation is None:
                    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                    fw, fh = frame.width, frame.height
                    if rotation in (90, 270):
                        fw, fh = fh, fw
                    size = analysis_size(fw, fh, max_side)
                assert size is not None
                w, h = size
                coded = (h, w) if rotation in (90, 270) else (w, h)
                img = _rotate(_small_yuv(frame, coded), rotation)
                half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
                shown = _frame_duration_s(frame, vs, step)
                yield Frame(index=index, time_s=t, yuv=img, half=half, shown_s=shown)
                index += 1
                last_t = t
                end_t = t + shown
            else:
                drained = True
        except av.error.FFmpegError as exc:
            if index == 0:
                raise FormatError(f"video stream cannot be decoded ({exc})", path=path) from exc
            # A damaged tail: keep what decoded, unless much is missing (checked below).
        if index == 0:
            raise InputError(
                f"video stream ({cc.name or 'unknown codec'}) has no decodable frames", path=path
            )
        if not reached_limit:  # the whole file was read: did it hold every frame it declares?
            _check_complete(path, _declared_end_s(vs), origin + end_t)
    finally:
        if vs is not None and not drained:
            _drain(vs)
        container.close()


def _drain(vs: av.video.stream.VideoStream) -> None:
    """Let the decoder finish the frames its threads hold before it is freed (decoding stopped
    early: ``max_duration_s``, a damaged tail, a consumer that stopped).

    PyAV frees a decoder holding the GIL and waits there for its frame threads; a frame thread
    that logs meanwhile waits for the GIL in PyAV's log callback (installed once anyone sets
    ``av.logging``'s level, as verification does to quiet FFmpeg), and the two wait for each
    other forever. Draining (``decode(None)``: no more packets) leaves the threads idle first."""
    with contextlib.suppress(av.error.FFmpegError, ValueError, RuntimeError):
        for _ in vs.codec_context.decode(None):
            pass


_END = object()


def prefetch(frames: Iterator[Frame], depth: int = 16) -> Iterator[Frame]:
    """Run ``frames`` (decoding and resizing) in a background thread, ``depth`` frames ahead.

    FFmpeg and OpenCV release the GIL, so decoding overlaps with the analysis of earlier
    frames on a second core. Errors raised while decoding are re-raised here, in order.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=worker, name="foleyseal-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        close = getattr(frames, "close", None)
        thread.join(timeout=5)
        if close is not None and not thread.is_alive():
            close()
