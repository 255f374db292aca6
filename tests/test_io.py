"""Tests of provenance.core.io: real files in real formats, written and read with real codecs."""

from __future__ import annotations

import csv
import os
import re
import stat
import struct
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from provenance.core.audio import Audio
from provenance.core.errors import FoleySealError, FormatError, InputError, NoAudioError, OutputError
from provenance.core.io import (
    video_start_s,
    AudioWriter,
    audio_info,
    check_decodes,
    encode_decode,
    is_video,
    iter_audio_blocks,
    read_audio,
    replace_audio_track,
    replace_audio_track_stream,
    write_audio,
)

# --------------------------------------------------------------------------------------------
# helpers


def quantize(audio: Audio, bits: int) -> Audio:
    """The same signal on the ``bits``-bit grid (what an integer file can hold exactly)."""
    scale = 2.0 ** (bits - 1)
    q = np.clip(np.rint(audio.samples.astype(np.float64) * scale), -scale, scale - 1) / scale
    return audio.with_samples(q.astype(np.float32))


def lag_frames(reference: np.ndarray, other: np.ndarray) -> int:
    """Lag (frames) of ``other`` behind ``reference`` at the cross-correlation peak of the mono mixes."""
    a = reference.mean(axis=0)
    b = other.mean(axis=0)
    n = min(a.size, b.size)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(b[:n], size) * np.conj(np.fft.rfft(a[:n], size)), size)
    lag = int(np.argmax(corr))
    return lag - size if lag > size // 2 else lag


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long signals."""
    n = min(a.shape[-1], b.shape[-1])
    return float(np.corrcoef(a[..., :n].ravel(), b[..., :n].ravel())[0, 1])


def dominant_hz(channel: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak of one channel."""
    spectrum = np.abs(np.fft.rfft(channel * np.hanning(channel.size)))
    return float(np.argmax(spectrum) * sample_rate / channel.size)


def assert_same_channels(original: Audio, decoded: Audio) -> None:
    """Each decoded channel carries the tone of the same original channel (channel order kept).

    The LFE channel (index 3 of 6-8 channel layouts) is skipped: codecs low-pass it.
    """
    n = min(original.frames, decoded.frames)
    for c in range(original.channels):
        if original.channels >= 6 and c == 3:
            continue
        want = dominant_hz(original.samples[c, :n], original.sample_rate)
        got = dominant_hz(decoded.samples[c, :n], decoded.sample_rate)
        assert abs(got - want) < 15, f"channel {c}: tone {got:.0f} Hz, expected {want:.0f} Hz"


def png_bytes() -> bytes:
    """A valid 4x4 RGB PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(12) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def leftovers(directory: Path) -> list[str]:
    """Names of every file in ``directory`` (temporary files included)."""
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------
# lossless round trips


@pytest.mark.parametrize("subtype,bits", [("PCM_16", 16), ("PCM_24", 24), ("PCM_32", 32), ("FLOAT", None)])
@pytest.mark.parametrize("rate,channels", [(8_000, 1), (44_100, 2), (48_000, 6), (96_000, 8), (192_000, 2)])
def test_wav_round_trip_is_exact_and_keeps_subtype(tmp_path, make_audio, subtype, bits, rate, channels):
    audio = make_audio(rate, channels, 0.25, seed=rate + channels)
    if bits:
        audio = quantize(audio, min(bits, 24))  # float32 holds 24 bits exactly
    path = tmp_path / "x.wav"
    write_audio(path, audio, subtype=subtype)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames, info.format, info.subtype) == (
        rate, channels, audio.frames, "wav", subtype)
    back = read_audio(path)
    assert back.subtype == subtype
    np.testing.assert_array_equal(back.samples, audio.samples)


@pytest.mark.parametrize("subtype,bits", [("PCM_16", 16), ("PCM_24", 24)])
@pytest.mark.parametrize("rate,channels", [(8_000, 8), (44_100, 2), (48_000, 6), (96_000, 2), (192_000, 1)])
def test_flac_round_trip_is_exact_and_keeps_subtype(tmp_path, make_audio, subtype, bits, rate, channels):
    audio = quantize(make_audio(rate, channels, 0.25, seed=channels), bits)
    path = tmp_path / "x.flac"
    write_audio(path, audio, subtype=subtype)
    back = read_audio(path)
    assert (back.sample_rate, back.channels, back.subtype) == (rate, channels, subtype)
    np.testing.assert_array_equal(back.samples, audio.samples)


@pytest.mark.parametrize("source_subtype,target,expected", [
    ("PCM_16", "y.wav", "PCM_16"),
    ("PCM_24", "y.wav", "PCM_24"),
    ("FLOAT", "y.wav", "FLOAT"),
    ("PCM_24", "y.flac", "PCM_24"),
    ("FLOAT", "y.flac", "PCM_24"),   # FLAC holds no floats: keep 24 bits of resolution
    ("PCM_16", "y.flac", "PCM_16"),
    ("MP3", "y.wav", "PCM_16"),
])
def test_writer_matches_the_source_subtype(tmp_path, make_audio, source_subtype, target, expected):
    source = tmp_path / "source.wav"
    sub = source_subtype if source_subtype in ("PCM_16", "PCM_24", "FLOAT") else "PCM_16"
    write_audio(source, quantize(make_audio(44_100, 2, 0.2), 16), subtype=sub)
    audio = read_audio(source)
    assert audio.subtype == sub
    audio.subtype = source_subtype
    write_audio(tmp_path / target, audio)
    assert audio_info(tmp_path / target).subtype == expected


def test_explicit_subtype_wins_and_wrong_subtype_is_refused(tmp_path, make_audio):
    audio = make_audio(44_100, 1, 0.1, subtype="FLOAT")
    write_audio(tmp_path / "a.wav", audio, subtype="pcm_24")
    assert audio_info(tmp_path / "a.wav").subtype == "PCM_24"
    with pytest.raises(FormatError, match="FLOAT") as err:
        write_audio(tmp_path / "b.flac", audio, subtype="FLOAT")
    assert err.value.path == str(tmp_path / "b.flac")
    assert not (tmp_path / "b.flac").exists()


# --------------------------------------------------------------------------------------------
# clipping


@pytest.mark.parametrize("target,subtype,full_scale", [
    ("c.wav", "PCM_16", 2 ** 15), ("c.wav", "PCM_24", 2 ** 23), ("c.wav", "PCM_32", 2 ** 31),
    ("c.flac", "PCM_16", 2 ** 15), ("c.flac", "PCM_24", 2 ** 23),
])
def test_integer_outputs_clip_never_wrap(tmp_path, target, subtype, full_scale):
    just_below_one = np.nextafter(np.float32(1), 0)
    values = np.array([[1.5, -1.5, 1.0, -1.0, just_below_one, 3.0, -7.0, 0.25]], dtype=np.float32)
    write_audio(tmp_path / target, Audio(values, 44_100), subtype=subtype)
    back = read_audio(tmp_path / target).samples[0].astype(np.float64)
    top = (full_scale - 1) / full_scale
    np.testing.assert_allclose(back, [top, -1.0, top, -1.0, top, top, -1.0, 0.25], atol=1e-7)


@pytest.mark.parametrize("name", ["f.wav", "f.aiff", "f.au", "f.caf", "f.w64", "f.mkv"])
def test_float_output_keeps_samples_beyond_full_scale(tmp_path, name):
    """Float samples in every format that holds them. AIFF and AU were refused ("'AIFF' format
    does not support 'pcm_f32le'"): float went to FFmpeg's muxers instead of libsndfile."""
    values = np.array([[1.5, -2.0, 0.5]], dtype=np.float32)
    write_audio(tmp_path / name, Audio(values, 48_000), subtype="FLOAT")
    assert audio_info(tmp_path / name).subtype == "FLOAT"
    np.testing.assert_array_equal(read_audio(tmp_path / name).samples, values)


# --------------------------------------------------------------------------------------------
# lossy formats and containers


@pytest.mark.parametrize("name,rate,channels,out_rate,subtype,fmt", [
    ("a.ogg", 44_100, 2, 44_100, "VORBIS", "ogg"),
    ("a.ogg", 192_000, 1, 192_000, "VORBIS", "ogg"),
    ("a.ogg", 48_000, 8, 48_000, "VORBIS", "ogg"),
    ("a.opus", 48_000, 2, 48_000, "OPUS", "ogg"),
    ("a.opus", 44_100, 1, 48_000, "OPUS", "ogg"),     # Opus runs at 48 kHz
    ("a.opus", 48_000, 6, 48_000, "OPUS", "ogg"),
    ("a.mp3", 44_100, 2, 44_100, "MP3", "mp3"),
    ("a.mp3", 8_000, 1, 8_000, "MP3", "mp3"),
    ("a.mp3", 96_000, 2, 48_000, "MP3", "mp3"),       # MP3 stops at 48 kHz
    ("a.m4a", 44_100, 2, 44_100, "AAC", "m4a"),
    ("a.m4a", 96_000, 8, 96_000, "AAC", "m4a"),
    ("a.mp4", 48_000, 6, 48_000, "AAC", "mp4"),
    ("a.mov", 8_000, 1, 8_000, "AAC", "mov"),
    ("a.mkv", 48_000, 2, 48_000, "AAC", "mkv"),
    ("a.webm", 48_000, 2, 48_000, "OPUS", "webm"),
])
def test_lossy_round_trip(tmp_path, make_audio, name, rate, channels, out_rate, subtype, fmt):
    audio = make_audio(rate, channels, 0.6, seed=channels)
    path = tmp_path / name
    write_audio(path, audio)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.format, info.subtype) == (out_rate, channels, fmt, subtype)
    back = read_audio(path)
    assert (back.sample_rate, back.channels, back.subtype) == (out_rate, channels, subtype)
    expected_frames = round(audio.frames * out_rate / rate)
    if fmt == "mkv":  # Matroska keeps AAC's end padding (less than one 1024-frame packet)
        assert 0 <= back.frames - expected_frames <= 1024
    else:
        assert abs(back.frames - expected_frames) <= 2
    if out_rate != rate:
        common = np.gcd(rate, out_rate)
        back = Audio(resample_poly(back.samples, rate // common, out_rate // common, axis=1), rate)
    assert abs(lag_frames(audio.samples, back.samples)) <= 2
    assert correlation(audio.samples[:2], back.samples[:2]) > 0.9
    assert_same_channels(audio, back)
    assert leftovers(tmp_path) == [name]


def test_raw_adts_aac_is_readable(tmp_path, make_audio):
    audio = make_audio(44_100, 2, 0.5)
    write_audio(tmp_path / "a.aac", audio, bitrate_kbps=128)
    back = read_audio(tmp_path / "a.aac")
    assert (back.sample_rate, back.channels, back.subtype) == (44_100, 2, "AAC")
    # ADTS has no field for encoder delay: the priming samples stay in front (documented).
    assert 1024 <= lag_frames(audio.samples, back.samples) <= 2200


def test_bitrate_controls_size(tmp_path, make_audio):
    audio = make_audio(44_100, 2, 1.0)
    for ext in ("mp3", "m4a", "opus", "ogg"):
        write_audio(tmp_path / f"lo.{ext}", audio, bitrate_kbps=48)
        write_audio(tmp_path / f"hi.{ext}", audio, bitrate_kbps=256)
        lo, hi = (tmp_path / f"lo.{ext}").stat().st_size, (tmp_path / f"hi.{ext}").stat().st_size
        assert hi > 1.5 * lo, ext


def test_mp3_refuses_more_than_two_channels(tmp_path, make_audio):
    with pytest.raises(FormatError, match="at most 2 channels"):
        write_audio(tmp_path / "x.mp3", make_audio(44_100, 6, 0.1))
    assert leftovers(tmp_path) == []


def test_opus_inside_ogg_and_vorbis_order_interoperate_with_ffmpeg(tmp_path, make_audio):
    """A 6-channel Vorbis file written through libsndfile decodes in the same channel order
    with FFmpeg, which applies the Vorbis channel mapping itself."""
    audio = make_audio(48_000, 6, 0.5, seed=3)
    write_audio(tmp_path / "v.ogg", audio)
    with av.open(str(tmp_path / "v.ogg")) as container:
        resampler = av.AudioResampler(format="flt")
        frames = [f.to_ndarray().reshape(-1, 6).T for fr in container.decode(audio=0)
                  for f in resampler.resample(fr)]
    assert_same_channels(audio, Audio(np.concatenate(frames, axis=1), 48_000))
    audio.subtype = "OPUS"
    write_audio(tmp_path / "o.ogg", audio)
    assert audio_info(tmp_path / "o.ogg").subtype == "OPUS"


@pytest.mark.parametrize("channels", [3, 4, 5, 6, 7, 8])
def test_multichannel_opus_keeps_each_speaker(tmp_path, make_audio, channels):
    # FFmpeg's libopus wrapper put 5.0 and 6.1 channels on the wrong speakers (its reordering
    # table applied inverted; a 5.0 file read back FL FR BL BR FC). The writer measures and undoes
    # that. Checked two ways: our reader (FFmpeg's decoder), and libsndfile, which decodes with
    # libopus and returns the channels in the file's own Vorbis speaker order.
    audio = make_audio(48_000, channels, 0.5, seed=9)
    path = tmp_path / "m.opus"
    write_audio(path, audio)
    assert_same_channels(audio, read_audio(path))
    raw, rate = sf.read(str(path), dtype="float32", always_2d=True)
    # Vorbis I, section 4.3.9: the WAV channel at each Vorbis position (4 channels: same order)
    vorbis = {3: [0, 2, 1], 5: [0, 2, 1, 3, 4], 6: [0, 2, 1, 4, 5, 3], 7: [0, 2, 1, 5, 6, 4, 3],
              8: [0, 2, 1, 6, 7, 4, 5, 3]}.get(channels, list(range(channels)))
    in_wav_order = np.empty_like(raw.T)
    in_wav_order[vorbis] = raw.T
    assert_same_channels(audio, Audio(in_wav_order, rate))


# --------------------------------------------------------------------------------------------
# streaming


@pytest.mark.parametrize("name,subtype", [("s.wav", "PCM_24"), ("s.flac", "PCM_16"), ("s.ogg", None),
                                          ("s.mp3", None), ("s.m4a", None), ("s.opus", None)])
def test_blocks_equal_full_read(tmp_path, make_audio, name, subtype):
    write_audio(tmp_path / name, make_audio(44_100, 2, 1.3, seed=5), subtype=subtype)
    full = read_audio(tmp_path / name)
    blocks = list(iter_audio_blocks(tmp_path / name, 1000))
    assert all(b.frames == 1000 for b in blocks[:-1]) and 0 < blocks[-1].frames <= 1000
    assert all(b.sample_rate == full.sample_rate and b.subtype == full.subtype for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks], axis=1), full.samples)


@pytest.mark.parametrize("name", ["w.wav", "w.flac", "w.ogg", "w.mp3", "w.m4a"])
def test_window_equals_slice_of_full_read(tmp_path, make_audio, name):
    write_audio(tmp_path / name, make_audio(44_100, 2, 1.5, seed=6))
    full = read_audio(tmp_path / name)
    part = read_audio(tmp_path / name, start_s=0.5, duration_s=0.4)
    start = round(0.5 * full.sample_rate)
    np.testing.assert_array_equal(part.samples, full.samples[:, start:start + round(0.4 * full.sample_rate)])
    tail = read_audio(tmp_path / name, start_s=1.2)
    np.testing.assert_array_equal(tail.samples, full.samples[:, round(1.2 * full.sample_rate):])


def test_window_arguments_are_checked(tmp_path, make_audio):
    write_audio(tmp_path / "w.wav", make_audio(8_000, 1, 0.5))
    with pytest.raises(InputError, match="start_s"):
        read_audio(tmp_path / "w.wav", start_s=-1)
    with pytest.raises(InputError, match="duration_s"):
        read_audio(tmp_path / "w.wav", duration_s=0)
    with pytest.raises(InputError, match="beyond the end"):
        read_audio(tmp_path / "w.wav", start_s=5)
    with pytest.raises(InputError, match="block_frames"):
        iter_audio_blocks(tmp_path / "w.wav", 0)


# --------------------------------------------------------------------------------------------
# AudioWriter


@pytest.mark.parametrize("name", ["s.wav", "s.flac", "s.mp3", "s.opus"])
def test_streaming_writer_equals_one_shot_write(tmp_path, make_audio, name):
    audio = quantize(make_audio(48_000, 2, 0.8, seed=7), 16)
    with AudioWriter(tmp_path / name, 48_000, 2) as writer:
        for start in range(0, audio.frames, 5_000):
            writer.write(audio.samples[:, start:start + 5_000])
        assert writer.frames_written == audio.frames
    write_audio(tmp_path / f"one{Path(name).suffix}", audio)
    streamed, whole = read_audio(tmp_path / name), read_audio(tmp_path / f"one{Path(name).suffix}")
    assert streamed.frames == whole.frames
    if name.endswith((".wav", ".flac")):
        np.testing.assert_array_equal(streamed.samples, audio.samples)
    else:
        assert correlation(streamed.samples, whole.samples) > 0.99


def test_outputs_get_umask_permissions(tmp_path, video_dir, make_audio):
    audio = make_audio(44_100, 2, 0.3)
    previous = os.umask(0o027)
    try:
        write_audio(tmp_path / "a.flac", audio)
        write_audio(tmp_path / "a.m4a", audio)
        replace_audio_track(video_dir / "synth_flash_25fps_noaudio.mp4", audio, tmp_path / "v.mp4")
    finally:
        os.umask(previous)
    for name in ("a.flac", "a.m4a", "v.mp4"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name


def test_writer_exception_leaves_no_file(tmp_path, make_audio):
    audio = make_audio(44_100, 2, 0.5)
    for name in ("x.wav", "x.m4a"):
        with pytest.raises(RuntimeError, match="boom"):
            with AudioWriter(tmp_path / name, 44_100, 2) as writer:
                writer.write(audio)
                raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_writer_failure_keeps_the_existing_target(tmp_path, make_audio):
    target = tmp_path / "keep.wav"
    target.write_bytes(b"previous contents")
    bad = make_audio(44_100, 1, 0.2).samples.copy()
    bad[0, 100] = np.nan
    with pytest.raises(InputError, match="NaN"):
        with AudioWriter(target, 44_100, 1) as writer:
            writer.write(bad[:, :50])
            writer.write(bad)
    assert target.read_bytes() == b"previous contents"
    assert leftovers(tmp_path) == ["keep.wav"]


def test_writer_rejects_bad_blocks_and_empty_output(tmp_path, make_audio):
    with pytest.raises(InputError, match="zero length"):
        with AudioWriter(tmp_path / "e.flac", 44_100, 2):
            pass
    with pytest.raises(InputError, match="does not match 2 channels"):
        with AudioWriter(tmp_path / "s.wav", 44_100, 2) as writer:
            writer.write(np.zeros((3, 10), np.float32))
    with pytest.raises(InputError, match="48000 Hz"):
        with AudioWriter(tmp_path / "r.wav", 44_100, 1) as writer:
            writer.write(make_audio(48_000, 1, 0.1))
    with pytest.raises(InputError, match="floating point"):
        with AudioWriter(tmp_path / "i.wav", 44_100, 1) as writer:
            writer.write(np.zeros((1, 10), np.int16))
    assert leftovers(tmp_path) == []


def test_writer_checks_rate_channels_and_format(tmp_path):
    with pytest.raises(InputError, match="sample rate 4000 Hz"):
        AudioWriter(tmp_path / "a.wav", 4_000, 1)
    with pytest.raises(InputError, match="9 channels"):
        AudioWriter(tmp_path / "a.wav", 44_100, 9)
    with pytest.raises(FormatError, match="extension '.xyz'"):
        AudioWriter(tmp_path / "a.xyz", 44_100, 1)
    with pytest.raises(InputError, match="output folder does not exist"):
        with AudioWriter(tmp_path / "missing" / "a.wav", 44_100, 1):
            pass


def test_write_audio_rejects_invalid_audio(tmp_path, make_audio):
    audio = make_audio(44_100, 2, 0.2)
    audio.samples[1, 7] = np.inf
    with pytest.raises(InputError, match="NaN or infinite") as err:
        write_audio(tmp_path / "bad.flac", audio)
    assert err.value.path == str(tmp_path / "bad.flac")
    with pytest.raises(InputError, match="zero length"):
        write_audio(tmp_path / "empty.wav", Audio(np.zeros((1, 0), np.float32), 44_100))
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# encode_decode


@pytest.mark.parametrize("codec,kbps,rate,channels", [
    ("mp3", 128, 44_100, 2), ("mp3", 64, 48_000, 1), ("mp3", 128, 96_000, 2), ("mp3", 128, 48_000, 6),
    ("aac", 96, 44_100, 2), ("aac", 64, 8_000, 1), ("aac", 256, 48_000, 6),
    ("opus", 48, 48_000, 2), ("opus", 48, 44_100, 2), ("opus", 32, 16_000, 1), ("opus", 192, 96_000, 8),
    ("vorbis", 128, 44_100, 2), ("vorbis", 256, 48_000, 6),
    ("flac", None, 44_100, 2),
])
def test_encode_decode_keeps_shape_and_alignment(make_audio, codec, kbps, rate, channels):
    audio = make_audio(rate, channels, 1.0, seed=11, subtype="PCM_24")
    out = encode_decode(audio, codec, kbps)
    assert out.samples.shape == audio.samples.shape
    assert out.sample_rate == rate and out.subtype == "PCM_24"
    lag = lag_frames(audio.samples, out.samples)
    assert abs(lag) <= 0.002 * rate, f"{codec}: lag {lag} frames"
    assert abs(lag) <= 3  # measured: 0 for mp3/aac/vorbis/flac, 1-2 for opus
    assert correlation(audio.samples[:2], out.samples[:2]) > 0.9
    assert_same_channels(audio, out)
    assert not np.shares_memory(out.samples, audio.samples)


def test_encode_decode_is_lossy_and_bitrate_matters(make_audio):
    audio = make_audio(44_100, 2, 1.0, seed=12)

    def error(out: Audio) -> float:
        return float(np.sqrt(np.mean((out.samples - audio.samples) ** 2)))

    assert error(encode_decode(audio, "flac")) < 2e-5
    for codec in ("mp3", "aac", "opus"):
        low, high = error(encode_decode(audio, codec, 32)), error(encode_decode(audio, codec, 192))
        assert high < low, codec
        assert high > 1e-5, codec  # genuinely lossy
    assert error(encode_decode(audio, "vorbis", quality=9)) < error(encode_decode(audio, "vorbis", quality=0))


def test_encode_decode_rejects_bad_arguments(make_audio):
    audio = make_audio(44_100, 1, 0.2)
    with pytest.raises(FormatError, match="unknown codec"):
        encode_decode(audio, "wma")
    with pytest.raises(FormatError, match="quality"):
        encode_decode(audio, "mp3", quality=2)
    with pytest.raises(InputError, match="bitrate"):
        encode_decode(audio, "aac", -5)
    bad = audio.with_samples(audio.samples.copy())
    bad.samples[0, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        encode_decode(bad, "mp3", 128)


# --------------------------------------------------------------------------------------------
# video


def video_packets(path: Path) -> list[bytes]:
    """Bytes of every packet of the first video stream, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


@pytest.mark.parametrize("source,out_name", [
    ("real_movie_hello.mp4", "out.mp4"),              # real video with an AAC track to replace
    ("synth_flash_25fps_noaudio.mp4", "out.mkv"),     # no audio yet; Matroska output
    ("synth_bounce_24fps_audio.mp4", "out.mov"),
])
def test_replace_audio_track_copies_video_packets(tmp_path, video_dir, make_audio, source, out_name):
    video_in = video_dir / source
    audio = make_audio(48_000, 2, 3.0, seed=13)
    video_out = tmp_path / out_name
    replace_audio_track(video_in, audio, video_out, start_s=0.0)
    assert video_packets(video_out) == video_packets(video_in)
    with av.open(str(video_out)) as container:
        assert len(container.streams.audio) == 1 and len(container.streams.video) == 1
        assert container.streams.audio[0].codec_context.name == "aac"
    assert is_video(video_out)
    back = read_audio(video_out)
    assert (back.sample_rate, back.channels, back.subtype) == (48_000, 2, "AAC")
    assert abs(lag_frames(audio.samples, back.samples)) <= 2
    assert correlation(audio.samples, back.samples[:, :audio.frames]) > 0.9
    assert leftovers(tmp_path) == [out_name]


def test_replace_audio_track_from_matroska_keeps_every_packet(tmp_path, video_dir, make_audio):
    """Matroska stores no DTS: the first packets of B-frame video arrive without one and must
    still be copied (a remux that skipped them lost 2 of 255 packets)."""
    video_in = video_dir / "real_ball_bounce_mecavideo.mp4"
    audio = make_audio(48_000, 2, 1.0)
    replace_audio_track(video_in, audio, tmp_path / "step.mkv")
    replace_audio_track(tmp_path / "step.mkv", audio, tmp_path / "back.mp4")
    assert video_packets(tmp_path / "back.mp4") == video_packets(video_in)
    with av.open(str(tmp_path / "back.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(video_packets(video_in))


def audio_stream_start_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.start_time * stream.time_base)


def video_stream_start_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.start_time * stream.time_base)


def test_replace_audio_track_keeps_the_old_track_timing(tmp_path, video_dir):
    """The real video's picture starts 33 ms into the timeline and its AAC track 42 ms: reading
    the audio and writing it back must keep every sound at the same time against the picture.
    The output's timeline starts at 0 (the picture moved back by 33 ms, as FFmpeg does), so the
    sound starts 9 ms in."""
    video_in = video_dir / "real_movie_hello.mp4"
    original_start_s = audio_stream_start_s(video_in)
    assert original_start_s == pytest.approx(0.042, abs=0.002)
    picture_s = video_stream_start_s(video_in)
    assert picture_s == pytest.approx(0.033, abs=0.002)
    audio = read_audio(video_in)
    after_picture_s = original_start_s - picture_s
    cases = [("keep.mp4", None, after_picture_s), ("keep.mkv", None, after_picture_s),
             ("zero.mp4", 0.0, 0.0), ("late.mov", 0.25, 0.25)]
    for name, start_s, expected_s in cases:
        replace_audio_track(video_in, audio, tmp_path / name, start_s=start_s)
        back = read_audio(tmp_path / name)
        # the new track starts at time 0 with leading silence up to the first sample
        assert audio_stream_start_s(tmp_path / name) == 0.0
        assert video_stream_start_s(tmp_path / name) == pytest.approx(0.0, abs=1e-3), name
        content_s = lag_frames(audio.samples, back.samples) / 48_000
        assert content_s == pytest.approx(expected_s, abs=2 / 48_000), name
        silent_frames = max(0, int(expected_s * 48_000) - 50)
        assert np.abs(back.samples[:, :silent_frames]).max(initial=0) < 1e-3
    with pytest.raises(InputError, match="start_s"):
        replace_audio_track(video_in, audio, tmp_path / "bad.mp4", start_s=-1.0)


def test_replace_audio_track_errors(tmp_path, video_dir, make_audio):
    audio = make_audio(48_000, 2, 1.0)
    silent_video = video_dir / "synth_flash_25fps_noaudio.mp4"
    with pytest.raises(FormatError, match="cannot carry AAC"):
        replace_audio_track(silent_video, audio, tmp_path / "o.webm", codec="aac")
    # WebM takes only VP8/VP9/AV1 video: H.264 is refused by the muxer, nothing is left behind
    with pytest.raises(FormatError) as err:
        replace_audio_track(video_dir / "synth_flash_25fps_noaudio.mp4", audio, tmp_path / "o.webm")
    assert err.value.path == str(tmp_path / "o.webm")
    wav = tmp_path / "a.wav"
    write_audio(wav, audio)
    with pytest.raises(FormatError, match="no video stream"):
        replace_audio_track(wav, audio, tmp_path / "o.mp4")
    with pytest.raises(InputError, match="not found"):
        replace_audio_track(tmp_path / "nope.mp4", audio, tmp_path / "o.mp4")
    with pytest.raises(FormatError, match="extension"):
        replace_audio_track(video_dir / "synth_flash_25fps_noaudio.mp4", audio, tmp_path / "o.avi")
    assert leftovers(tmp_path) == ["a.wav"]


def audio_packets(path: Path) -> list[bytes]:
    """Bytes of every packet of the audio stream, in file order."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def test_a_video_whose_timestamps_start_an_hour_in_is_written_from_time_0(tmp_path):
    """A clip cut from a recording (picture and sound from 3600 s): the output's timeline starts
    at 0, as FFmpeg's does, with the sound where it was against the picture, not after an hour
    of leading silence; :func:`video_start_s` is where the picture starts on that timeline."""
    from test_v2a_video import cfr, write_video

    rng = np.random.default_rng(3)
    noise = 0.2 * rng.standard_normal(2 * 48_000)
    video_in = write_video(tmp_path / "late.mp4", lambda t: np.full((64, 64, 3), int(t * 100) % 255, np.uint8),
                           cfr(2.0, 25), (64, 64), audio=noise, start_s=3600.0)
    # the AAC track's encoder priming starts 21 ms before the picture: the file's earliest stream
    picture_s = video_start_s(video_in)
    assert picture_s == pytest.approx(1024 / 48_000, abs=2e-3)
    audio = read_audio(video_in)
    for name in ("out.mp4", "out.mkv"):
        replace_audio_track(video_in, audio, tmp_path / name)
        with av.open(str(tmp_path / name)) as c:
            assert c.duration / 1e6 == pytest.approx(2.0, abs=0.1), name
        assert video_stream_start_s(tmp_path / name) == pytest.approx(picture_s, abs=2e-3)
        back = read_audio(tmp_path / name)
        assert back.duration_s == pytest.approx(2.0, abs=0.1)
        assert abs(lag_frames(audio.samples, back.samples)) <= 2


@pytest.mark.parametrize("out_name", ["out.mp4", "out.mkv"])
def test_replace_audio_track_stream_writes_what_the_whole_track_writes(tmp_path, video_dir, out_name):
    """Audio given block by block, in blocks of any size, makes the same file as the same audio
    given whole: the same video packets, the same encoded audio, the old track's start kept."""
    video_in = video_dir / "real_movie_hello.mp4"
    audio = read_audio(video_in)
    replace_audio_track(video_in, audio, tmp_path / f"whole.{out_name}")
    cuts = [0, 1, 4_000, 4_001, 70_000, 70_000, 100_003, audio.frames]
    blocks = [audio.samples[:, a:b] for a, b in zip(cuts, cuts[1:])]
    replace_audio_track_stream(video_in, iter(blocks), tmp_path / out_name,
                               sample_rate=audio.sample_rate, channels=audio.channels)
    assert video_packets(tmp_path / out_name) == video_packets(video_in)
    assert audio_packets(tmp_path / out_name) == audio_packets(tmp_path / f"whole.{out_name}")
    assert audio_stream_start_s(tmp_path / out_name) == 0.0
    back = read_audio(tmp_path / out_name)
    # 42 ms on the input's timeline, 9 ms after its picture: the output starts with the picture
    assert lag_frames(audio.samples, back.samples) / 48_000 == pytest.approx(0.009, abs=0.002)
    # Audio blocks are taken too, and start_s=0.0 puts the first sample at time 0
    replace_audio_track_stream(video_in, (Audio(b, 48_000) for b in blocks), tmp_path / "zero.mov",
                               sample_rate=48_000, channels=2, start_s=0.0)
    assert abs(lag_frames(audio.samples, read_audio(tmp_path / "zero.mov").samples)) <= 2
    assert not [name for name in leftovers(tmp_path) if ".tmp" in name]


def test_replace_audio_track_stream_errors_leave_nothing(tmp_path, video_dir, make_audio):
    """A bad block, an empty stream or a failing iterator leave the output as it was and no
    temporary file; what the iterator raises comes out as itself, not as a fault of the output."""
    video_in = video_dir / "real_movie_hello.mp4"
    good = make_audio(48_000, 2, 3.0).samples
    out = tmp_path / "o.mp4"
    out.write_bytes(b"before")
    nan = good.copy()
    nan[1, 50_000] = np.nan

    def failing():
        yield good[:, :48_000]
        raise ValueError("the source broke")

    cases = [
        ([good[:, :48_000], nan[:, 48_000:]], InputError, "NaN"),
        ([good[:1]], InputError, "does not match 2 channels"),
        ([Audio(good, 44_100)], InputError, "sample rate 44100"),
        ([], InputError, "zero length"),
        ([good[:, :0]], InputError, "zero length"),
        (failing(), ValueError, "the source broke"),
    ]
    for blocks, error, message in cases:
        with pytest.raises(error, match=message) as err:
            replace_audio_track_stream(video_in, blocks, out, sample_rate=48_000, channels=2)
        if isinstance(err.value, InputError):
            assert err.value.path == str(out)
        assert out.read_bytes() == b"before"
        assert leftovers(tmp_path) == ["o.mp4"]
    with pytest.raises(InputError, match="channels"):
        replace_audio_track_stream(video_in, [good], out, sample_rate=48_000, channels=0)
    with pytest.raises(FormatError, match="no video stream"):
        wav = tmp_path / "a.wav"
        write_audio(wav, Audio(good, 48_000))
        replace_audio_track_stream(wav, [good], out, sample_rate=48_000, channels=2)
    assert out.read_bytes() == b"before"


def test_is_video(tmp_path, video_dir, make_audio):
    assert is_video(video_dir / "real_ball_bounce_mecavideo.mp4")
    assert is_video(video_dir / "synth_collision_29.97fps_noaudio.mp4")
    audio = make_audio(44_100, 2, 0.3)
    for name in ("a.m4a", "a.mp3", "a.wav"):
        write_audio(tmp_path / name, audio)
        assert not is_video(tmp_path / name)
    (tmp_path / "i.png").write_bytes(png_bytes())
    (tmp_path / "t.txt").write_text("not a video\n" * 80)  # FFmpeg reads .txt as ANSI art
    assert not is_video(tmp_path / "i.png")
    assert not is_video(tmp_path / "t.txt")
    with pytest.raises(InputError, match="not found"):
        is_video(tmp_path / "missing.mp4")


# --------------------------------------------------------------------------------------------
# the shared corpus


def manifest(corpus_dir: Path) -> dict[str, dict[str, str]]:
    with open(corpus_dir / "MANIFEST.tsv", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


@pytest.mark.parametrize("name,subtype", [
    ("music_tabla_loop.mp3", "MP3"),
    ("music_breakbeat_drums.m4a", "AAC"),
    ("music_orchestral_celtic.ogg", "VORBIS"),
    ("surround_5p1_channel_check.flac", "PCM_16"),
    ("music_96k_upsampled_24bit.flac", "PCM_24"),
    ("speech_female_en_8k_mono.wav", "PCM_16"),
    ("ambience_fire_crackle.wav", "FLOAT"),
    ("foley_impacts_24bit.wav", "PCM_24"),
])
def test_reads_the_corpus(corpus_dir, name, subtype):
    row = manifest(corpus_dir)[name]
    path = corpus_dir / name
    info = audio_info(path)
    audio = read_audio(path)
    rate, channels, duration = int(row["sample_rate"]), int(row["channels"]), float(row["duration_s"])
    assert (info.sample_rate, info.channels, info.subtype) == (rate, channels, subtype)
    assert (audio.sample_rate, audio.channels, audio.subtype) == (rate, channels, subtype)
    # the M4A's edit list cuts AAC end padding (8.000 s) that the manifest counted (8.011 s)
    assert audio.duration_s == pytest.approx(duration, abs=0.025)
    assert info.duration_s == pytest.approx(audio.duration_s, abs=0.025)
    assert np.isfinite(audio.samples).all() and 0.01 < np.abs(audio.samples).max() < 2.0


def test_corpus_surround_channels_stay_in_order(corpus_dir):
    """The 5.1 clip speaks each channel name only on its own channel (FL at 0.5 s, FC 2.0 s,
    FR 3.5 s, BR 5.0 s, BL 6.5 s): the loudest channel in each window must be that one."""
    audio = read_audio(corpus_dir / "surround_5p1_channel_check.flac")
    for start_s, channel in [(0.5, 0), (2.0, 2), (3.5, 1), (5.0, 5), (6.5, 4)]:
        window = audio.samples[:, int(start_s * 48_000):int((start_s + 1.0) * 48_000)]
        assert int(np.argmax(np.sqrt((window ** 2).mean(axis=1)))) == channel
    # and they survive an Ogg Vorbis round trip through libsndfile's positional channel order
    out = encode_decode(audio, "vorbis", 320)
    for start_s, channel in [(0.5, 0), (2.0, 2), (3.5, 1), (5.0, 5), (6.5, 4)]:
        window = out.samples[:, int(start_s * 48_000):int((start_s + 1.0) * 48_000)]
        assert int(np.argmax(np.sqrt((window ** 2).mean(axis=1)))) == channel


# --------------------------------------------------------------------------------------------
# bad input


@pytest.fixture(scope="module")
def good_files(tmp_path_factory, make_audio) -> dict[str, Path]:
    """Valid files in several formats, 3 s long, to copy and damage (never modified)."""
    directory = tmp_path_factory.mktemp("good")
    audio = make_audio(44_100, 2, 3.0, seed=21)
    files = {}
    for ext in ("wav", "flac", "ogg", "mp3", "m4a", "opus", "mkv"):
        files[ext] = directory / f"good.{ext}"
        write_audio(files[ext], audio)
    return files


def truncated_copy(path: Path, directory: Path, fraction: float = 0.5) -> Path:
    """A copy of ``path`` in ``directory`` cut to ``fraction`` of its bytes."""
    data = path.read_bytes()
    out = directory / f"truncated{path.suffix}"
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def corrupted_copy(path: Path, directory: Path) -> Path:
    """A copy of ``path`` in ``directory`` with 400 random bytes a third of the way in."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) // 3
    data[start:start + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    out = directory / f"corrupt{path.suffix}"
    out.write_bytes(bytes(data))
    return out


def assert_read_fails(path: Path, error: type[FoleySealError], match: str) -> None:
    """read_audio and iter_audio_blocks both raise ``error`` naming the file."""
    with pytest.raises(error, match=match) as err:
        read_audio(path)
    assert err.value.path == str(path)
    with pytest.raises(error, match=match):
        for _ in iter_audio_blocks(path, 4096):
            pass


def test_missing_directory_and_empty_files(tmp_path):
    assert_read_fails(tmp_path / "missing.wav", InputError, "not found")
    assert_read_fails(tmp_path, InputError, "not a regular file")
    (tmp_path / "empty.mp3").write_bytes(b"")
    assert_read_fails(tmp_path / "empty.mp3", InputError, r"empty \(0 bytes\)")
    with pytest.raises(InputError, match="empty"):
        audio_info(tmp_path / "empty.mp3")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a", "opus", "mkv"])
def test_truncated_files_are_refused(tmp_path, good_files, ext, fraction):
    cut = truncated_copy(good_files[ext], tmp_path, fraction)
    assert_read_fails(cut, FormatError, "truncated|corrupt")


@pytest.mark.parametrize("fmt, ext, subtype", [("AIFF", "aiff", "PCM_16"), ("CAF", "caf", "PCM_24"),
                                               ("W64", "w64", "PCM_16"), ("RF64", "wav", "PCM_16"),
                                               ("AU", "au", "FLOAT")])
def test_truncated_files_whose_header_declares_their_length_are_refused(tmp_path, make_audio, fmt, ext, subtype):
    """A WAV cut short was refused, but an AIFF, CAF, W64, RF64 or AU one read as the part that
    was left (9 s of a 15 s file), and was marked and signed as such."""
    whole = tmp_path / f"whole.{ext}"
    sf.write(whole, make_audio(44_100, 2, 3.0, seed=22).samples.T, 44_100, format=fmt, subtype=subtype)
    assert read_audio(whole).frames == 3 * 44_100
    cut = truncated_copy(whole, tmp_path, 0.6)
    assert_read_fails(cut, FormatError, r"file is truncated: header declares \d+ bytes of audio data, the file holds")
    with pytest.raises(FormatError, match="file is truncated"):
        audio_info(cut)


@pytest.mark.parametrize("case, expected", [("truncated", "truncated or damaged"), ("text", "cannot open the file")])
def test_a_damaged_mp3_is_refused_without_the_decoder_library_printing_on_stderr(corpus_dir, tmp_path, case,
                                                                                 expected):
    """libsndfile's libmpg123 printed "Warning: Xing stream size off by more than 1% ..." on the
    process's own stderr (twice per command) for a truncated MP3, around FoleySeal's own error,
    and "Note: Illegal Audio-MPEG-Header" for a text file named .mp3: MP3s (and files named so)
    now go straight to FFmpeg, which reports through the error raised."""
    import subprocess
    import sys

    data = (corpus_dir / "music_tabla_loop.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 3] if case == "truncated" else b"hello, not audio\n")
    code = ("from provenance.core.io import read_audio\n"
            "from provenance.core.errors import FormatError\n"
            "try:\n    read_audio(__import__('sys').argv[1])\n"
            "except FormatError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(cut)], capture_output=True, text=True, timeout=60)
    assert expected in done.stdout, done
    assert done.stderr == "", done.stderr


def test_an_ogg_whose_pages_fail_their_checksum_is_refused(tmp_path, make_audio):
    """An Ogg whose pages from the third on had bad CRCs decoded to 0.2 s of 9.4 s without a
    word: `sign` signed it and `watermark detect` answered "not found" from what little decoded."""
    path = tmp_path / "clip.ogg"
    write_audio(path, make_audio(44_100, 2, 6.0, seed=3))
    data = bytearray(path.read_bytes())
    pages = [m.start() for m in re.finditer(b"OggS", data)]
    assert len(pages) > 4
    for at in pages[2:]:
        data[at + 22] ^= 0xFF  # the page's CRC
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(bytes(data))
    assert_read_fails(bad, FormatError, "Ogg stream is truncated or damaged")
    with pytest.raises(FormatError, match="truncated or damaged"):
        check_decodes(bad)
    assert read_audio(path).frames == 6 * 44_100
    # Bytes after an intact last page are no damage: a tagger's ID3v1 tag (libsndfile: "Junk
    # after the last page"), refused for a while.
    tagged = tmp_path / "tagged.ogg"
    tagged.write_bytes(path.read_bytes() + b"TAG" + b"a title".ljust(125, b"\0"))
    assert read_audio(tagged).frames == 6 * 44_100
    check_decodes(tagged)


def test_a_wav_whose_audio_of_unknown_length_is_followed_by_chunks_is_refused(tmp_path, make_audio):
    """A signed WAV whose data size was patched to 0xFFFFFFFF (a stream's "unknown") was read to
    the end of the file: its C2PA chunk became 52 ms of full-scale noise, marked and published.
    A streamed WAV (its RIFF size unknown too, or filled in later by a tool) has nothing after its
    audio and is still read to its end."""
    path = tmp_path / "take.wav"
    write_audio(path, make_audio(44_100, 1, 2.0, seed=4), subtype="PCM_16")
    audio = bytearray(path.read_bytes())
    at = audio.index(b"data") + 4
    audio[at : at + 4] = struct.pack("<I", 0xFFFFFFFF)
    trailer = b"LIST" + struct.pack("<I", 4095) + bytes(range(256)) * 16 + b"C2PA" + struct.pack("<I", 8) + b"manifest"
    for name, riff in (("damaged", len(audio) + len(trailer) - 8), ("unsized", 0xFFFFFFFF)):
        data = audio + trailer
        data[4:8] = struct.pack("<I", riff)
        (tmp_path / f"{name}.wav").write_bytes(bytes(data))
        assert_read_fails(tmp_path / f"{name}.wav", FormatError,
                          "WAV header is damaged: its data chunk's size reads 0xffffffff")
    for riff in (0xFFFFFFFF, len(audio) - 8):  # streamed; its RIFF size filled in afterwards
        data = bytearray(audio)
        data[4:8] = struct.pack("<I", riff)
        streamed = tmp_path / "streamed.wav"
        streamed.write_bytes(bytes(data))
        assert read_audio(streamed).frames == 2 * 44_100


def test_a_flac_declaring_more_than_it_holds_is_said_to_be_cut_short(tmp_path, make_audio):
    """A FLAC whose STREAMINFO declares 10 h but holds 2 s failed with libsndfile's own words:
    "cannot decode the audio (...): Internal psf_fseek() failed.", where verify says what is wrong."""
    path = tmp_path / "take.flac"
    write_audio(path, make_audio(44_100, 1, 2.0, seed=5), subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = 8 + 10  # "fLaC", the block header, then STREAMINFO's rate, channels, depth and length
    fields = int.from_bytes(data[at : at + 8], "big")
    data[at : at + 8] = ((fields & ~((1 << 36) - 1)) | 10 * 3600 * 44_100).to_bytes(8, "big")
    long = tmp_path / "declares_10h.flac"
    long.write_bytes(bytes(data))
    assert_read_fails(long, FormatError, r"file is truncated or damaged: decoded [\d.]+ s of the 36000.000 s its "
                      "header declares")


def test_a_flac_of_unknown_length_is_read_whole(tmp_path, make_audio):
    """A FLAC written to a pipe leaves STREAMINFO's length 0 ("unknown"): libsndfile reports
    2**63 - 1 frames and fails at its end, so read_audio raised numpy's "array is too big" and
    `watermark embed` called the file damaged; FFmpeg alone said it had no samples."""
    path = tmp_path / "take.flac"
    write_audio(path, make_audio(44_100, 2, 2.0, seed=6), subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = 8 + 10  # STREAMINFO's rate, channels, depth and length, as in the test above
    fields = int.from_bytes(data[at : at + 8], "big")
    data[at : at + 8] = (fields & ~((1 << 36) - 1)).to_bytes(8, "big")
    piped = tmp_path / "piped.flac"
    piped.write_bytes(bytes(data))
    assert audio_info(piped).frames == 2 * 44_100
    got = read_audio(piped)
    assert got.frames == 2 * 44_100
    np.testing.assert_allclose(got.samples, read_audio(path).samples, atol=1e-6)


def test_embedding_a_truncated_mp3_prints_only_the_error(corpus_dir, tmp_path):
    """`watermark embed` and `mark` of a truncated MP3 still printed libmpg123's "Warning: Xing
    stream size off by more than 1%" above the error: the embedder asked libsndfile whether the
    input was a plain WAV or a WAVE_FORMAT_EXTENSIBLE one, of every input."""
    import subprocess
    import sys

    from provenance.watermark import new_key, save_key

    data = (corpus_dir / "music_tabla_loop.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 3])
    save_key(new_key(), key := tmp_path / "wm.key")
    done = subprocess.run([sys.executable, "-m", "foleyseal", "watermark", "embed", str(cut), str(tmp_path / "o.flac"),
                           "--key", str(key), "--payload", "0123456789abcdef"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "truncated or damaged" in done.stderr, done
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_flac_behind_an_id3_tag_is_still_read_as_flac(tmp_path, make_audio):
    """C2PA signs a FLAC file with an ID3 tag in front of it: such a file is a FLAC for the reader
    (24 bits stay 24 bits), not an MP3 to hand to FFmpeg."""
    from mutagen.id3 import GEOB, ID3

    path = tmp_path / "signed.flac"
    audio = make_audio(48_000, 2, 1.0)
    write_audio(path, audio, subtype="PCM_24")
    tag = ID3()
    tag.add(GEOB(encoding=3, mime="application/c2pa", desc="c2pa manifest store", data=b"\x00" * 5000))
    tag.save(str(path))
    assert path.read_bytes()[:3] == b"ID3"
    info = audio_info(path)
    assert (info.format, info.subtype) == ("flac", "PCM_24")
    assert np.max(np.abs(read_audio(path).samples - audio.samples)) < 2 ** -22


def matroska_video(path: Path, audio_start_s: float, audio_s: float) -> Path:
    """A 6 s Matroska/WebM video (25 fps) whose audio track starts at ``audio_start_s`` (s) and
    lasts ``audio_s`` (s), its packets interleaved with the pictures' as muxers write them."""
    rng = np.random.default_rng(3)
    webm = path.suffix == ".webm"
    rate = 48_000
    with av.open(str(path), "w") as container:
        video = container.add_stream("libvpx-vp9" if webm else "libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("libopus" if webm else "aac", rate=rate, layout="stereo")
        samples = (0.2 * rng.standard_normal((2, round(audio_s * rate)))).astype(np.float32)
        step = rate // 25
        for i in range(150):
            picture = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            picture.pts = i
            for packet in video.encode(picture):
                container.mux(packet)
            t = i * step - round(audio_start_s * rate)
            if 0 <= t < samples.shape[1]:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, t:t + step]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate, frame.pts = rate, t + round(audio_start_s * rate)
                for packet in audio.encode(frame):
                    container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return path


@pytest.mark.parametrize("ext", ["mkv", "webm"])
def test_a_matroska_video_cut_short_is_refused(tmp_path, ext):
    # A video container's duration may be its pictures', so the audio track's own length comes
    # from the DURATION tag muxers write per track (its end time: a track may start late).
    whole = matroska_video(tmp_path / f"late.{ext}", audio_start_s=1.0, audio_s=4.0)
    audio = read_audio(whole)
    assert audio.frames / audio.sample_rate == pytest.approx(4.0, abs=0.05)
    assert_read_fails(truncated_copy(whole, tmp_path, 0.5), FormatError, "truncated")


def test_check_decodes_refuses_damage_but_not_what_the_watermark_cannot_read(tmp_path, good_files):
    # what sign requires of a file: intact media, with none of the watermark's limits
    odd = tmp_path / "odd.wav"
    samples = np.full((384_000, 9), 0.1, np.float32)
    samples[100, 0] = np.nan
    sf.write(odd, samples, 384_000, subtype="FLOAT")
    check_decodes(odd)
    with pytest.raises(InputError, match="384000 Hz"):
        read_audio(odd)
    for ext in ("mp3", "ogg", "mkv"):
        with pytest.raises(FormatError, match="truncated|corrupt") as err:
            check_decodes(truncated_copy(good_files[ext], tmp_path, 0.5))
        assert err.value.path == str(tmp_path / f"truncated.{ext}")
    with pytest.raises(InputError, match="empty"):
        (tmp_path / "empty.mp4").write_bytes(b"")
        check_decodes(tmp_path / "empty.mp4")


@pytest.mark.parametrize("ext", ["flac", "mp3", "m4a", "opus", "mkv"])
def test_corrupt_files_are_refused(tmp_path, good_files, ext):
    assert_read_fails(corrupted_copy(good_files[ext], tmp_path), FormatError, "truncated|corrupt|damaged")


def test_corrupt_header_is_refused(tmp_path, good_files):
    data = bytearray(good_files["flac"].read_bytes())
    data[:64] = bytes(range(64))
    bad = tmp_path / "header.flac"
    bad.write_bytes(bytes(data))
    assert_read_fails(bad, FormatError, "corrupt")


@pytest.mark.parametrize("name", ["notes.wav", "notes.mp3", "notes.txt"])
def test_text_files_are_refused(tmp_path, name):
    (tmp_path / name).write_text("this is not audio\n" * 50)
    # FFmpeg takes .txt for ANSI art (a video stream), so the message may say "no audio stream"
    assert_read_fails(tmp_path / name, FormatError, "cannot open|not an audio file")
    with pytest.raises(FormatError):
        audio_info(tmp_path / name)


@pytest.mark.parametrize("name", ["image.png", "image.wav"])
def test_images_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(png_bytes())
    assert_read_fails(tmp_path / name, FormatError, "no audio stream")


def test_video_without_audio_is_refused(video_dir):
    """Said as a video without sound (before: "not an audio file", as for an image)."""
    assert_read_fails(video_dir / "synth_flash_25fps_noaudio.mp4", NoAudioError, "is a video with no audio track")


def test_video_audio_track_is_read(video_dir):
    audio = read_audio(video_dir / "synth_bounce_24fps_audio.mp4")
    assert (audio.sample_rate, audio.channels, audio.subtype) == (48_000, 1, "AAC")
    assert audio.duration_s == pytest.approx(8.0, abs=0.03)


def test_zero_length_audio_is_refused(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros((0, 2), np.float32), 44_100, subtype="PCM_16")
    assert_read_fails(tmp_path / "zero.wav", InputError, "zero length")


@pytest.mark.parametrize("bad_value,name", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_float_samples_are_refused(tmp_path, bad_value, name):
    samples = np.zeros((20_000, 2), np.float32)
    samples[15_000, 1] = bad_value  # past the first block, so streaming meets it mid-file
    sf.write(tmp_path / "bad.wav", samples, 44_100, subtype="FLOAT")
    assert_read_fails(tmp_path / "bad.wav", InputError, name)
    # (it said "between 0.340 s, the first, and 0.372 s", the second time being where reading stopped)
    with pytest.raises(InputError, match=r"the first at 0\.340 s; \d NaN and \d infinite values counted up to [0-9.]+ s, "
                                         r"where reading stopped"):
        read_audio(tmp_path / "bad.wav")


def test_a_count_of_non_finite_samples_says_how_far_it_counted(tmp_path):
    """An all-NaN file of 480,000 samples was said to hold 131,072: the first block's count."""
    sf.write(tmp_path / "nan.wav", np.full((240_000, 2), np.nan, np.float32), 48_000, subtype="FLOAT")
    with pytest.raises(InputError) as err:
        read_audio(tmp_path / "nan.wav")
    n, end_s = re.search(r"(\d+) NaN .* counted up to ([0-9.]+) s, where reading stopped", str(err.value)).groups()
    assert int(n) == pytest.approx(float(end_s) * 48_000 * 2, abs=2 * 48) and int(n) < 480_000


@pytest.mark.parametrize("rate,channels,match", [(4_000, 1, "sample rate 4000 Hz"),
                                                  (384_000, 1, "sample rate 384000 Hz"),
                                                  (44_100, 9, "9 channels")])
def test_unsupported_rate_or_channels_are_refused(tmp_path, rate, channels, match):
    sf.write(tmp_path / "odd.wav", np.zeros((1000, channels), np.float32), rate, subtype="PCM_16")
    assert audio_info(tmp_path / "odd.wav").sample_rate == rate  # info reports, readers refuse
    assert_read_fails(tmp_path / "odd.wav", InputError, match)


def _vp8_webm(path: Path, seconds: float = 2.0) -> Path:
    """A small VP8 video (64x64, 10 fps) with no audio."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libvpx", rate=10)
        v.width = v.height = 64
        v.pix_fmt = "yuv420p"
        for i in range(int(seconds * 10)):
            for packet in v.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 9 % 255, np.uint8), format="rgb24")):
                c.mux(packet)
        for packet in v.encode():
            c.mux(packet)
    return path


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
def test_a_container_that_cannot_hold_the_copied_video_is_named_before_writing(tmp_path, suffix):
    """VP8 (or VP9) video into MOV failed while writing, with "corrupt, truncated or unsupported
    data: Invalid argument" about a temporary file. The codec and the containers that take it are
    now named, and nothing is written; MKV takes it."""
    video = _vp8_webm(tmp_path / "in.webm")
    audio = Audio((0.1 * np.random.default_rng(3).standard_normal((2, 2 * 48_000))).astype(np.float32), 48_000)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(FormatError) as caught:
        replace_audio_track(video, audio, out)
    assert str(caught.value) == (f"{out}: a {suffix} file cannot hold in.webm's vp8 video (it is copied, not "
                                 "re-encoded); write .mkv, .webm instead")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.webm"]
    replace_audio_track(video, audio, tmp_path / "out.mkv")
    assert read_audio(tmp_path / "out.mkv").channels == 2


def test_sweep_stale_removes_only_what_ended_processes_of_this_machine_left(tmp_path):
    import subprocess
    import sys

    from provenance.core.atomic import owner_tag, sweep_stale

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead, live = f".p{ended.pid}h", owner_tag()
    host = live.split("h", 1)[1]  # "<host hash>."
    names = {
        f".out.wav{dead}{host}abc.tmp.wav": False,  # a killed writer's file: removed
        f".out.wav{live}def.tmp.wav": True,  # this process's own, still being written
        f".out.wav{dead}0badc0de.ghi.tmp.wav": True,  # another machine's (a shared folder)
        f".out.wav.x{dead}{host}jkl.tmp": True,  # another target's
        ".out.wav.old-style.tmp.wav": True,  # no owner tag: unknown, kept
        "out.wav": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    folder = tmp_path / f".foleyseal-mark{dead}{host}mno"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "marked.wav").write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    for p in [*tmp_path.iterdir(), folder / "inner"]:
        os.utime(p, (an_hour_ago, an_hour_ago))
    # A dead owner's file that changed a moment ago: another pid namespace's, perhaps; kept.
    recent = f".out.wav{dead}{host}pqr.tmp.wav"
    (tmp_path / recent).write_bytes(b"x")
    names[recent] = True

    removed = sweep_stale(tmp_path, ".out.wav.") + sweep_stale(tmp_path, ".foleyseal-mark.")
    assert sorted(p.name for p in removed) == sorted([folder.name] + [n for n, keep in names.items() if not keep])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, keep in names.items() if keep)
    assert sweep_stale(tmp_path / "missing", ".out.wav.") == []


def test_the_next_write_of_an_output_removes_what_a_killed_nested_writer_left(tmp_path):
    """`watermark embed` writes through a temporary file of a temporary file (embed_file's, then
    the audio writer's): after a SIGKILL the inner one, "..out.flac.p<pid>...", stayed for good,
    since the next write swept ".out.flac.*" only."""
    import subprocess
    import sys

    from provenance.core.atomic import atomic_write_bytes, owner_tag

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host = owner_tag().split("h", 1)[1]
    outer = f".out.flac.p{ended.pid}h{host}abc.tmp.flac"
    left = [outer, f".{outer}.p{ended.pid}h{host}def.tmp.flac"]
    an_hour_ago = time.time() - 3600
    for name in left:
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    atomic_write_bytes(tmp_path / "out.flac", b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.flac"]


@pytest.mark.parametrize("length", [60, 200, 250, 255])
def test_what_a_killed_nested_writer_left_is_removed_for_long_names_too(tmp_path, length):
    """For an output name near the 255-byte limit the inner working file was named after a hash of
    the outer one's (pid and random part included): the next write of that output never found it,
    and 24-62 MB stayed beside it for good. A 257-byte name was refused naming the working file."""
    from provenance.core.atomic import atomic_write_bytes, owner_tag, working_stem

    # a process that has ended, with a pid longer than this one's: the names it made must be the
    # ones this process looks for (a stem that hung on the pid's length was another stem)
    tag = f".p4194303h{owner_tag().split('h', 1)[1]}"
    target = tmp_path / ("k" * (length - 5) + ".flac")
    outer = f".{working_stem(target)}{tag}abcdefgh.tmp.flac"
    inner = f".{working_stem(tmp_path / outer)}{tag}ijklmnop.tmp.flac"
    assert len(outer.encode()) <= 255 and len(inner.encode()) <= 255
    an_hour_ago = time.time() - 3600
    for name in (outer, inner):
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    atomic_write_bytes(target, b"whole")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    too_long = tmp_path / ("k" * 252 + ".flac")
    with pytest.raises(OutputError, match="the name is 257 bytes long; file systems take at most 255") as err:
        atomic_write_bytes(too_long, b"whole")
    assert err.value.path == str(too_long)


def test_a_loop_of_symbolic_links_is_named_not_called_missing(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(InputError, match="cannot open: Too many levels of symbolic links"):
        audio_info(tmp_path / "a.wav")
    with pytest.raises(InputError, match="file not found"):
        audio_info(tmp_path / "missing.wav")


def test_a_stop_right_after_the_working_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A Ctrl-C that arrived between making the working file and guarding it (while its mode
    was worked out) left `.out.wav.p<pid>...tmp.wav` behind; CI's interrupt test hit it once."""
    import provenance.core.atomic as atomic

    def stopped(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_final_mode", stopped)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_bytes(tmp_path / "out.wav", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["opus", "m4a", "webm"])
def test_audio_too_short_for_a_lossy_encoder_is_refused_not_written_empty(tmp_path, ext):
    """10 samples into .opus/.webm wrote a 0-byte file, into .m4a one that no reader takes, and
    reported success."""
    out = tmp_path / f"short.{ext}"
    with pytest.raises(FormatError, match=r"10 samples are too short for the (OPUS|AAC) encoder, which needs at least"):
        write_audio(out, Audio(np.full((1, 10), 0.1, np.float32), 44_100))
    assert list(tmp_path.iterdir()) == []
    write_audio(out, Audio(np.full((1, 441), 0.1, np.float32), 44_100))  # 10 ms is enough
    assert read_audio(out).frames > 0


@pytest.mark.parametrize("name, muxer, codec, expected", [
    ("in.mka", "matroska", "flac", "FLAC"), ("in.m4a", "ipod", "alac", "ALAC"), ("in.mp4", "mp4", "flac", "FLAC"),
])
def test_a_lossless_coded_track_is_written_back_in_its_codec(tmp_path, name, muxer, codec, expected):
    """FLAC in .mka, written back to .mka (as `watermark embed` does), became AAC, silently, and
    616 samples longer, then 24-bit PCM (several times larger); an ALAC .m4a still became AAC,
    lossy and silently. A FLAC or ALAC track now keeps its codec, at 24 bits, sample for sample."""
    x = (0.1 * np.random.default_rng(4).standard_normal((2, 44_100 * 3))).astype(np.float32)
    src = tmp_path / name
    with av.open(str(src), "w", format=muxer) as c:
        stream = c.add_stream(codec, rate=44_100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T.reshape(1, -1)), format="flt", layout="stereo")
        frame.sample_rate, frame.pts = 44_100, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)
    audio = read_audio(src)
    assert audio.subtype == expected
    out = tmp_path / ("out" + src.suffix)
    write_audio(out, audio)
    info = audio_info(out)
    assert (info.subtype, info.frames) == (expected, audio.frames)
    assert np.array_equal(read_audio(out).samples, audio.samples)
    # a marked 24-bit signal: kept to the 24-bit step
    finer = Audio((audio.samples + 1e-6).astype(np.float32), 44_100, subtype=expected)
    write_audio(out, finer)
    assert np.max(np.abs(read_audio(out).samples - finer.samples)) <= 2.0 ** -24 + 1e-9
    # a lossless source written to a container that holds only the other lossless codec
    write_audio(tmp_path / "other.m4a", audio)
    assert audio_info(tmp_path / "other.m4a").subtype == "ALAC"
