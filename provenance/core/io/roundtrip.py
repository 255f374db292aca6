"""Lossy round trips in memory: encode with a codec and decode again (attacks, previews)."""

from __future__ import annotations

import io
import math

import av
import numpy as np
import soundfile as sf

from provenance.core.audio import Audio
from provenance.core.errors import FormatError, InputError
from provenance.core.io.common import (
    LOSSY_CODECS,
    _MAX_CHANNELS_BY_CODEC,
    _VORBIS_FROM_WAV,
    WRITE_FORMATS,
    _WriteFormat,
    _fit_length,
    _resample,
    _wrapped,
)
from provenance.core.io.read import _decode_stream
from provenance.core.io.write import _AvSink, _SoundFileSink, _validate_audio


_ROUND_TRIP_MUXERS = {"MP3": "mp3", "AAC": "mp4", "OPUS": "ogg"}
"""Containers that record encoder delay (LAME tag, MP4 edit list, Ogg pre-skip), so decoding
returns samples aligned with the input."""


def encode_decode(audio: Audio, codec: str, bitrate_kbps: float | None = None, *,
                  quality: float | None = None) -> Audio:
    """Encode ``audio`` with a lossy codec in memory and decode it again (an attack or a preview).

    ``codec`` is one of :data:`LOSSY_CODECS`. ``bitrate_kbps`` is the whole stream's bitrate
    (default: the writer defaults), except MP3 of more than 2 channels, which is coded as separate
    1-2 channel streams at ``bitrate_kbps`` each. ``quality`` (Vorbis only) is the Vorbis quality
    level 0..10 and overrides the bitrate. FLAC rounds to 16 bits and is otherwise lossless.

    The result has the input's rate, channel count, length and subtype, and lines up with it in
    time within a few samples: encoder delay is removed using the container's own records, rates
    the codec cannot carry are resampled (FFmpeg swresample) there and back, and the decoded
    signal is trimmed or zero-padded to the input length. Vorbis and FLAC run through libsndfile
    (libvorbis; PyAV's wheels carry only FFmpeg's experimental Vorbis encoder).
    """
    _validate_audio(audio, None)
    key = codec.lower()
    if key not in LOSSY_CODECS:
        raise FormatError(f"unknown codec {codec!r}; supported: {', '.join(LOSSY_CODECS)}")
    if quality is not None and key != "vorbis":
        raise FormatError(f"quality= applies to vorbis only; give bitrate_kbps for {key}")
    if bitrate_kbps is not None and not (math.isfinite(bitrate_kbps) and bitrate_kbps > 0):
        raise InputError(f"bitrate_kbps must be > 0, got {bitrate_kbps}")
    subtype = key.upper()
    group = _MAX_CHANNELS_BY_CODEC.get(subtype, audio.channels)
    parts = [
        _round_trip(audio.samples[c:c + group], audio.sample_rate, subtype, bitrate_kbps, quality)
        for c in range(0, audio.channels, group)
    ]
    samples = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return Audio(_fit_length(samples, audio.frames), audio.sample_rate, subtype=audio.subtype)


def _round_trip(samples: np.ndarray, sample_rate: int, subtype: str, bitrate_kbps: float | None,
                quality: float | None) -> np.ndarray:
    """Encode then decode ``(channels, n)`` samples in memory; return the decoded samples at
    ``sample_rate`` (length not yet fitted)."""
    channels = samples.shape[0]
    buffer = io.BytesIO()
    with _wrapped(None, f"encode {subtype} in memory"):
        if subtype in _ROUND_TRIP_MUXERS:  # FLAC and Vorbis go through libsndfile
            fmt = _WriteFormat(subtype.lower(), _ROUND_TRIP_MUXERS[subtype], (subtype,))
            sink: _SoundFileSink | _AvSink = _AvSink(buffer, fmt, subtype, sample_rate, channels,
                                                     bitrate_kbps=bitrate_kbps)
        else:
            fmt = WRITE_FORMATS["ogg" if subtype == "VORBIS" else "flac"]
            sink = _SoundFileSink(buffer, fmt, "VORBIS" if subtype == "VORBIS" else "PCM_16",
                                  sample_rate, channels, bitrate_kbps=bitrate_kbps, quality=quality)
        step = 1 << 16
        for i in range(0, samples.shape[1], step):
            sink.write(np.ascontiguousarray(samples[:, i:i + step]))
        sink.close()
    data = buffer.getvalue()
    with _wrapped(None, f"decode {subtype} in memory"):
        decoded, rate = _decode_bytes(data, subtype)
    return _resample(decoded, rate, sample_rate)


def _decode_bytes(data: bytes, subtype: str) -> tuple[np.ndarray, int]:
    """Decode an in-memory file; return float32 ``(channels, n)`` samples and their rate (Hz)."""
    if subtype in ("VORBIS", "FLAC"):
        block, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        block = block.T
        perm = _VORBIS_FROM_WAV.get(block.shape[0]) if subtype == "VORBIS" else None
        if perm is not None:
            wav = np.empty_like(block)
            wav[perm] = block
            block = wav
        return block, rate
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        out = list(_decode_stream(container, stream))
        return np.concatenate(out, axis=1), stream.codec_context.sample_rate


