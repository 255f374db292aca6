"""Writing: the output format from a name or extension, sinks for soundfile and PyAV, and
:class:`AudioWriter`, which streams blocks into a temporary file renamed on success."""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import av
import numpy as np
import soundfile as sf

from provenance.core.atomic import atomic_path
from provenance.core.audio import Audio
from provenance.core.errors import FormatError, InputError
from provenance.core.io.common import (
    _AV_ENCODERS,
    _AV_LOSSLESS_CODED,
    _AV_PCM,
    _FORMAT_ALIASES,
    _HIGH_RES_SUBTYPES,
    _INT_BITS,
    _LAYOUTS,
    _MAX_CHANNELS_BY_CODEC,
    _VORBIS_FROM_WAV,
    WRITE_FORMATS,
    PathLike,
    _WriteFormat,
    _as_block,
    _check_finite,
    _check_params,
    _default_kbps,
    _float_to_int,
    _output_mode,
    _packed_frame,
    _pick_rate,
    _vorbis_quality,
    _wrapped,
)
from provenance.core.io.read import _decode_stream


def _resolve_format(path: Path, format: str | None) -> _WriteFormat:
    """The output format named by ``format`` or, if None, by the extension of ``path``."""
    key = (format or path.suffix.lstrip(".")).lower()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in WRITE_FORMATS:
        named = f"format {format!r}" if format else f"extension {path.suffix!r}"
        raise FormatError(f"cannot write audio with {named}; supported: "
                          f"{', '.join(sorted(WRITE_FORMATS))}", path=path)
    return WRITE_FORMATS[key]



def _resolve_subtype(fmt: _WriteFormat, subtype: str | None, hint: str | None, path: Path) -> str:
    """The subtype to write: the explicit one (must suit the format), else the source's subtype
    if the format takes it, else 24-bit for high-resolution sources, else the format default."""
    if subtype:
        chosen = subtype.upper()
        if chosen not in fmt.subtypes:
            raise FormatError(f"{fmt.key} cannot hold subtype {subtype!r}; it takes "
                              f"{', '.join(fmt.subtypes)}", path=path)
        return chosen
    hint = (hint or "").upper()
    if hint in fmt.subtypes:
        return hint
    if hint in _AV_LOSSLESS_CODED:
        # a FLAC or ALAC track that FFmpeg read (in Matroska, MP4) stays lossless: in the lossless
        # codec the format holds (FLAC into M4A: ALAC), else in 24-bit PCM (FFmpeg gives no depth
        # to go by); was AAC
        return lossless_codec(hint, fmt.subtypes) or ("PCM_24" if "PCM_24" in fmt.subtypes else fmt.subtypes[0])
    if hint in _HIGH_RES_SUBTYPES and "PCM_24" in fmt.subtypes:
        return "PCM_24"
    return fmt.subtypes[0]


def lossless_codec(family: str, allowed: tuple[str, ...]) -> str | None:
    """The lossless codec a FLAC or ALAC (``family``) track is written in where the subtypes
    ``allowed`` are: its own, else the other (FLAC into a MOV or an M4A: ALAC); None for neither."""
    return next((c for c in (family, *_AV_LOSSLESS_CODED) if c in allowed), None)


def output_subtype(path: PathLike, source_subtype: str | None, *, format: str | None = None) -> str:
    """The subtype :func:`write_audio` writes to ``path`` for audio whose own subtype is
    ``source_subtype`` when none is asked for: the source's where the format holds it (PCM_24
    stays PCM_24), 24-bit for other high-resolution sources, else the format's default (an IMA
    ADPCM or GSM 6.10 WAV, which FoleySeal reads but does not write, becomes PCM_16)."""
    path = Path(path)
    return _resolve_subtype(_resolve_format(path, format), None, source_subtype, path)


class _SoundFileSink:
    """Writes blocks through libsndfile (WAV, FLAC, Ogg Vorbis) to a path or a binary buffer."""

    def __init__(self, target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None, quality: float | None = None,
                 frames_hint: int | None = None) -> None:
        major = fmt.container
        kwargs: dict[str, Any] = {}
        auto_rf64 = False
        if major == "ogg":
            major = "OGG"
            if quality is None:
                kbps = bitrate_kbps or _default_kbps("VORBIS", channels)
                quality = _vorbis_quality(kbps, channels)
            # libsndfile maps compression level c to Vorbis quality (1 - c) * 10.
            kwargs["compression_level"] = float(np.clip(1.0 - quality / 10.0, 0.0, 1.0))
        if major == "WAV":
            bytes_per_frame = channels * {"PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(subtype, 2)
            if frames_hint is None:
                major, auto_rf64 = "RF64", True
            elif frames_hint * bytes_per_frame > 0xFFFF0000:
                major = "RF64"  # plain WAV cannot describe more than 4 GiB of data
        self._file = sf.SoundFile(os.fsencode(target) if isinstance(target, (str, Path)) else target, "w",
                                  samplerate=sample_rate, channels=channels, format=major,
                                  subtype=subtype, **kwargs)
        if auto_rf64:
            # Unknown length: start as RF64 and let libsndfile rewrite the header as WAV on close
            # when the data stays under 4 GiB.
            # soundfile has no wrapper for this command; 0x1210 is SFC_RF64_AUTO_DOWNGRADE.
            sf._snd.sf_command(self._file._file, 0x1210, sf._ffi.NULL, 1)
        self._bits = _INT_BITS.get(subtype)
        self._clip = subtype not in ("FLOAT", "DOUBLE", "VORBIS")
        self._perm = _VORBIS_FROM_WAV.get(channels) if major == "OGG" else None
        self._double = subtype == "DOUBLE"

    def write(self, block: np.ndarray) -> None:
        """Write float32 ``(channels, n)`` samples."""
        if self._perm is not None:
            block = block[self._perm]
        if self._bits is not None:
            data = _float_to_int(block, self._bits)
        elif self._clip:
            data = np.clip(block, -1.0, 1.0)
        else:
            data = block.astype(np.float64) if self._double else block
        self._file.write(np.ascontiguousarray(data.T))

    def close(self) -> None:
        self._file.close()


_OPUS_PROBE_RATE = 48_000
_OPUS_PROBE_FRAMES = 4_800  # 0.1 s: five 20 ms Opus frames


@functools.lru_cache(maxsize=None)
def _opus_input_order(channels: int) -> tuple[int, ...] | None:
    """The order in which to hand ``channels`` channels to FFmpeg's libopus encoder so that the
    file decodes in the order given, or None when no reordering is needed.

    FFmpeg's libopus wrapper moves channels into Opus' (Vorbis) speaker order with its table
    applied the wrong way round. That only shows where the permutation is not its own inverse, 5.0
    and 6.1: a 5.0 file played FC from the rear right and BL from the centre (libsndfile and FFmpeg's
    own decoder agree). Whether the FFmpeg inside PyAV has the fault is measured once per channel
    count: 0.1 s of a 100 Hz tone (which the LFE stream keeps) on one channel at a time is encoded
    and decoded in memory, and the answer undoes the permutation the round trips show.
    """
    t = np.arange(_OPUS_PROBE_FRAMES) / _OPUS_PROBE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 100.0 * t)).astype(np.float32)
    landed: list[int] = []
    for source in range(channels):
        block = np.zeros((channels, _OPUS_PROBE_FRAMES), np.float32)
        block[source] = tone
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="ogg") as container:
            stream = container.add_stream(_AV_ENCODERS["OPUS"], rate=_OPUS_PROBE_RATE,
                                          layout=_LAYOUTS[channels])
            for packet in [*stream.encode(_packed_frame(block, _OPUS_PROBE_RATE, 0)), *stream.encode(None)]:
                container.mux(packet)
        buffer.seek(0)
        with av.open(buffer, "r") as container:
            decoded = np.concatenate(list(_decode_stream(container, container.streams.audio[0])), axis=1)
        landed.append(int(np.argmax(np.sum(np.square(decoded, dtype=np.float64), axis=1))))
    if landed == list(range(channels)) or sorted(landed) != list(range(channels)):
        return None  # no fault, or a probe too ambiguous to act on
    return tuple(landed)


class _AvAudioEncoder:
    """Encodes float32 blocks into one new audio stream of an open PyAV output container,
    resampling first when the codec cannot run at the input rate."""

    def __init__(self, container: av.container.OutputContainer, codec: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None,
                 options: dict[str, str] | None = None) -> None:
        encoder = _AV_ENCODERS[codec]
        rate = _pick_rate(sample_rate, av.Codec(encoder, "w").audio_rates)
        self.sample_rate = sample_rate
        self.codec_rate = rate
        self.stream = container.add_stream(encoder, rate=rate, layout=_LAYOUTS[channels])
        if codec in _AV_LOSSLESS_CODED:
            self.stream.codec_context.format = _AV_LOSSLESS_CODED[codec]
        elif codec not in _AV_PCM:  # lossless coding has no bitrate to choose
            self.stream.bit_rate = int(1000 * (bitrate_kbps or _default_kbps(codec, channels, rate)))
        # FFmpeg scales float to 32 bits and keeps the top 24: round to the 24-bit grid first
        self._grid = float(1 << 23) if codec == "PCM_24" or codec in _AV_LOSSLESS_CODED else None
        if options:
            self.stream.options = options
        self._resampler = (av.AudioResampler(format="flt", layout=_LAYOUTS[channels], rate=rate)
                           if rate != sample_rate else None)
        self._order = _opus_input_order(channels) if codec == "OPUS" and channels > 2 else None
        self._pts = 0

    def encode(self, block: np.ndarray) -> list[av.Packet]:
        """Encode float32 ``(channels, n)`` samples at the input rate; return ready packets."""
        if block.shape[1] == 0:
            return []
        if self._order is not None:
            # input channel i lands on output channel order[i]; hand it what belongs there
            block = block[list(self._order)]
        if self._grid is not None:
            g = self._grid
            block = (np.clip(np.round(block * g), -g, g - 1) / g).astype(np.float32)
        frame = _packed_frame(block, self.sample_rate, self._pts)
        self._pts += block.shape[1]
        frames = self._resampler.resample(frame) if self._resampler else [frame]
        return [packet for f in frames for packet in self.stream.encode(f)]

    def flush(self) -> list[av.Packet]:
        """Drain the resampler and the encoder; return the last packets."""
        packets: list[av.Packet] = []
        if self._resampler is not None:
            for f in self._resampler.resample(None):
                packets.extend(self.stream.encode(f))
        packets.extend(self.stream.encode(None))
        return packets


_MIN_ENCODED_S = 0.005
"""The shortest audio, seconds, the lossy encoders here are given (below it they write nothing)."""


class _AvSink:
    """Writes blocks through PyAV (MP3, AAC, Opus, and PCM, FLAC or ALAC in FFmpeg's containers)
    into a container file or binary buffer."""

    def __init__(self, target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None) -> None:
        self._container = av.open(target if not isinstance(target, Path) else str(target), "w",
                                  format=fmt.container)
        try:
            self._encoder = _AvAudioEncoder(self._container, subtype, sample_rate, channels,
                                            bitrate_kbps=bitrate_kbps)
        except BaseException:
            self._container.close()
            raise
        self._subtype, self._rate, self._frames = subtype, sample_rate, 0

    def write(self, block: np.ndarray) -> None:
        """Encode and mux float32 ``(channels, n)`` samples."""
        self._frames += block.shape[-1]
        for packet in self._encoder.encode(block):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._encoder.flush():
                self._container.mux(packet)
        finally:
            self._container.close()
        shortest = math.ceil(_MIN_ENCODED_S * self._rate)
        lossy = self._subtype not in _AV_PCM and self._subtype not in _AV_LOSSLESS_CODED
        if 0 < self._frames < shortest and lossy:
            # a few samples vanish in the codec's delay: an empty Opus file, an M4A of no samples
            raise FormatError(f"{self._frames} samples are too short for the {self._subtype} encoder, which needs "
                              f"at least {shortest} ({_MIN_ENCODED_S * 1000:g} ms) to write any")


_SOUNDFILE_MAJORS = frozenset({"WAV", "FLAC", "AIFF", "CAF", "W64", "AU"})
"""The libsndfile major formats in :data:`WRITE_FORMATS` (the others name FFmpeg muxers; Ogg
is libsndfile's for Vorbis and FFmpeg's for Opus)."""


def _open_sink(target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
               channels: int, *, bitrate_kbps: float | None, quality: float | None = None,
               frames_hint: int | None = None) -> _SoundFileSink | _AvSink:
    """The sink that writes ``subtype`` in ``fmt``: libsndfile for its own formats (float WAV,
    AIFF and AU included), PyAV for FFmpeg's muxers and Opus."""
    if fmt.container not in _SOUNDFILE_MAJORS and subtype != "VORBIS":
        return _AvSink(target, fmt, subtype, sample_rate, channels, bitrate_kbps=bitrate_kbps)
    return _SoundFileSink(target, fmt, subtype, sample_rate, channels, bitrate_kbps=bitrate_kbps,
                          quality=quality, frames_hint=frames_hint)


class AudioWriter:
    """Streaming, atomic audio writer (a context manager).

    ``AudioWriter(path, sample_rate_hz, channels, format=..., subtype=..., bitrate_kbps=...)``
    writes to a temporary file beside ``path`` and renames it onto ``path`` when the ``with``
    block ends without error; on an exception (or if nothing was written) the temporary file is
    deleted and ``path`` is left as it was. ``format`` defaults to the extension of ``path``
    (see :data:`WRITE_FORMATS`); ``subtype`` to the format's default (WAV/FLAC: PCM_16).
    ``bitrate_kbps`` applies to lossy formats (for Vorbis it picks the nearest quality level) and
    is ignored by lossless ones; without it MP3 and AAC get 96 kbps per channel (MP3 at most 320
    kbps; AAC in proportion to the rate above 48 kHz, so 192 per channel at 96 kHz), Opus 64 and
    Vorbis the quality level nearest 96 per channel. ``frames_hint`` (expected total frames) lets
    WAV output use a plain WAV header; without it WAV is written as RF64 that libsndfile downgrades to WAV
    (WAVE_FORMAT_EXTENSIBLE) on close when it stays under 4 GiB. See the module docstring for
    clipping and resampling rules.
    """

    def __init__(self, path: PathLike, sample_rate: int, channels: int, *, format: str | None = None,
                 subtype: str | None = None, bitrate_kbps: float | None = None,
                 frames_hint: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        _check_params(self.sample_rate, self.channels, self.path)
        if bitrate_kbps is not None and not (math.isfinite(bitrate_kbps) and bitrate_kbps > 0):
            raise InputError(f"bitrate_kbps must be > 0, got {bitrate_kbps}", path=self.path)
        self.format = _resolve_format(self.path, format)
        self.subtype = _resolve_subtype(self.format, subtype, None, self.path)
        _check_codec_channels(self.subtype, self.channels, self.path)
        self.bitrate_kbps = bitrate_kbps
        self.frames_written = 0
        """Frames written so far, at ``sample_rate``."""
        self._frames_hint = frames_hint
        self._stack: contextlib.ExitStack | None = None
        self._sink: _SoundFileSink | _AvSink | None = None

    def __enter__(self) -> AudioWriter:
        if not self.path.parent.is_dir():
            raise InputError("output folder does not exist", path=self.path)
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path, mode=_output_mode()))
        try:
            with _wrapped(self.path, f"open a {self.format.key} writer"):
                self._sink = _open_sink(tmp, self.format, self.subtype, self.sample_rate,
                                        self.channels, bitrate_kbps=self.bitrate_kbps,
                                        frames_hint=self._frames_hint)
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)  # deletes the temporary file
            raise
        self._stack = stack
        return self

    def write(self, data: Audio | np.ndarray) -> None:
        """Append float samples ``(channels, frames)`` (or an :class:`Audio` at the writer's rate).

        Raises InputError for a wrong shape or rate and for NaN/Inf samples.
        """
        if self._sink is None:
            raise InputError("AudioWriter.write called outside its 'with' block", path=self.path)
        block = _as_block(data, self.channels, self.sample_rate, self.path)
        _check_finite(block, self.path, self.frames_written, self.sample_rate)
        with _wrapped(self.path, f"encode {self.format.key} audio"):
            self._sink.write(block)
        self.frames_written += block.shape[1]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        sink, stack = self._sink, self._stack
        self._sink = self._stack = None
        if stack is None or sink is None:
            return
        if exc is None and self.frames_written == 0:
            exc = InputError("no audio was written (zero length)", path=self.path)
            self._abort(sink, stack, exc)
            raise exc
        if exc is not None:
            self._abort(sink, stack, exc)
            return
        try:
            with _wrapped(self.path, f"finish the {self.format.key} file"):
                sink.close()
        except BaseException as close_exc:
            stack.__exit__(type(close_exc), close_exc, close_exc.__traceback__)
            raise
        stack.__exit__(None, None, None)  # renames the temporary file onto the target

    @staticmethod
    def _abort(sink: _SoundFileSink | _AvSink, stack: contextlib.ExitStack,
               exc: BaseException) -> None:
        """Close the sink quietly and delete the temporary file."""
        with contextlib.suppress(Exception):
            sink.close()
        stack.__exit__(type(exc), exc, exc.__traceback__)


def write_audio(path: PathLike, audio: Audio, *, format: str | None = None,
                subtype: str | None = None, bitrate_kbps: float | None = None) -> None:
    """Write ``audio`` to ``path`` atomically, in the format given by ``format`` or the extension.

    Without ``subtype``, the audio's own subtype is kept when the format can hold it (a PCM_24
    input stays PCM_24 in WAV/FLAC), so outputs match inputs. Integer outputs are rounded and
    clipped, never wrapped. Raises InputError for invalid audio (NaN/Inf, zero length,
    unsupported rate/channels) and FormatError for an unknown or unsuitable format.
    """
    path = Path(path)
    _validate_audio(audio, path)
    fmt = _resolve_format(path, format)
    chosen = _resolve_subtype(fmt, subtype, audio.subtype, path)
    with AudioWriter(path, audio.sample_rate, audio.channels, format=fmt.key, subtype=chosen,
                     bitrate_kbps=bitrate_kbps, frames_hint=audio.frames) as writer:
        writer.write(audio.samples)


def _check_codec_channels(subtype: str, channels: int, path: PathLike | None) -> None:
    """Raise FormatError if the codec cannot carry ``channels`` channels."""
    limit = _MAX_CHANNELS_BY_CODEC.get(subtype)
    if limit is not None and channels > limit:
        raise FormatError(f"{subtype} carries at most {limit} channels, got {channels}", path=path)


def _validate_audio(audio: Audio, path: PathLike | None) -> None:
    """:meth:`Audio.validate` with the file named in the error."""
    try:
        audio.validate()
    except InputError as exc:
        raise InputError(exc.message, path=path) from None


