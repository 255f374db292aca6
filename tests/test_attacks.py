"""The attack library: every registered attack runs, keeps format, is seeded, and does what it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks.attacks import (
    ISSUE2_ATTACKS,
    OTHER,
    PRIMARY,
    AttackContext,
    MarkedSpan,
    get_attack,
    list_attacks,
    load_attack_list,
    parse_attacks,
)
from provenance.core.audio import Audio
from provenance.core.errors import ConfigError, InputError

SR = 44100


def _music(seconds: float = 2.0, rate: int = SR, channels: int = 2, seed: int = 7) -> Audio:
    """Harmonic tones with a slow envelope plus a little noise: a stand-in for music."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros((channels, t.size))
    for c in range(channels):
        for f0 in (220.0, 330.0, 495.0):
            for h in range(1, 6):
                x[c] += 0.04 / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28))
        x[c] *= 0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)
        x[c] += 0.003 * rng.standard_normal(t.size)
    return Audio(x.astype(np.float32), rate)


def _tone(freq_hz: float, seconds: float = 1.5, rate: int = SR, amp: float = 0.3, channels: int = 1) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio(np.tile(amp * np.sin(2 * np.pi * freq_hz * t), (channels, 1)).astype(np.float32), rate)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    """Frequency of the strongest spectral peak, Hz (Hann window, parabolic interpolation)."""
    w = np.hanning(x.size)
    mag = np.abs(np.fft.rfft(x * w))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-20)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + delta) * rate / x.size


def _band_power(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    return float(spec[(f >= lo) & (f < hi)].sum())


def _snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((test - ref).astype(np.float64) ** 2)))


def _lag(ref: np.ndarray, test: np.ndarray, max_lag: int = 200) -> int:
    """Lag (samples) maximizing the correlation of test against ref (positive = test late)."""
    core = ref[max_lag:-max_lag]
    c = [float(np.dot(test[max_lag + k : max_lag + k + core.size], core)) for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(c)) - max_lag


CLIP = _music(seconds=1.5)
CTX = AttackContext(other_clip=_music(seed=11), other_marked=_music(seed=12), block_s=1.0)


# --- the registry ---------------------------------------------------------------------------


def test_registry_covers_both_issue_lists():
    names = set(list_attacks())
    assert len(names - {"none"}) >= 30
    assert set(ISSUE2_ATTACKS) <= names
    issue3 = {
        "mp3_320k", "mp3_128k", "mp3_64k", "mp3_32k", "aac_128k", "aac_64k", "opus_64k", "opus_32k",
        "opus_16k", "vorbis_q2", "cascade_mp3_128k_aac_64k", "resample_8k", "resample_16k", "resample_22k",
        "lowpass_3.5k", "lowpass_6k", "highpass_500", "bandpass_300_3400", "eq_+6db", "eq_-6db", "requant_8bit",
        "noise_white_30db", "noise_white_20db", "noise_white_10db", "noise_pink_30db", "noise_pink_20db",
        "noise_pink_10db", "volume_x0.1", "volume_x4_clip", "compress", "echo_100ms", "reverb_room",
        "polarity_invert", "dc_offset", "stereo_to_mono", "crop_5s", "offset_trim_0.5blk", "cut_1s",
        "splice_marked", "insert_2s", "speed_+5%", "speed_-5%", "speed_+10%", "speed_-10%", "stretch_+5%",
        "stretch_-5%", "stretch_+10%", "stretch_-10%", "pitch_+1st", "pitch_-1st", "pitch_+2st", "pitch_-2st",
        "drop_samples_0.1%", "mix_-10db", "mix_0db", "rerecord", "cascade_mp3_64k_resample_22k_noise_30db",
        "cascade_speed_+5%_aac_64k",
    }
    assert issue3 <= names, issue3 - names
    kinds = {get_attack(n).kind for n in names}
    assert {"codec", "signal", "time", "mixing", "cascade"} <= kinds


def test_parse_attacks_and_unknown_name():
    got = parse_attacks("mp3_64k, speed_+5%")
    assert [a.name for a in got] == ["mp3_64k", "speed_+5%"]
    assert get_attack("mp3_64k").params() == {"type": "Mp3", "bitrate_kbps": 64}
    with pytest.raises(InputError, match="mp3_64"):
        parse_attacks("mp3_64")


def test_params_are_the_attack_parameters_only():
    # ``requires`` (the optional packages an attack needs) is a class attribute, not a parameter:
    # a dataclass takes an annotation it cannot resolve to typing.ClassVar for a field, which
    # then showed up in the reverb's parameters in every results file.
    for name in list_attacks():
        attack = get_attack(name)
        assert "requires" not in attack.params(), name
        assert "requires" not in {f.name for f in dataclasses.fields(attack)}, name


def test_toml_attack_list(tmp_path):
    p = tmp_path / "attacks.toml"
    p.write_text(
        'attacks = ["mp3_64k", "crop_5s"]\n\n'
        '[[attack]]\ntype = "Lowpass"\nname = "lowpass_5k"\ncutoff_hz = 5000\n\n'
        '[[attack]]\ntype = "Cascade"\nname = "chain"\nsteps = ["volume_x0.25", "noise_white_30db"]\n'
    )
    attacks = load_attack_list(p)
    assert [a.name for a in attacks] == ["mp3_64k", "crop_5s", "lowpass_5k", "chain"]
    assert attacks[2].params()["cutoff_hz"] == 5000
    assert [s.name for s in attacks[3].steps] == ["volume_x0.25", "noise_white_30db"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[attack]]\ntype = "Lowpass"\nname = "x"\ncutoff = 5000\n')
    with pytest.raises(ConfigError, match="bad parameters"):
        load_attack_list(bad)
    (tmp_path / "broken.toml").write_text("attacks = [")
    with pytest.raises(ConfigError, match="TOML"):
        load_attack_list(tmp_path / "broken.toml")


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[[attack]]\ntype = "Lowpass"\nname = "x"\ncutoff_hz = "5k"\n', "cutoff_hz must be a finite number, got '5k'"),
        ('[[attack]]\ntype = "Lowpass"\nname = "x"\ncutoff_hz = -5000\n', "cutoff_hz must be above 0"),
        ('[[attack]]\ntype = "Volume"\nname = "x"\ngain = inf\n', "gain must be a finite number"),
        ('[[attack]]\ntype = "Requantize"\nname = "x"\nbits = 8.0\n', "bits must be a whole number, got 8.0"),
        ('[[attack]]\ntype = "ParametricEq"\nname = "x"\ngain_db = 6\ncenters_hz = [-100, 1000]\n',
         "centers_hz must be above 0 Hz"),
        # these ran, and their rows measured nothing anyone would cite
        ('[[attack]]\ntype = "Requantize"\nname = "x"\nbits = 0\n', "bits must be 1 to 32 bits, got 0"),
        ('[[attack]]\ntype = "WhiteNoise"\nname = "x"\nsnr_db = -500\n', "snr_db must be -200 to 200 dB, got -500"),
        ('[[attack]]\ntype = "RoomReverb"\nname = "x"\nroom_size = 3\n', "room_size must be 0 to 1, got 3"),
        ('[[attack]]\ntype = "Speed"\nname = "x"\npercent = -100\n', "percent must be -99 to 1000 percent, got -100"),
        ('[[attack]]\ntype = "Crop"\nname = "x"\nduration_s = 0\n', "no usable audio"),
        # the encoder clamped it: the row said 9999 kbps of a 320 kbps round trip
        ('[[attack]]\ntype = "Mp3"\nname = "x"\nbitrate_kbps = 9999\n', "bitrate_kbps must be 8 to 320 kbps for Mp3"),
        ('[[attack]]\ntype = "Opus"\nname = "x"\nbitrate_kbps = 2\n', "bitrate_kbps must be 6 to 510 kbps for Opus"),
        # a unit in a string: the range check compared it first ("'<=' not supported ...")
        ('[[attack]]\ntype = "Mp3"\nname = "x"\nbitrate_kbps = "64k"\n', "bitrate_kbps must be a finite number, got '64k'"),
        ('[[attack]]\ntype = "WhiteNoise"\nname = "x"\nsnr_db = "20dB"\n', "snr_db must be a finite number, got '20dB'"),
        ('[[attack]]\ntype = "Volume"\nname = "x"\ngain = -1000000.0\n', "gain must be a gain factor of 0 to 1000"),
        ('[[attack]]\ntype = "Cascade"\nname = "x"\nsteps = []\n', "non-empty list of steps"),
        ('[[attack]]\ntype = "Cascade"\nname = "x"\nsteps = ["nope"]\n', "cascade 'x': unknown attack 'nope'"),
        ('[[attack]]\ntype = "Lowpass"\nname = "mp3_64k"\ncutoff_hz = 300\n', "name of a registered attack"),
        ('[[attack]]\ntype = "Lowpass"\nname = 5\ncutoff_hz = 300\n', "needs a name"),
        ('[[attack]]\ntype = "Lowpass"\nname = "a|b"\ncutoff_hz = 300\n', "without , or |"),
        ('[attack]\ntype = "Lowpass"\nname = "x"\ncutoff_hz = 300\n', "double brackets"),
        ("attacks = [5]\n", "list of attack names"),
        ('attacks = "mp3_64k"\n', "list of attack names"),
        ('attacks = ["mp3_64k", "mp3_64k"]\n', "'mp3_64k' is listed twice"),
        # a typo dropped mp3_64k without a word
        ('atacks = ["mp3_64k"]\n\n[[attack]]\ntype = "Lowpass"\nname = "x"\ncutoff_hz = 300\n',
         "unknown key(s) ['atacks'] in the attack list"),
    ],
)
def test_an_attack_list_that_would_measure_nonsense_is_refused(tmp_path, toml, message):
    p = tmp_path / "attacks.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_attack_list(p)
    assert message in str(err.value) and str(p) in str(err.value), str(err.value)


def test_an_attack_name_in_other_case_gets_the_name_suggested():
    """`--attacks MP3_64K` got no suggestion, while the farther `mp3_64kk` got one."""
    with pytest.raises(InputError, match=r"unknown attack 'MP3_64K' \(did you mean mp3_64k\?\)"):
        parse_attacks("MP3_64K")


def test_an_attack_named_twice_on_the_command_line_is_refused():
    with pytest.raises(ConfigError, match="'mp3_64k' is listed twice"):
        parse_attacks("mp3_64k,none,mp3_64k")


# --- every attack ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_runs_keeps_format_and_is_seeded(name):
    attack = get_attack(name)
    a = attack.run(CLIP, np.random.default_rng(3), CTX)
    b = attack.run(CLIP, np.random.default_rng(3), CTX)
    out = a.audio
    assert out.samples.dtype == np.float32 and np.isfinite(out.samples).all()
    assert out.sample_rate == CLIP.sample_rate
    assert out.channels == (1 if attack.changes_channels else CLIP.channels)
    if not attack.changes_time:
        assert out.frames == CLIP.frames
    np.testing.assert_array_equal(out.samples, b.audio.samples)
    assert a.marked_spans == b.marked_spans
    for s in a.marked_spans:
        assert 0.0 <= s.start_s < s.end_s <= out.duration_s + 1e-6
    if name not in ("none", "crop_5s", "montage_3x2s"):  # a 2 s clip is kept whole (tested below)
        assert not np.array_equal(out.samples[:, : min(out.frames, CLIP.frames)],
                                  CLIP.samples[: out.channels, : min(out.frames, CLIP.frames)]), "attack did nothing"


@pytest.mark.parametrize("name", ["noise_white_20db", "crop_5s", "insert_2s", "montage_3x2s", "drop_samples_0.1%"])
def test_random_attacks_depend_on_the_seed(name):
    clip = _music(seconds=8.0)
    a = get_attack(name).apply(clip, np.random.default_rng(1), CTX)
    b = get_attack(name).apply(clip, np.random.default_rng(2), CTX)
    assert a.frames != b.frames or not np.array_equal(a.samples, b.samples)


# --- each does what it claims ---------------------------------------------------------------


def test_lowpass_removes_10k_and_keeps_1k():
    x = Audio(_tone(1000).samples + _tone(10000).samples, SR)
    for name in ("lowpass_6k", "lowpass_3.5k"):
        y = get_attack(name).apply(x, np.random.default_rng(0))
        assert _band_power(y.samples[0], SR, 9900, 10100) < 1e-5 * _band_power(x.samples[0], SR, 9900, 10100)
        assert _band_power(y.samples[0], SR, 990, 1010) == pytest.approx(_band_power(x.samples[0], SR, 990, 1010), rel=0.05)


def test_highpass_and_telephone_band():
    x = Audio(_tone(100).samples + _tone(1000).samples + _tone(6000).samples, SR)
    hp = get_attack("highpass_500").apply(x, np.random.default_rng(0)).samples[0]
    assert _band_power(hp, SR, 95, 105) < 1e-4 * _band_power(x.samples[0], SR, 95, 105)
    bp = get_attack("bandpass_300_3400").apply(x, np.random.default_rng(0)).samples[0]
    for f in (100, 6000):
        assert _band_power(bp, SR, f - 5, f + 5) < 1e-3 * _band_power(x.samples[0], SR, f - 5, f + 5)
    assert _band_power(bp, SR, 990, 1010) == pytest.approx(_band_power(x.samples[0], SR, 990, 1010), rel=0.05)


def test_resample_8k_band_limits():
    x = Audio(_tone(1000).samples + _tone(6000).samples, SR)
    y = get_attack("resample_8k").apply(x, np.random.default_rng(0)).samples[0]
    assert _band_power(y, SR, 5990, 6010) < 1e-4 * _band_power(x.samples[0], SR, 5990, 6010)
    assert _band_power(y, SR, 990, 1010) == pytest.approx(_band_power(x.samples[0], SR, 990, 1010), rel=0.05)


def test_eq_gain_at_center():
    x = _tone(1000)
    for name, gain_db in (("eq_+6db", 6.0), ("eq_-6db", -6.0)):
        y = get_attack(name).apply(x, np.random.default_rng(0)).samples[0]
        got = 10 * np.log10(_band_power(y[SR // 2 :], SR, 990, 1010) / _band_power(x.samples[0][SR // 2 :], SR, 990, 1010))
        assert got == pytest.approx(gain_db, abs=1.0)


@pytest.mark.parametrize("name,snr", [("noise_white_20db", 20.0), ("noise_pink_20db", 20.0), ("noise_white_10db", 10.0),
                                      ("noise_pink_30db", 30.0)])
def test_noise_snr(name, snr):
    y = get_attack(name).apply(CLIP, np.random.default_rng(5))
    assert _snr_db(CLIP.samples, y.samples) == pytest.approx(snr, abs=0.5)


def test_pink_noise_falls_3db_per_octave():
    silent_ish = Audio(np.full((1, 4 * SR), 0.1, np.float32), SR)  # DC carries the power; noise is the rest
    n = get_attack("noise_pink_20db").apply(silent_ish, np.random.default_rng(0)).samples[0] - 0.1
    low, high = _band_power(n, SR, 500, 1000), _band_power(n, SR, 4000, 8000)
    # 1/f power: equal power per octave
    assert 10 * np.log10(low / high) == pytest.approx(0.0, abs=1.5)
    white = get_attack("noise_white_20db").apply(silent_ish, np.random.default_rng(0)).samples[0] - 0.1
    assert 10 * np.log10(_band_power(white, SR, 4000, 8000) / _band_power(white, SR, 500, 1000)) == pytest.approx(
        10 * np.log10(8), abs=1.0)


def test_volume_and_clipping():
    quiet = get_attack("volume_x0.25").apply(CLIP, np.random.default_rng(0))
    np.testing.assert_allclose(quiet.samples, CLIP.samples * 0.25, rtol=1e-6)
    loud_src = Audio(CLIP.samples * 3, SR)
    loud = get_attack("volume_x4_clip").apply(loud_src, np.random.default_rng(0))
    np.testing.assert_allclose(loud.samples, np.clip(loud_src.samples * 4, -1, 1), rtol=1e-6)
    assert np.abs(loud.samples).max() == pytest.approx(1.0)
    assert np.mean(np.abs(loud.samples) >= 1.0) > 0.01


def test_requantize_polarity_dc_mono():
    q = get_attack("requant_8bit").apply(CLIP, np.random.default_rng(0)).samples
    np.testing.assert_allclose(q * 128, np.round(q * 128), atol=1e-4)
    np.testing.assert_array_equal(get_attack("polarity_invert").apply(CLIP, np.random.default_rng(0)).samples, -CLIP.samples)
    dc = get_attack("dc_offset").apply(CLIP, np.random.default_rng(0)).samples
    assert float(np.mean(dc - CLIP.samples)) == pytest.approx(0.05, abs=1e-4)
    mono = get_attack("stereo_to_mono").apply(CLIP, np.random.default_rng(0))
    assert mono.channels == 1
    np.testing.assert_allclose(mono.samples[0], CLIP.samples.mean(axis=0), atol=1e-6)


def test_echo_delay_and_gain():
    x = np.zeros((1, SR), np.float32)
    x[0, 1000] = 0.5
    y = get_attack("echo_100ms").apply(Audio(x, SR), np.random.default_rng(0)).samples[0]
    assert y[1000 + 4410] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-4)


def test_reverb_adds_a_tail_and_compression_narrows_dynamics():
    burst = np.zeros((2, SR), np.float32)
    burst[:, 1000:3000] = 0.3 * np.random.default_rng(0).standard_normal((2, 2000))
    y = get_attack("reverb_room").apply(Audio(burst, SR), np.random.default_rng(0)).samples
    assert np.sqrt(np.mean(y[:, 8000:20000] ** 2)) > 1e-3
    loud_soft = np.concatenate([_tone(440, 0.5, amp=0.8).samples, _tone(440, 0.5, amp=0.02).samples], axis=1)
    z = get_attack("compress").apply(Audio(loud_soft, SR), np.random.default_rng(0)).samples[0]
    ratio_in = 20 * np.log10(0.8 / 0.02)
    ratio_out = 20 * np.log10(np.abs(z[5000:20000]).max() / np.abs(z[30000:]).max())
    assert ratio_out < ratio_in - 10


@pytest.mark.parametrize("name", ["reverb_room", "rerecord", "compress"])
def test_effects_reach_every_channel_of_surround_audio(name):
    """pedalboard's Freeverb passes a third channel and beyond through untouched: a 5.1 file's
    'reverb' trial would have counted as survived with four of its channels never changed."""
    t = np.arange(2 * SR) / SR
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(6)]).astype(np.float32)
    y = get_attack(name).apply(Audio(x, SR), np.random.default_rng(0)).samples
    assert y.shape == x.shape
    assert (np.max(np.abs(y - x), axis=1) > 1e-3).all(), name


def test_speed_changes_length_and_pitch():
    x = _tone(1000, seconds=2.0)
    for name, pct in (("speed_+5%", 5), ("speed_-10%", -10)):
        out = get_attack(name).run(x, np.random.default_rng(0))
        factor = 1 + pct / 100
        assert out.audio.frames == pytest.approx(x.frames / factor, abs=2)
        assert _peak_hz(out.audio.samples[0], SR) == pytest.approx(1000 * factor, rel=2e-3)
        assert out.marked_spans[0].end_s == pytest.approx(x.duration_s / factor, abs=1e-3)


def test_a_small_speed_change_is_applied_not_rounded_away():
    """A clock drift of 100 ppm (0.01 %) was the identity: the resampling ratio's terms were
    limited to 1000, so changes under about 0.05 % rounded to 1/1, and others moved in 0.1 % steps."""
    from benchmarks.attacks.time import Speed

    x = _tone(1000, seconds=20.0)
    for pct in (0.01, -0.03, 0.25):
        out = Speed(name="drift", percent=pct).run(x, np.random.default_rng(0))
        assert out.audio.frames == pytest.approx(x.frames / (1 + pct / 100), abs=2), pct


def test_time_stretch_keeps_pitch():
    x = _tone(1000, seconds=2.0)
    out = get_attack("stretch_+5%").run(x, np.random.default_rng(0))
    assert out.audio.frames == pytest.approx(x.frames / 1.05, rel=0.01)
    assert _peak_hz(out.audio.samples[0, 4000:-4000], SR) == pytest.approx(1000, rel=3e-3)


@pytest.mark.parametrize("name,semitones", [("pitch_-1st", -1), ("pitch_+2st", 2)])
def test_pitch_shift_moves_a_tone(name, semitones):
    x = _tone(1000, seconds=2.0)
    y = get_attack(name).apply(x, np.random.default_rng(0))
    assert y.frames == x.frames
    assert _peak_hz(y.samples[0, 8000:-8000], SR) == pytest.approx(1000 * 2 ** (semitones / 12), rel=3e-3)


@pytest.mark.parametrize("name", ["mp3_64k", "aac_96k", "opus_48k", "vorbis_q2", "mp3_32k"])
def test_codec_round_trip_is_lossy_and_aligned(name):
    y = get_attack(name).apply(CLIP, np.random.default_rng(0))
    assert y.frames == CLIP.frames
    assert abs(_lag(CLIP.samples[0], y.samples[0])) <= 8
    snr = _snr_db(CLIP.samples, y.samples)
    assert 3.0 < snr < 60.0


def test_codec_bitrate_matters():
    hi = _snr_db(CLIP.samples, get_attack("mp3_320k").apply(CLIP, np.random.default_rng(0)).samples)
    lo = _snr_db(CLIP.samples, get_attack("mp3_32k").apply(CLIP, np.random.default_rng(0)).samples)
    assert hi > lo + 3


def test_codec_on_odd_rate_and_many_channels():
    x = _music(seconds=1.0, rate=96000, channels=6)
    for name in ("mp3_64k", "opus_32k"):
        y = get_attack(name).apply(x, np.random.default_rng(0))
        assert (y.channels, y.sample_rate, y.frames) == (6, 96000, x.frames)


# --- time edits report where the mark went ----------------------------------------------------


def test_crop_takes_a_window_and_maps_spans():
    x = _music(seconds=8.0)
    out = get_attack("crop_5s").run(x, np.random.default_rng(4))
    start = int(round(out.details["start_s"] * SR))
    assert out.audio.frames == 5 * SR
    np.testing.assert_array_equal(out.audio.samples, x.samples[:, start : start + 5 * SR])
    assert out.marked_spans == (MarkedSpan(0.0, 5.0, PRIMARY),)
    half = AttackContext(marked_spans=(MarkedSpan(0.0, 4.0),))
    out2 = get_attack("crop_5s").run(x, np.random.default_rng(4), half)
    assert out2.marked_spans[0].end_s == pytest.approx(4.0 - out.details["start_s"], abs=1e-6)


def test_cut_insert_offset_spans():
    x = _music(seconds=6.0)
    cut = get_attack("cut_1s").run(x, np.random.default_rng(0))
    assert cut.audio.frames == 5 * SR
    half = AttackContext(marked_spans=(MarkedSpan(0.0, 3.0),))
    cut_half = get_attack("cut_1s").run(x, np.random.default_rng(0), half)
    assert cut_half.marked_spans == (MarkedSpan(0.0, 2.5, PRIMARY),)
    ins = get_attack("insert_2s").run(x, np.random.default_rng(0), CTX)
    assert ins.audio.frames == 8 * SR
    p = ins.details["insert_at_s"]
    assert [(s.start_s, s.end_s) for s in ins.marked_spans] == [(0.0, pytest.approx(p)), (pytest.approx(p + 2), pytest.approx(8.0))]
    k = int(round(p * SR))
    np.testing.assert_array_equal(ins.audio.samples[:, k + 2 * SR :], x.samples[:, k:])
    off = get_attack("offset_trim_0.5blk").run(x, np.random.default_rng(0), AttackContext(block_s=2.0))
    assert off.audio.frames == 5 * SR and off.marked_spans[0].end_s == pytest.approx(5.0)
    pad = get_attack("offset_pad_0.25blk").run(x, np.random.default_rng(0), AttackContext(block_s=2.0))
    assert pad.audio.frames == int(6.5 * SR) and pad.marked_spans[0].start_s == pytest.approx(0.5)


def test_montage_keeps_one_excerpt_from_each_third_in_order():
    x = _music(seconds=9.0)
    out = get_attack("montage_3x2s").run(x, np.random.default_rng(3))
    starts = [int(round(t * SR)) for t in out.details["starts_s"]]
    assert out.audio.frames == 3 * 2 * SR and len(starts) == 3
    for k, s in enumerate(starts):
        assert k * 3 * SR <= s <= (k + 1) * 3 * SR - 2 * SR  # inside its third
        np.testing.assert_array_equal(out.audio.samples[:, k * 2 * SR : (k + 1) * 2 * SR], x.samples[:, s : s + 2 * SR])
    assert out.marked_spans == (MarkedSpan(0.0, 6.0, PRIMARY),)
    # only the first 4 s marked: the first excerpt is, the last is not
    part = get_attack("montage_3x2s").run(x, np.random.default_rng(3), AttackContext(marked_spans=(MarkedSpan(0.0, 4.0),)))
    assert part.marked_spans[0].start_s == 0.0 and part.marked_spans[-1].end_s <= 4.0 + 1e-9
    assert get_attack("montage_3x2s").run(_music(seconds=5.0), np.random.default_rng(3)).audio.frames == 5 * SR


def test_splice_joins_two_marked_files():
    x, other = _music(seconds=5.0, seed=1), _music(seconds=5.0, seed=2)
    out = get_attack("splice_marked").run(x, np.random.default_rng(0), AttackContext(other_marked=other))
    a = int(round(0.6 * x.frames))
    np.testing.assert_array_equal(out.audio.samples[:, :a], x.samples[:, :a])
    np.testing.assert_array_equal(out.audio.samples[:, a:], other.samples[:, a:])
    assert [(s.label, round(s.start_s, 3), round(s.end_s, 3)) for s in out.marked_spans] == [
        (PRIMARY, 0.0, 3.0), (OTHER, 3.0, 5.0)]


def test_mix_level_and_cascade_maps_time():
    y = get_attack("mix_-10db").apply(CLIP, np.random.default_rng(0), CTX)
    added = y.samples - CLIP.samples
    assert 10 * np.log10(np.mean(added.astype(np.float64) ** 2) / np.mean(CLIP.samples.astype(np.float64) ** 2)) == pytest.approx(-10, abs=0.1)
    out = get_attack("cascade_speed_+5%_aac_64k").run(_music(seconds=3.0), np.random.default_rng(0))
    assert out.marked_spans[0].end_s == pytest.approx(3.0 / 1.05, abs=1e-3)
    assert out.audio.frames == pytest.approx(3 * SR / 1.05, abs=2)


def test_sample_drop_removes_a_tenth_of_a_percent():
    x = _music(seconds=4.0)
    y = get_attack("drop_samples_0.1%").apply(x, np.random.default_rng(0))
    assert x.frames - y.frames == round(x.frames * 0.001)


def test_attacks_that_change_tempo_or_pitch_say_so():
    warping = ["speed_+5%", "stretch_-10%", "pitch_+1st", "pitch_formants_-1st", "cascade_speed_+5%_aac_64k"]
    on_timeline = ["none", "mp3_64k", "crop_5s", "cut_1s", "offset_trim_0.5blk", "mix_-10db", "splice_marked",
                   "cascade_mp3_128k_aac_64k"]
    assert all(get_attack(n).warps_time for n in warping)
    assert not any(get_attack(n).warps_time for n in on_timeline)


def test_audio_too_short_for_any_attack_is_refused_by_name():
    """Under 28 samples the filters raised scipy's ValueError ("must be greater than padlen"),
    and the stretchers returned 0 frames for 1-40 samples."""
    tiny = Audio(np.full((1, 20), 0.1, np.float32), 16_000)
    for name in ("lowpass_3.5k", "highpass_500", "bandpass_300_3400", "stretch_+5%", "rerecord", "none"):
        with pytest.raises(InputError, match=r"needs at least 0.1 s of audio, got 20 samples"):
            get_attack(name).apply(tiny, np.random.default_rng(0))
