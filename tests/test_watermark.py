"""Behaviour of the audio watermark through its public API, on real corpus clips."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.signal import lfilter

from provenance.core import io
from provenance.core.audio import Audio
from provenance.core.errors import InputError, KeyFileError, PayloadError
from provenance.watermark import (
    WatermarkKey,
    detect,
    embed,
    load_key,
    min_duration_s,
    new_key,
    save_key,
)
from provenance.watermark import decode
from provenance.watermark.layout import WatermarkParams

KEY = WatermarkKey(bytes(range(32)))
OTHER_KEY = WatermarkKey(bytes(range(100, 132)))
PAYLOAD = "0123456789abcdef"


@pytest.fixture(scope="module")
def speech(corpus_dir) -> Audio:
    return io.read_audio(corpus_dir / "speech_male_44k_mono.flac")


@pytest.fixture(scope="module")
def music(corpus_dir) -> Audio:
    # 8 s of the orchestral clip keeps the test fast
    return io.read_audio(corpus_dir / "music_orchestral_44k_stereo.flac", start_s=2.0, duration_s=8.0)


@pytest.fixture(scope="module")
def marked_music(music) -> Audio:
    return embed(music, KEY, PAYLOAD)


def snr_db(ref: Audio, test: Audio) -> float:
    err = test.samples - ref.samples
    return float(10 * np.log10((ref.samples**2).sum() / (err**2).sum()))


def test_round_trip_recovers_payload_with_tiny_p_value(music, marked_music):
    det = detect(marked_music, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.p_value < 1e-12
    assert det.bit_confidence > 0.5
    assert len(det.segments) == 1
    seg = det.segments[0]
    assert seg.start_s < 0.5 and seg.end_s > music.duration_s - 0.5
    assert seg.payload == PAYLOAD


def test_output_keeps_shape_rate_and_is_quiet(music, marked_music):
    assert marked_music.samples.shape == music.samples.shape
    assert marked_music.sample_rate == music.sample_rate
    assert marked_music.samples.dtype == np.float32
    assert snr_db(music, marked_music) > 25.0  # the corpus median (>= 30 dB) is a benchmark figure


def test_unmarked_and_wrong_key_are_not_found(music, marked_music):
    for det in (detect(music, KEY), detect(marked_music, OTHER_KEY)):
        assert not det.found
        assert det.payload is None
        assert det.p_value > 1e-3
        assert det.segments == ()


def test_speech_round_trip(speech):
    det = detect(embed(speech, KEY, bytes.fromhex(PAYLOAD)), KEY)
    assert det.found and det.payload == PAYLOAD


def test_half_marked_file_reports_the_marked_half(corpus_dir):
    music = io.read_audio(corpus_dir / "music_orchestral_44k_stereo.flac")
    x = music.samples
    half = x.shape[1] // 2
    marked = embed(music, KEY, PAYLOAD).samples
    mixed = np.concatenate([x[:, :half], marked[:, half:]], axis=1)
    det = detect(music.with_samples(mixed), KEY)
    assert det.found and det.payload == PAYLOAD
    assert len(det.segments) == 1
    boundary = half / music.sample_rate
    assert abs(det.segments[0].start_s - boundary) <= 0.5
    assert abs(det.segments[0].end_s - music.duration_s) <= 0.5


@pytest.mark.parametrize("past_end_s", [0.4, 0.5, 0.6, 0.7])
def test_segment_does_not_overhang_unmarked_audio_after_the_mark(past_end_s):
    # A 6 s mono window that ends shortly after the mark, as the verifier's edge search reads
    # it. In this configuration chance agreement in the unmarked tail used to join the segment
    # (its end 0.25-0.49 s too late); placed at its change point, the end is within 0.1 s.
    from tests._verify_fixtures import foley_host

    sr = 48_000
    marked = embed(Audio(foley_host(8.0, seed=0), sr), KEY, "63d68fb2494c15eb").samples
    marked = np.round(marked * 32767) / 32767  # as written to 16-bit PCM
    x = np.concatenate([marked, foley_host(13.0, seed=22)[:, : 2 * sr]], axis=1).mean(axis=0)
    end = 8.0 + past_end_s
    det = detect(Audio(x[np.newaxis, int((end - 6.0) * sr) : int(end * sr)], sr), KEY, search=False)
    assert det.found and det.segments
    assert abs(det.segments[-1].end_s - (6.0 - past_end_s)) <= 0.1, det.segments


def test_short_segments_take_the_payload_of_the_whole_file():
    # Twelve 0.8 s bursts of noise between 1.2 s of digital silence (which carries no mark): each
    # burst is a segment holding a fifth of the codeword. Decoding each segment again on its own
    # gave one of them, with this key, a payload nobody issued (a chance CRC pass, about 5e-4 per
    # decode); the whole file decodes, and its segments carry its payload.
    sr, seconds = 48_000, 24.0
    rng = np.random.default_rng(5329)
    key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(8).hex()
    noise = lfilter([1.0], [1.0, -0.97], np.random.default_rng(0).standard_normal((2, int(seconds * sr))), axis=1)
    gate = (np.arange(noise.shape[1]) / sr) % 2.0 < 0.8
    host = Audio((0.2 * noise / np.abs(noise).max() * gate).astype(np.float32), sr)
    det = detect(embed(host, key, payload), key)
    assert det.found and det.payload == payload
    assert len(det.segments) == 12
    assert all(s.payload == payload for s in det.segments)
    for k, seg in enumerate(det.segments):  # each burst placed within 0.5 s
        assert abs(seg.start_s - 2.0 * k) <= 0.5 and abs(seg.end_s - (2.0 * k + 0.8)) <= 0.5


def test_a_chance_crc_pass_under_the_wrong_block_phase_loses_to_the_right_phase(monkeypatch):
    # A 6 s soundtrack holds under two blocks, so the block phase of its first repetition is
    # ranked from the little its repetitions overlap, and the ranking is wrong for about 1 file
    # in 17. With this key the list decoder finds a path that passes the CRC by chance (about
    # 2e-4 per decode) under the wrong phase. A detector that stopped at the first phase to pass
    # named that payload whenever the wrong phase was ranked first (the likely cause of a wrong
    # payload in one CI run); here the ranking is reversed to make it so. Every phase is decoded
    # and the path the file agrees with best is the payload.
    from tests.test_mark import make_signal

    rng = np.random.default_rng(7000 + 1274)
    key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(8).hex()
    marked = embed(make_signal(seconds=6.0, seed=9), key, payload)
    ranked = decode.block_phase_options
    monkeypatch.setattr(decode, "block_phase_options", lambda parts, layout: ranked(parts, layout)[::-1])
    det = detect(marked, key, search=False)
    assert det.found and det.payload == payload, det


def test_montage_of_excerpts_shorter_than_a_block_decodes_jointly(corpus_dir, monkeypatch):
    # Three 2 s excerpts (a block is 4.32 s), taken from blocks of both phases, that cover
    # the block only together: each piece is read at its own alignment and their
    # repetitions are summed. (Pieces of 2.4 s hold enough of this clip's codeword for the
    # reading without the noise-floor discount to decode one of them alone.)
    music = io.read_audio(corpus_dir / "music_orchestral_44k_stereo.flac")
    marked = embed(music, KEY, PAYLOAD)
    sr, n = music.sample_rate, int(2.0 * music.sample_rate)
    starts = [int(t * sr) for t in (0.5, 0.5 + 4.32 + 1.44, 0.5 + 8.64 + 2.88)]
    montage = marked.with_samples(np.concatenate([marked.samples[:, s : s + n] for s in starts], axis=1))
    det = detect(montage, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.details["joint_pieces"] == 3
    assert len(det.segments) == 3 and all(s.payload == PAYLOAD for s in det.segments)
    for k, seg in enumerate(det.segments):  # each excerpt placed within 0.5 s
        assert abs(seg.start_s - k * 2.0) <= 0.5 and abs(seg.end_s - (k + 1) * 2.0) <= 0.5
    monkeypatch.setattr(sys.modules["provenance.watermark.detect"], "decode_joint", lambda feat, layout, pieces: (None, 0.0, []))
    alone = detect(montage, KEY, search=False)
    assert alone.found and alone.payload is None  # no excerpt carries the payload on its own


def test_joint_payload_is_not_given_to_a_piece_marked_with_another(corpus_dir):
    water = io.read_audio(corpus_dir / "ambience_water_stream.flac")
    first, other = embed(water, KEY, PAYLOAD), embed(water, KEY, "fedcba9876543210")
    sr, n = water.sample_rate, int(2.4 * water.sample_rate)
    starts = [int(t * sr) for t in (0.0, 4.32 + 1.44, 8.64 + 2.88)]
    pieces = [src.samples[:, s : s + n] for s, src in zip(starts, (first, other, first))]
    det = detect(water.with_samples(np.concatenate(pieces, axis=1)), KEY, search=False)
    assert det.payload == PAYLOAD and det.details["joint_pieces"] == 3
    labelled = [s for s in det.segments if s.payload == PAYLOAD]
    assert labelled and all(s.end_s <= 2.4 + 0.5 or s.start_s >= 4.8 - 0.5 for s in labelled)


@pytest.mark.parametrize("cut_samples", [1024, 2560, 4800])
def test_a_cut_in_a_short_file_reports_both_sides(music, marked_music, cut_samples):
    # 8 s with 21-109 ms cut out of the middle (a codec restart, an edit): each side is shorter
    # than a block, so the side after the cut, at another alignment, is not reported on its own.
    # It agrees with the codeword of the payload the first side decoded, which names it.
    x = marked_music.samples
    half = x.shape[1] // 2
    cut = marked_music.with_samples(np.concatenate([x[:, :half], x[:, half + cut_samples:]], axis=1))
    det = detect(cut, KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    assert all(s.payload == PAYLOAD for s in det.segments)
    covered = sum(s.end_s - s.start_s for s in det.segments)
    assert covered >= cut.duration_s - 1.0, det.segments
    assert det.details["codeword_pieces"] >= 1


def test_a_short_piece_marked_with_another_payload_is_not_named_by_this_one(music):
    # The same 8 s, its second half marked with another payload at another alignment: that half
    # agrees with this payload's pilots, never with its payload groups, and stays unnamed by it.
    first, other = embed(music, KEY, PAYLOAD).samples, embed(music, KEY, "fedcba9876543210").samples
    half = first.shape[1] // 2
    spliced = music.with_samples(np.concatenate([first[:, :half], other[:, half + 2560:]], axis=1))
    det = detect(spliced, KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    boundary = half / music.sample_rate
    named = [s for s in det.segments if s.payload == PAYLOAD]
    assert named and all(s.end_s <= boundary + 0.5 for s in named), det.segments


@pytest.mark.parametrize("clip, fraction, first, second", [
    ("loud_clipped_industrial.flac", 0.6, "79d3cfc307b3caba", "a627b9d849c4f72c"),
    ("speech_male_48k_stereo_from_video.flac", 0.4, "bc92bac28f244164", "ea4903541a05e9e3"),
    ("ambience_fire_crackle.wav", 0.4, "b8e8cd4ea93d7d0a", "1df04213b6273b04"),
    ("music_ambient_piano_choir.flac", 0.4, "a8eb1e02a90aaeab", "bbe28e863a36aea5"),
    ("music_orchestral_short_cue.flac", 0.4, "ba3b0ae03eaf9522", "15043394b975b3b8"),
    ("speech_female_48k_mono_channel_names.flac", 0.4, "92a6ac12d2791def", "9c2006884c77985b"),
    ("music_tabla_loop.mp3", 0.6, "3b6a71d8f19e7d86", "184e1b60f5026c4f"),
])
def test_two_outputs_of_one_key_spliced_label_no_part_with_the_others_payload(corpus_dir, clip, fraction, first, second):
    # One clip marked twice under one key (two generations of one operator) and cut together:
    # both parts sit at the same alignment and share the pilots. A loud part of the other
    # payload agreed with the decoded codeword through its pilots alone, past SEGMENT_Z, and a
    # 0.5-0.8 s stretch of it was labelled with the wrong payload (the first two clips); the
    # first search's run went on 1.4-3 s into the other part, which the later search that
    # decoded the other payload did not get back (the next three); one run covered both parts,
    # labelled with one payload, or with none when its decode failed (the last two: the first
    # and last block of the run, or the part the one payload does not hold, decode the other).
    from benchmarks.watermarkers.foleyseal import BENCH_KEY_SEED, _key_bytes

    key = WatermarkKey(_key_bytes(BENCH_KEY_SEED))
    audio = io.read_audio(corpus_dir / clip)
    a, b = embed(audio, key, first).samples, embed(audio, key, second).samples
    k = int(fraction * audio.frames)
    det = detect(audio.with_samples(np.concatenate([a[:, :k], b[:, k:]], axis=1)), key)
    boundary = k / audio.sample_rate
    assert det.found and det.payload in (first, second)
    assert all(s.end_s <= boundary + 0.5 for s in det.segments if s.payload == first), det.segments
    assert all(s.start_s >= boundary - 0.5 for s in det.segments if s.payload == second), det.segments
    labelled = {s.payload for s in det.segments} - {None}
    assert labelled == {first, second} or clip.startswith(("loud", "speech_male")), det.segments


def test_mark_is_not_added_to_digital_silence(music):
    x = music.samples.copy()
    rate = music.sample_rate
    x[:, 3 * rate : 5 * rate] = 0.0
    marked = embed(music.with_samples(x), KEY, PAYLOAD).samples
    assert np.all(marked[:, 3 * rate + 400 : 5 * rate - 400] == 0.0)


def test_mark_is_not_added_to_a_5_ms_digital_gap_anywhere(music):
    # a gap of exactly 5 ms that holds one odd multiple of its length and no other: a
    # pre-check that sampled every other 5 ms would miss it
    rate = music.sample_rate
    gap = int(0.005 * rate)
    start = (2 * (3 * rate // (2 * gap)) + 1) * gap - gap // 2
    x = music.samples.copy()
    x[:, start : start + gap] = 0.0
    marked = embed(music.with_samples(x), KEY, PAYLOAD).samples
    assert np.all(marked[:, start : start + gap] == 0.0)
    assert not np.all(marked[:, start - gap : start] == x[:, start - gap : start])


def test_mark_never_pushes_samples_past_full_scale(music):
    loud = music.samples / np.abs(music.samples).max() * 0.999
    marked = embed(music.with_samples(loud), KEY, PAYLOAD).samples
    assert np.abs(marked).max() <= 1.0


@pytest.fixture(scope="module")
def long_music(corpus_dir) -> Audio:
    """The whole 15 s orchestral clip: longer than one embedding chunk."""
    return io.read_audio(corpus_dir / "music_orchestral_44k_stereo.flac")


def relative_rms(diff: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean(diff**2) / np.mean(ref**2)))


def test_chunked_embedding_equals_one_pass_over_the_whole_file(long_music, monkeypatch):
    import sys

    embed_module = sys.modules["provenance.watermark.embed"]
    assert long_music.duration_s > embed_module.CHUNK_S  # two chunks and a seam
    chunked = embed(long_music, KEY, PAYLOAD).samples - long_music.samples
    monkeypatch.setattr(embed_module, "CHUNK_S", 60.0)
    monkeypatch.setattr(embed_module, "PAD_S", 0.96)  # 0.96 s is a whole number of runs
    whole = embed(long_music, KEY, PAYLOAD).samples - long_music.samples
    assert relative_rms(chunked - whole, whole) < 1e-6


SPREAD = WatermarkParams(run_stride=9)
"""Runs interleaved at a stride of 9 slots (0.72 s super-blocks): a format variant the
benchmark compares with the shipped one (docs/robustness.md, time diversity)."""


def test_interleaved_runs_round_trip_at_any_alignment(long_music):
    marked = embed(long_music, KEY, PAYLOAD, params=SPREAD)
    assert snr_db(long_music, marked) > 25.0
    # Trim a part of a super-block that is not a whole number of slots: the scan must find
    # the cut phase within the super-block and the block offset.
    trim = int(round(0.47 * long_music.sample_rate))
    shifted = marked.with_samples(marked.samples[:, trim:])
    for audio in (marked, shifted):
        d = detect(audio, KEY, params=SPREAD, search=False)
        assert d.found and d.payload == PAYLOAD and d.p_value < 1e-30
        assert d.segments and d.segments[0].start_s < 0.8 and d.segments[-1].end_s > audio.duration_s - 1.5
    assert not detect(marked, KEY, search=False).found  # the shipped format does not read it
    assert not detect(marked, OTHER_KEY, params=SPREAD, search=False).found


def test_chunked_embedding_of_interleaved_runs_equals_one_pass(long_music, monkeypatch):
    embed_module = sys.modules["provenance.watermark.embed"]
    chunked = embed(long_music, KEY, PAYLOAD, params=SPREAD).samples - long_music.samples
    monkeypatch.setattr(embed_module, "CHUNK_S", 60.0)
    whole = embed(long_music, KEY, PAYLOAD, params=SPREAD).samples - long_music.samples
    assert relative_rms(chunked - whole, whole) < 1e-6


def test_streamed_file_embedding_equals_in_memory_embedding(long_music, tmp_path):
    from provenance.watermark.files import embed_file

    src = tmp_path / "in.wav"
    io.write_audio(src, Audio(long_music.samples, long_music.sample_rate, subtype="FLOAT"))
    out = embed_file(src, tmp_path / "out.wav", KEY, PAYLOAD)
    streamed = io.read_audio(out).samples - long_music.samples
    in_memory = embed(long_music, KEY, PAYLOAD).samples - long_music.samples
    assert relative_rms(streamed - in_memory, in_memory) < 1e-6


def test_a_video_track_is_marked_chunk_by_chunk_as_the_video_is_copied(long_music, tmp_path, monkeypatch):
    """embed_file marks a video's audio track as it streams an audio file's: each chunk is marked
    and encoded alongside the copied video packets, not the whole track first (a 1-hour video
    held 4.2 GB). The output is what marking the whole track in memory writes, bit for bit; the
    payload reads back and the video packets are copied unchanged."""
    import av

    from provenance.core.io import write as write_module
    from provenance.watermark.embed import ChunkEmbedder
    from provenance.watermark.files import detect_file, embed_file
    from tests.test_c2pa import make_video

    embed_module = sys.modules["provenance.watermark.embed"]
    monkeypatch.setattr(embed_module, "CHUNK_S", 2.0)  # the 15 s track in 8 chunks
    video = make_video(tmp_path / "clip.mp4", long_music)
    rate = long_music.sample_rate
    chunk = ChunkEmbedder(KEY, PAYLOAD, rate).chunk
    # the whole track marked in memory and written: what embed_file writes
    io.replace_audio_track(video, embed(io.read_audio(video), KEY, PAYLOAD), tmp_path / "whole.mp4")

    marked, encoded, ahead = [0], [0], []
    apply, encode = ChunkEmbedder.apply, write_module._AvAudioEncoder.encode

    def spy_apply(self, x, start, padded):
        marked[0] = start + x.shape[1]
        return apply(self, x, start, padded)

    def spy_encode(self, block):
        ahead.append(marked[0] - encoded[0])  # marked but not yet encoded: what is held
        encoded[0] += block.shape[1]
        return encode(self, block)

    monkeypatch.setattr(ChunkEmbedder, "apply", spy_apply)
    monkeypatch.setattr(write_module._AvAudioEncoder, "encode", spy_encode)
    out = embed_file(video, tmp_path / "marked.mp4", KEY, PAYLOAD)
    monkeypatch.undo()

    frames = io.read_audio(video).frames
    assert frames > 6 * chunk and marked[0] == frames
    assert max(ahead) <= chunk + rate  # a chunk and the muxer's 1 s lead, never the whole track

    def packets(path, kind):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(getattr(c.streams, kind)[0]) if p.size]

    assert packets(out, "video") == packets(video, "video")
    assert packets(out, "audio") == packets(tmp_path / "whole.mp4", "audio")
    found = detect_file(out, KEY, search=False)
    assert found.found and found.payload == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "marked.mp4", "whole.mp4"]


@pytest.mark.parametrize("rate, channels", [(8000, 1), (22050, 2), (48000, 6), (96000, 2), (192000, 8)])
def test_rates_and_channel_counts(music, rate, channels):
    from provenance.watermark.model import resample

    mono = resample(music.samples[:, : 6 * music.sample_rate].mean(axis=0), music.sample_rate, rate)
    rng = np.random.default_rng(channels)
    gains = rng.uniform(0.5, 1.0, size=(channels, 1)).astype(np.float32)
    audio = Audio(mono[None, :] * gains, rate)
    marked = embed(audio, KEY, PAYLOAD)
    assert marked.samples.shape == audio.samples.shape
    det = detect(marked, KEY)
    assert det.found and det.payload == PAYLOAD


def test_bad_payloads_are_refused(music):
    for bad in ("0123", "zz23456789abcdef", b"\x00" * 9, "0123456789abcdef00"):
        with pytest.raises(PayloadError, match="payload"):
            embed(music, KEY, bad)


def test_too_short_nan_and_empty_inputs_are_refused(music):
    short = Audio(music.samples[:, : int(0.5 * music.sample_rate)], music.sample_rate)
    with pytest.raises(InputError, match="too short"):
        embed(short, KEY, PAYLOAD)
    assert min_duration_s() < 5.0
    nan = music.samples.copy()
    nan[0, 1000] = np.nan
    with pytest.raises(InputError, match="NaN"):
        embed(music.with_samples(nan), KEY, PAYLOAD)
    with pytest.raises(InputError, match="zero length"):
        detect(Audio(np.zeros((1, 0), np.float32), 44100), KEY)
    with pytest.raises(InputError, match="sample rate"):
        detect(Audio(np.zeros((1, 4000), np.float32), 4000), KEY)


def test_an_array_or_a_transposed_array_is_refused_with_how_to_make_audio(music):
    """A bare array carries no sample rate; one shaped (frames, channels), as soundfile.read
    returns it, is named as transposed rather than as audio of 96,000 channels."""
    for bad in (music.samples, music.samples.tolist()):
        with pytest.raises(InputError, match=r"must be an Audio \(provenance.core.audio.Audio\(samples, sample_rate\)"):
            embed(bad, KEY, PAYLOAD)
        with pytest.raises(InputError, match="must be an Audio"):
            detect(bad, KEY)
    transposed = Audio(np.ascontiguousarray(music.samples.T), music.sample_rate)
    with pytest.raises(InputError, match=r"looks like \(frames, channels\).*samples\.T"):
        embed(transposed, KEY, PAYLOAD)


def test_key_files(tmp_path):
    key = new_key()
    path = save_key(key, tmp_path / "wm.key")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_key(path) == key
    assert key.secret.hex() not in repr(key)
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(new_key(), path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="permissions"):
        load_key(path)
    with pytest.raises(KeyFileError, match="not found"):
        load_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("hello\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a FoleySeal watermark key"):
        load_key(bad)


def test_subkeys_are_independent_per_purpose():
    a, b = KEY.subkey("chips"), KEY.subkey("dither")
    assert a != b and len(a) == 32
    assert KEY.subkey("chips") == a
    assert OTHER_KEY.subkey("chips") != a


@pytest.mark.parametrize(
    "name", ["silence", "dc", "sine_1k", "square_440", "clicks", "white_noise", "short_dc"]
)
def test_synthetic_signals_without_the_mark_are_not_found(name):
    rate = 16_000
    n = rate // 5 if name == "short_dc" else 8 * rate
    t = np.arange(n) / rate
    rng = np.random.default_rng(7)
    x = {
        "silence": np.zeros(n),
        "dc": np.full(n, 0.5),
        "short_dc": np.ones(n),
        "sine_1k": 0.5 * np.sin(2 * np.pi * 1000 * t),
        "square_440": 0.3 * np.sign(np.sin(2 * np.pi * 440 * t)),
        "clicks": (np.arange(n) % 4000 == 0).astype(float),
        "white_noise": rng.normal(0, 0.1, n),
    }[name]
    det = detect(Audio(x.astype(np.float32)[None, :], rate), KEY)
    assert not det.found and det.p_value > 1e-3 and det.payload is None


def test_list_decoding_recovers_payloads_plain_viterbi_misses():
    """Over noisy codewords, the 8-path list decoder recovers every payload plain Viterbi
    recovers and more, and never returns a wrong payload with a valid CRC."""
    from provenance.watermark import ecc

    plain = listed = wrong = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        bits = rng.integers(0, 2, 64).astype(np.uint8)
        soft = (1.0 - 2.0 * ecc.encode_payload(bits)) + rng.normal(0.0, 1.15, ecc.coded_length(64))
        p1, ok1 = ecc.decode_payload(soft, 64, list_size=1)
        p8, ok8 = ecc.decode_payload(soft, 64)
        assert np.array_equal(ecc.viterbi_decode(soft, 80, 1)[0], ecc.viterbi_decode(soft, 80, 8)[0])
        plain += ok1 and np.array_equal(p1, bits)
        listed += ok8 and np.array_equal(p8, bits)
        wrong += ok8 and not np.array_equal(p8, bits)
        if ok1:
            assert ok8 and np.array_equal(p8, p1)
    assert wrong == 0
    assert listed >= plain + 5, (plain, listed)


def test_the_mark_never_takes_a_sample_past_the_largest_integer_step(corpus_dir, tmp_path):
    """A 16-bit file peaking at 32767: the mark drove samples to exactly +1.0 (32768/32768), which
    the writer clipped back to 32767, so 31770, 32767 and 32719 all became 32767."""
    x = io.read_audio(corpus_dir / "music_orchestral_44k_stereo.flac", duration_s=6.0).samples
    pcm = np.round(x / np.abs(x).max() * 32767).astype(np.int16)  # peaks at the largest step, +32767
    src = tmp_path / "loud.wav"
    io.write_audio(src, Audio(pcm, 44_100, subtype="PCM_16"))
    key = WatermarkKey(bytes([2]) * 32)  # one under which the mark pushed 3 samples to +1.0
    marked = embed(io.read_audio(src), key, PAYLOAD)
    assert marked.samples.max() <= 32767 / 32768 and marked.samples.min() >= -1.0
    assert detect(marked, key).payload == PAYLOAD
