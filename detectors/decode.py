"""Streaming, bounded decoding of any audio or video file to a mono float32 signal.

The verifier never holds a whole long file in memory: samples arrive in chunks, are mixed to
mono (the watermark lives in a mono mix anyway), non-finite values are zeroed and counted,
and a deadline and a length cap are checked between chunks, so a hostile file cannot make a
verification run for ever or allocate without bound.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from provenance.core.errors import FormatError, InputError
from provenance.core.io.common import COUNTED_TIMESTAMPS, gap_fillable, library_message

# Formats libsndfile decodes exactly and fast; everything else goes through FFmpeg (PyAV).
_SOUNDFILE_FORMATS = {"wav", "w64", "flac", "aiff", "caf", "au"}
_PYAV_CHUNK = 1 << 16
"""Samples per chunk handed on from FFmpeg-decoded streams."""
MIN_HOLE_S = 0.1
"""Shortest jump in a stream's timestamps, seconds, filled with silence (a few lost codec frames
of 20-30 ms shift later times by less than the detector's resolution)."""
_SF_CHUNK_SAMPLES = 4_000_000
"""Samples (all channels) per soundfile read: bounds memory for 8-channel 192 kHz files."""


class DeadlineExceeded(InputError):
    """Verification of this file took longer than the configured time limit."""


@dataclass
class DecodeStats:
    """Facts gathered while decoding (for the report's notes)."""

    sample_rate: int = 0
    """Hz of the decoded signal."""
    frames: int = 0
    """Mono samples decoded."""
    nonfinite: int = 0
    """NaN/Inf samples replaced by 0."""
    truncated_at_s: float | None = None
    """Set when decoding stopped at the length cap, seconds."""
    decode_errors: int = 0
    """Corrupt packets skipped by the decoder."""
    level_db: list[float] = field(default_factory=list)
    """Level of each ``level_step_s`` step of the signal, dBFS (RMS)."""
    level_step_s: float = 0.5
    start_s: float = 0.0
    """Where the decoded audio starts on the file's timeline, seconds (a video's audio track may
    start after its picture); the detector's times are the audio's own, and the report adds this."""
    audio_tracks: int = 1
    """Audio streams in the file (a film's languages and commentary)."""
    track: int = 0
    """Which of them was decoded (its position among them: the main one)."""
    damage: str | None = None
    """What the container's own structure shows of a file cut short or damaged (a WAV whose data
    chunk declares more than the file holds, an Ogg stream without its last page), or None."""
    holes: list[tuple[float, float]] = field(default_factory=list)
    """Stretches of the track's timeline without audio (damaged or missing packets), seconds from
    the start of the decoded audio: filled with silence, so that later times stay where they are."""
    jumps: list[tuple[float, float]] = field(default_factory=list)
    """Jumps in the track's timestamps too long to be lost audio (:func:`gap_fillable`): where in
    the decoded audio (s) and by how much (s); not filled, so later times are early by them."""


def _check_deadline(deadline: float | None, what: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded(f"verification exceeded its time limit while {what}")


def _sanitize(mono: np.ndarray, stats: DecodeStats) -> np.ndarray:
    finite = np.isfinite(mono)
    if not finite.all():
        stats.nonfinite += int((~finite).sum())
        mono = np.where(finite, mono, np.float32(0.0)).astype(np.float32, copy=False)
    # Float files may hold values far outside full scale; they are legal, but the detector
    # should not see 1e30: clip to a generous range.
    np.clip(mono, -64.0, 64.0, out=mono)
    return mono


class _SoundfileStopped(Exception):
    """libsndfile gave up on a damaged file after handing on ``frames`` mono samples (a FLAC
    frame that lost sync fails the whole read; FFmpeg's decoder skips it and goes on), or
    could not open it (``at_open``: a CAF cut short is "malformed" to it; FFmpeg reads it)."""

    def __init__(self, frames: int, cause: Exception, *, at_open: bool = False) -> None:
        super().__init__(str(cause))
        self.frames = frames
        self.cause = cause
        self.at_open = at_open


def _soundfile_chunks(path: Path, deadline: float | None, stats: DecodeStats, max_frames: int) -> Iterator[np.ndarray]:
    """Decode through libsndfile; :class:`_SoundfileStopped` when a read fails on damage."""
    import soundfile as sf

    from provenance.core.io.read import structure_damage

    try:
        # bytes: a file name that is not valid UTF-8 (Latin-1 from an old archive) opens too
        fh = sf.SoundFile(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        stats.damage = structure_damage(path, "")
        raise _SoundfileStopped(0, exc, at_open=True) from exc
    with fh:
        stats.damage = structure_damage(path, fh.format, fh.extra_info)
        channels = int(fh.channels)
        stats.sample_rate = int(fh.samplerate)
        if channels < 1 or stats.sample_rate < 1:
            raise FormatError("audio header is invalid (no channels or no sample rate)")
        step = max(1024, _SF_CHUNK_SAMPLES // channels)
        total = 0
        while total < max_frames:
            _check_deadline(deadline, "decoding")
            try:
                block = fh.read(min(step, max_frames - total), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError, MemoryError) as exc:
                raise _SoundfileStopped(total, exc) from exc
            if block.shape[0] == 0:
                break
            total += block.shape[0]
            yield block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0].copy()


def _count_decode_error(stats: DecodeStats, exc: Exception | None) -> None:
    """Count one corrupt packet or frame; past 1000 the stream is given up (``exc`` is named)."""
    stats.decode_errors += 1
    if stats.decode_errors > 1000:
        detail = f" ({exc})" if exc is not None else ""
        raise FormatError(f"audio stream is too corrupt to decode{detail}") from exc


class _Downmix:
    """Decoded frames of any sample format, channel layout and rate -> mono float32 at one rate (Hz).

    A stream whose parameters change mid-way (spliced MP3, or a corrupt AAC frame that decodes
    with 24 channels) gets a fresh resampler for each new set of parameters, so every frame goes
    through FFmpeg's own conversion. PyAV's resampler would otherwise hand a changed frame
    straight back when the first frame needed no conversion, and reading a frame with more than
    8 channels directly runs past PyAV's plane table (a crash, not an exception).
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._source: tuple[str, str, int, int] | None = None
        self._held: list[np.ndarray] = []
        """Samples drained from a replaced resampler, handed on with the next frame's."""

    def push(self, frame: av.AudioFrame, rate_hz: int) -> list[np.ndarray]:
        """Mono samples of ``frame`` at ``rate_hz`` (a resampler may hold some back until flush).
        A frame FFmpeg cannot convert raises its error; nothing converted before is lost."""
        source = (frame.format.name, frame.layout.name, frame.layout.nb_channels, int(frame.sample_rate))
        if source != self._source:
            self._held.extend(self._drain())
            self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate_hz)
            self._source = source
        assert self._resampler is not None
        converted = [of.to_ndarray()[0] for of in self._resampler.resample(frame)]
        out, self._held = self._held + converted, []
        return out

    def flush(self) -> list[np.ndarray]:
        """Every sample still held (none when nothing was pushed)."""
        out, self._held = self._held + self._drain(), []
        return out

    def _drain(self) -> list[np.ndarray]:
        """The samples the current resampler still holds; it is spent afterwards."""
        if self._resampler is None:
            return []
        try:
            return [of.to_ndarray()[0] for of in self._resampler.resample(None)]
        except (av.error.FFmpegError, ValueError):
            return []
        finally:
            self._resampler, self._source = None, None


def _pyav_chunks(path: Path, deadline: float | None, stats: DecodeStats, max_frames: int) -> Iterator[np.ndarray]:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, MemoryError, OverflowError) as exc:
        raise FormatError(f"cannot decode audio: {library_message(exc)}") from exc
    try:
        if not container.streams.audio:
            raise FormatError("no audio stream to decode")
        from provenance.core.io import main_audio_stream, timeline_start_s

        # the track every FoleySeal reader takes (and `mark` confirms): FFmpeg's best
        stream = main_audio_stream(container)
        stats.audio_tracks = len(container.streams.audio)
        stats.track = container.streams.audio.index(stream)

        stats.start_s = timeline_start_s(container, stream)
        downmix = _Downmix()
        total = 0
        pending: list[np.ndarray] = []
        pending_len = 0
        first_time: float | None = None  # the first frame's time on the stream's timeline, s
        pushed_s = 0.0  # audio pushed since, s
        filled_s = 0.0  # of which silence put in holes, s
        # MP3 and ADTS AAC carry no timestamps: FFmpeg counts them from the frames it finds, so
        # audio skipped over while resynchronising leaves no gap to place (the shortfall note says so)
        timestamped = container.format.name not in COUNTED_TIMESTAMPS
        packets = container.demux(stream)
        while total < max_frames:
            _check_deadline(deadline, "decoding")
            try:
                packet = next(packets)
            except (StopIteration, av.error.EOFError):
                break
            except (av.error.FFmpegError, ValueError, OverflowError):
                # PyAV's demuxer cannot be resumed after an error: keep what was decoded so far.
                stats.decode_errors += 1
                break
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError, OverflowError):
                # A corrupt packet: decoders resynchronise on the next one, as players do.
                _count_decode_error(stats, None)
                continue
            for frame in frames:
                if not frame.sample_rate or frame.samples <= 0:
                    continue
                if not stats.sample_rate:
                    stats.sample_rate = int(frame.sample_rate)
                if timestamped and frame.time is not None:
                    if first_time is None:
                        first_time = float(frame.time)
                    hole_s = float(frame.time) - first_time - pushed_s
                    if hole_s >= MIN_HOLE_S and not gap_fillable(hole_s, filled_s, pushed_s - filled_s):
                        # a damaged timestamp, not lost audio: 30 minutes of silence made of it
                        # took 1.5 GB; the rest of the audio is read on from here, as decoded
                        stats.jumps.append((pushed_s, hole_s))
                        first_time += hole_s
                    elif hole_s >= MIN_HOLE_S and total < max_frames:
                        # packets lost to damage: silence in their place keeps the rest on the
                        # file's timeline (a span after the hole was reported that much early)
                        for held in downmix.flush():
                            pending.append(held)
                            pending_len += held.shape[0]
                            total += held.shape[0]
                        silence = np.zeros(min(round(hole_s * stats.sample_rate), max_frames - total), np.float32)
                        stats.holes.append((pushed_s, pushed_s + hole_s))
                        pending.append(silence)
                        pending_len += silence.shape[0]
                        total += silence.shape[0]
                        pushed_s += hole_s
                        filled_s += hole_s
                pushed_s += frame.samples / frame.sample_rate
                try:
                    out = downmix.push(frame, stats.sample_rate)
                except (av.error.FFmpegError, ValueError) as exc:
                    _count_decode_error(stats, exc)
                    continue
                for mono in out:
                    total += mono.shape[0]
                    pending.append(mono)
                    pending_len += mono.shape[0]
                # Codec frames are ~1000 samples: hand them on in bigger pieces (cheaper downstream).
                if pending_len >= _PYAV_CHUNK:
                    yield np.concatenate(pending).astype(np.float32, copy=False)
                    pending, pending_len = [], 0
        pending.extend(downmix.flush())
        if pending:
            yield np.concatenate(pending).astype(np.float32, copy=False)
    finally:
        container.close()


def _soundfile_else_pyav(path: Path, deadline: float | None, stats: DecodeStats, max_frames: int) -> Iterator[np.ndarray]:
    """libsndfile's exact, fast decoding; where it fails on damage, FFmpeg's decoding of the
    rest (past the samples already handed on), which skips the damaged frames as players do."""
    try:
        yield from _soundfile_chunks(path, deadline, stats, max_frames)
        return
    except _SoundfileStopped as stopped:
        done, cause, at_open = stopped.frames, stopped.cause, stopped.at_open
    if not at_open:
        stats.decode_errors += 1
    skip, handed_on = done, done
    try:
        for chunk in _pyav_chunks(path, deadline, stats, max_frames):
            if skip >= chunk.shape[0]:
                skip -= chunk.shape[0]
                continue
            handed_on += chunk.shape[0] - skip
            yield chunk[skip:]
            skip = 0
    except FormatError as exc:
        if done == 0:
            raise FormatError(f"cannot decode audio: {library_message(cause)}") from exc
    if handed_on == 0:
        raise FormatError(f"cannot decode audio: {library_message(cause)}")


def iter_mono(
    path: str | Path,
    *,
    container_format: str,
    deadline: float | None = None,
    max_duration_s: float = 4 * 3600.0,
    stats: DecodeStats | None = None,
) -> Iterator[np.ndarray]:
    """Yield the file's audio as consecutive mono float32 chunks (rate in ``stats.sample_rate``).

    ``container_format`` is the short name from :func:`detectors.container.probe`; it picks the
    decoder. Decoding stops after ``max_duration_s`` (noted in ``stats.truncated_at_s``).
    Raises :class:`FormatError` when nothing can be decoded and :class:`DeadlineExceeded` past
    ``deadline`` (a ``time.monotonic()`` value).
    """
    path = Path(path)
    stats = stats if stats is not None else DecodeStats()
    use_sf = container_format in _SOUNDFILE_FORMATS
    if container_format == "ogg":  # FFmpeg decodes a cut Ogg stream to its last whole page, silently
        from provenance.core.io.read import structure_damage

        stats.damage = structure_damage(path, "OGG")
    # The frame cap needs the rate, known only after opening: use a generous bound first and
    # enforce the real one per chunk below.
    source = (_soundfile_else_pyav if use_sf else _pyav_chunks)(path, deadline, stats, 2**62)
    level_acc = np.zeros(0, dtype=np.float32)
    for chunk in source:
        if stats.sample_rate <= 0:
            raise FormatError("audio has no sample rate")
        cap = int(max_duration_s * stats.sample_rate)
        if stats.frames + chunk.shape[0] > cap:
            chunk = chunk[: max(0, cap - stats.frames)]
            stats.truncated_at_s = max_duration_s
        if chunk.shape[0] == 0:
            break
        chunk = _sanitize(chunk, stats)
        stats.frames += chunk.shape[0]
        # Level envelope (dBFS RMS per step), used to tell silent gaps from unmarked audio.
        step = max(1, int(stats.level_step_s * stats.sample_rate))
        level_acc = np.concatenate([level_acc, chunk]) if level_acc.size else chunk
        n = level_acc.shape[0] // step
        if n:
            ms = np.mean(np.square(level_acc[: n * step].reshape(n, step), dtype=np.float64), axis=1)
            stats.level_db.extend((10.0 * np.log10(ms + 1e-20)).tolist())
            level_acc = level_acc[n * step :].copy()
        yield chunk
        if stats.truncated_at_s is not None:
            break
    if level_acc.size:
        ms = float(np.mean(np.square(level_acc, dtype=np.float64)))
        stats.level_db.append(10.0 * np.log10(ms + 1e-20))
