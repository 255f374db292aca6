"""Lossy codec round trips, in memory: MP3, AAC, Opus (PyAV encoders) and Vorbis (libvorbis).

The round trip is ``provenance.core.io.encode_decode`` (the project's one codec path, so the
benchmark attacks exactly what FoleySeal writes); where that module is absent, a private PyAV
round trip below does the same job. Both encode, mux into the codec's usual container (mp3, mp4,
ogg), demux and decode; the containers carry the encoder delay (LAME/Xing gapless header, MP4 edit
list, Ogg pre-skip), so the decoded audio stays time-aligned with the input (within a few samples
where a rate must be converted), and it is trimmed or padded to the input length. Bitrates are for
the whole stream (MP3 of more than two channels: per 1-2 channel stream).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import av
import numpy as np
import soundfile as sf

from benchmarks.attacks.base import Attack, AttackContext, fit_length, resample
from provenance.core.audio import Audio
from provenance.core.errors import FormatError, InputError

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _codec_rate(rate_hz: int, allowed: tuple[int, ...], prefer_hz: int | None = None) -> int:
    if prefer_hz is not None:
        return prefer_hz
    if rate_hz in allowed:
        return rate_hz
    higher = [r for r in allowed if r >= rate_hz]
    return min(higher) if higher else max(allowed)


def pyav_round_trip(
    samples: np.ndarray, rate_hz: int, *, codec: str, container: str, bitrate_kbps: float | None,
    codec_rate_hz: int, options: dict[str, str] | None = None,
) -> np.ndarray:
    """Encode ``(1 or 2, n)`` float32 samples with PyAV and decode them back, in memory.

    Returns ``(channels, m)`` float32 at ``codec_rate_hz`` (m >= n - a few samples).
    """
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    x = samples if rate_hz == codec_rate_hz else resample(samples, rate_hz, codec_rate_hz)
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format=container) as oc:
            st = oc.add_stream(codec, rate=codec_rate_hz, options=options or {})
            st.layout = layout
            if bitrate_kbps:
                st.bit_rate = int(bitrate_kbps * 1000)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, dtype=np.float32), format="fltp", layout=layout)
            frame.sample_rate = codec_rate_hz
            frame.pts = 0
            for packet in st.encode(frame):
                oc.mux(packet)
            for packet in st.encode(None):
                oc.mux(packet)
        buf.seek(0)
        chunks = []
        with av.open(buf, "r") as ic:
            stream = ic.streams.audio[0]
            for fr in ic.decode(stream):
                a = fr.to_ndarray()
                if not fr.format.is_planar:
                    a = a.reshape(-1, fr.layout.nb_channels).T
                chunks.append(a.astype(np.float32))
    except av.FFmpegError as exc:
        raise FormatError(f"{codec} round trip failed: {exc}") from exc
    if not chunks:
        return np.zeros((samples.shape[0], 0), np.float32)
    return np.concatenate(chunks, axis=1)


@dataclass(frozen=True, kw_only=True)
class _PyAVCodec(Attack):
    """Common round trip of the PyAV codecs (see the module docstring)."""

    bitrate_kbps: float
    kind: ClassVar[str] = "codec"
    _codec: ClassVar[str] = ""
    _container: ClassVar[str] = ""
    _rates: ClassVar[tuple[int, ...]] = ()
    _prefer_rate_hz: ClassVar[int | None] = None

    _io_name: ClassVar[str] = ""
    _kbps_range: ClassVar[tuple[float, float]] = (6.0, 512.0)
    """Bitrates the encoder takes, kbps (per stream): outside them it clamps, and a row would
    record a bitrate that was never used (MP3 at 9999 kbps ran as 320)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self._kbps_range
        if not lo <= self.bitrate_kbps <= hi:
            raise InputError(f"attack {self.name!r}: bitrate_kbps must be {lo:g} to {hi:g} kbps for "
                             f"{type(self).__name__}, got {self.bitrate_kbps!r}")

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        try:
            from provenance.core.io import encode_decode
        except ImportError:
            return self._own_round_trip(audio)
        out = encode_decode(audio, self._io_name, self.bitrate_kbps)
        return audio.with_samples(fit_length(out.samples, audio.frames))

    def _own_round_trip(self, audio: Audio) -> Audio:
        sr = audio.sample_rate
        crate = _codec_rate(sr, self._rates, self._prefer_rate_hz)
        out = np.empty_like(audio.samples)
        for c0 in range(0, audio.channels, 2):
            group = audio.samples[c0 : c0 + 2]
            y = pyav_round_trip(
                group, sr, codec=self._codec, container=self._container,
                bitrate_kbps=self.bitrate_kbps, codec_rate_hz=crate,
            )
            if crate != sr:
                y = resample(y, crate, sr)
            out[c0 : c0 + group.shape[0]] = fit_length(y, audio.frames)
        return audio.with_samples(out)


@dataclass(frozen=True, kw_only=True)
class Mp3(_PyAVCodec):
    """MP3 (LAME through PyAV) at a constant bitrate ``bitrate_kbps``."""

    _io_name: ClassVar[str] = "mp3"
    _kbps_range: ClassVar[tuple[float, float]] = (8.0, 320.0)
    _codec: ClassVar[str] = "libmp3lame"
    _container: ClassVar[str] = "mp3"
    _rates: ClassVar[tuple[int, ...]] = _MP3_RATES


@dataclass(frozen=True, kw_only=True)
class Aac(_PyAVCodec):
    """AAC-LC (FFmpeg's native encoder through PyAV) in MP4 at ``bitrate_kbps``."""

    _io_name: ClassVar[str] = "aac"
    _codec: ClassVar[str] = "aac"
    _container: ClassVar[str] = "ipod"
    _rates: ClassVar[tuple[int, ...]] = _AAC_RATES


@dataclass(frozen=True, kw_only=True)
class Opus(_PyAVCodec):
    """Opus (libopus through PyAV) in Ogg; always coded at 48 kHz, as Opus players do."""

    _io_name: ClassVar[str] = "opus"
    _kbps_range: ClassVar[tuple[float, float]] = (6.0, 510.0)
    _codec: ClassVar[str] = "libopus"
    _container: ClassVar[str] = "ogg"
    _rates: ClassVar[tuple[int, ...]] = _OPUS_RATES
    _prefer_rate_hz: ClassVar[int | None] = 48000


@dataclass(frozen=True, kw_only=True)
class Vorbis(Attack):
    """Ogg Vorbis at an ``oggenc`` quality (-1..10; q2 is ~96 kbps stereo), via libvorbis in libsndfile.

    FFmpeg's own Vorbis encoder is experimental and ignores quality settings, and this PyAV build
    has no libvorbis, so the reference encoder is reached through soundfile instead.
    """

    quality: float = 2.0
    kind: ClassVar[str] = "codec"

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        try:
            from provenance.core.io import encode_decode
        except ImportError:
            pass
        else:
            out = encode_decode(audio, "vorbis", quality=self.quality)
            return audio.with_samples(fit_length(out.samples, audio.frames))
        # libsndfile maps compression_level c in [0, 1] to libvorbis VBR quality 1 - c,
        # and libvorbis quality q/10 is oggenc's -q q.
        level = float(np.clip(1.0 - self.quality / 10.0, 0.0, 1.0))
        buf = io.BytesIO()
        try:
            sf.write(buf, audio.samples.T, audio.sample_rate, format="OGG", subtype="VORBIS", compression_level=level)
            buf.seek(0)
            y, _ = sf.read(buf, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise FormatError(f"Vorbis round trip failed: {exc}") from exc
        return audio.with_samples(fit_length(np.ascontiguousarray(y.T), audio.frames))
