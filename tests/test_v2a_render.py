"""Rendering: format, loudness, true peak, clicks at cue boundaries, determinism, variety."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import pyloudnorm
from scipy.signal import resample_poly, welch
from test_v2a_video import bounce_video, cfr, write_video

from v2a_core.analysis import analyze
from v2a_core.plan import plan
from v2a_core.render import render
from v2a_core.render.buffers import Buffers
from v2a_core.render.dsp import highpass, lowpass, lowpass_inplace, samples
from v2a_core.render.spatial import add_reverb, reverb
from v2a_core.types import ReverbSpec

SR = 48_000


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    path, _ = bounce_video(tmp_path_factory.mktemp("r") / "bounce.mp4")
    return analyze(path)


@pytest.fixture(scope="module")
def cut_analysis(tmp_path_factory):
    """Two scenes (dark blue water, then bright green) so ambience beds crossfade at the cut."""
    w, h = 320, 180
    rng = np.random.default_rng(2)
    sea = np.zeros((h, w, 3), np.uint8)
    sea[:] = (10, 40, 150)
    grass = np.zeros((h, w, 3), np.uint8)
    grass[:] = (90, 220, 80)
    grass[::7] = (40, 120, 30)
    noise = rng.integers(0, 30, (h, w, 1), dtype=np.uint8)
    path = write_video(
        tmp_path_factory.mktemp("c") / "cut.mp4",
        lambda t: (sea if t < 2.0 else grass) + noise,
        cfr(4.0, 25),
        (w, h),
        rate=25,
    )
    return analyze(path)


@pytest.fixture(scope="module")
def default_track(analysis):
    return render(plan(analysis, seed=3))


def _true_peak_dbtp(x: np.ndarray) -> float:
    up = resample_poly(x, 4, 1, axis=1)
    return float(20 * np.log10(np.max(np.abs(up))))


def test_format_48k_stereo_full_length(default_track, analysis):
    mix = default_track.mix
    assert mix.sample_rate == SR and mix.channels == 2
    assert mix.frames == samples(analysis.duration_s)
    assert mix.samples.dtype == np.float32 and np.isfinite(mix.samples).all()


def test_loudness_and_true_peak(default_track):
    x = default_track.mix.samples
    lufs = pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64))
    assert abs(lufs - (-16.0)) <= 1.0
    assert _true_peak_dbtp(x) <= -1.0 + 0.05
    assert np.max(np.abs(x)) < 1.0  # no clipping


@pytest.mark.parametrize("target", [-23.0, -12.0])
def test_loudness_target_is_configurable(analysis, target):
    track = render(plan(analysis, "rain, thunder", seed=1, loudness_lufs=target))
    x = track.mix.samples
    assert abs(pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64)) - target) <= 1.0
    assert _true_peak_dbtp(x) <= -1.0 + 0.05


def test_stems_sum_to_the_mix(analysis):
    track = render(plan(analysis, "footsteps on gravel, rain, calm music", seed=2))
    assert set(track.stems) == {"events", "footsteps", "ambience", "music"}
    total = sum(s.samples for s in track.stems.values())
    assert np.max(np.abs(total - track.mix.samples)) < 1e-5


def _lasting(sheet, seconds: float):
    """``sheet`` made ``seconds`` long, its beds and music lasting to the end."""
    cues = tuple(replace(c, duration_s=seconds - c.time_s) if c.layer in ("ambience", "texture", "music") else c
                 for c in sheet.cues)
    return replace(sheet, duration_s=seconds, cues=cues)


def test_without_stems_the_mix_is_the_same_and_few_full_length_signals_are_held(analysis):
    """A long video's soundtrack must fit in memory: without stems, every sound goes straight into
    the mix and nothing makes a second full-length copy of itself (each layer was kept whole,
    music was filtered into a float64 copy, the room's reverb made a full-length result). The mix
    is the same, to the last bit, as with stems."""
    sheet = _lasting(plan(analysis, "forest, calm music, footsteps", seed=1), 60.0)
    with_stems = render(sheet)
    tracemalloc.start()
    try:
        without = render(sheet, stems=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert set(with_stems.stems) == {"events", "footsteps", "ambience", "music"} and without.stems == {}
    assert np.array_equal(without.mix.samples, with_stems.mix.samples)
    assert without.loudness_lufs == with_stems.loudness_lufs
    # the mix, one more full-length signal (a reverb send, a bed, the music) and blocks: 2.8 (was 9.8)
    assert peak <= 3.2 * without.mix.samples.nbytes, peak / without.mix.samples.nbytes


def _traced_peak(fn):
    """(result, the most memory Python's allocators held at once while ``fn()`` ran, bytes)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_long_soundtrack_is_rendered_in_memory_that_does_not_grow_with_its_length(analysis, tmp_path):
    """Past the buffers' size limit, the full-length signals (mix, stems, reverb send, beds,
    music, the limiter's envelope and gain) are mapped from unnamed files in the given folder:
    twice the length takes no more memory, the sound is the same to the last bit, and no file
    is left in the folder."""
    sheet = plan(analysis, "forest, calm music, footsteps", seed=1)
    spill = Buffers(tmp_path, in_memory_bytes=1 << 20)
    render(_lasting(sheet, 40.0), stems=True, buffers=spill)  # the first run fills caches (bank samples, filters)
    _, peak_short = _traced_peak(lambda: render(_lasting(sheet, 40.0), stems=True, buffers=spill))
    long, peak_long = _traced_peak(lambda: render(_lasting(sheet, 160.0), stems=True, buffers=spill))
    assert isinstance(long.mix.samples.base, np.memmap) and isinstance(long.stems["music"].samples.base, np.memmap)
    # blocks only (about 21 MB, a third of the 160 s mix); in memory it was 7.5 mixes
    assert peak_long <= 1.1 * peak_short and peak_long < 0.5 * long.mix.samples.nbytes, (peak_short, peak_long)
    in_memory = render(_lasting(sheet, 160.0), stems=True)
    assert np.array_equal(long.mix.samples, in_memory.mix.samples)
    assert np.array_equal(long.stems["ambience"].samples, in_memory.stems["ambience"].samples)
    assert long.loudness_lufs == in_memory.loudness_lufs and long.true_peak_dbtp == in_memory.true_peak_dbtp
    assert list(tmp_path.iterdir()) == []


def test_buffers_stay_in_memory_when_small_and_a_full_disk_is_an_error_naming_the_folder(tmp_path, monkeypatch):
    import errno
    import os

    from provenance.core.errors import InputError

    small = Buffers(tmp_path, in_memory_bytes=1 << 20).zeros((2, 1000))
    assert type(small) is np.ndarray and small.dtype == np.float32 and not small.any()
    big = Buffers(tmp_path, in_memory_bytes=1000).zeros((2, 1000))
    assert isinstance(big, np.memmap) and not big.any() and list(tmp_path.iterdir()) == []

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(InputError, match=r"no room for the soundtrack's working files: 1\.1 GB more free space") as e:
        Buffers(tmp_path, in_memory_bytes=1000).zeros((2, 1 << 27))
    assert str(tmp_path) in str(e.value) and list(tmp_path.iterdir()) == []

    def unsupported(fd, offset, length):  # a file system that cannot reserve or map: kept in memory
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    kept = Buffers(tmp_path, in_memory_bytes=1000).zeros((2, 1000))
    assert type(kept) is np.ndarray and not kept.any() and list(tmp_path.iterdir()) == []


def test_reverb_added_in_place_is_the_reverb_and_its_tail_crosses_blocks():
    rng = np.random.default_rng(4)
    n = 1_300_000  # three of the convolution's blocks
    send = np.zeros((2, n), np.float32)
    for t in (100, 520_000, 524_000, 1_299_000):  # one hit straddles a block edge, one ends the signal
        send[:, t : t + 3000] = rng.standard_normal((2, min(3000, n - t)))
    base = (0.01 * rng.standard_normal((2, n))).astype(np.float32)
    for room in (ReverbSpec(1.2, 0.3, 6000.0, 0.02, "room"), ReverbSpec(14.0, 0.5, 3000.0, 0.05, "hall")):
        buf = base.copy()
        add_reverb([buf], send, room, 3)
        assert np.array_equal(buf, base + reverb(send, room, 3))
        assert np.any(buf[:, 1_100_000:] != base[:, 1_100_000:])  # the 14 s hall rings into the last block


def test_lowpass_in_place_is_the_lowpass():
    x = np.random.default_rng(5).standard_normal((2, 300_001)).astype(np.float32)
    expected = lowpass(x, 2500.0)
    assert lowpass_inplace(x, 2500.0, chunk=65_536) is x and np.array_equal(x, expected)


def _click_db(x: np.ndarray, b: int) -> float:
    """Energy above 10 kHz in the 2 ms around sample b, dB over its median in the 100 ms around.

    A step or kink in the waveform is broadband: it shows as a burst of energy high above the
    band the beds use; a raised-cosine crossfade adds none."""
    hf = highpass(x.astype(np.float32), 10_000, order=4) ** 2
    win = 48
    at = hf[b - win : b + win].mean()
    ref = [hf[k : k + 2 * win].mean() for k in range(b - 2400, b + 2400, 2 * win) if abs(k - b) > 4 * win]
    return float(10 * np.log10((at + 1e-20) / (np.median(ref) + 1e-20)))


def test_no_discontinuities_at_cue_boundaries(cut_analysis):
    sheet = plan(cut_analysis, seed=4)  # beds from the picture: one per scene, crossfaded at the cut
    track = render(sheet)
    n = track.mix.frames
    beds = [c for c in sheet.cues if c.layer in ("ambience", "texture")]
    assert len({c.category for c in beds}) >= 2
    checked = 0
    for cue in beds:
        for b in (samples(cue.time_s), samples(cue.time_s + cue.duration_s)):
            if 2500 < b < n - 2500:
                for ch in range(2):
                    assert _click_db(track.stems[cue.layer].samples[ch], b) < 3.0, f"{cue.category} clicks at {b / SR:.3f} s"
                checked += 1
    assert checked >= 2
    # one-shots rise from silence over their first samples instead of jumping
    for cue in (c for c in sheet.cues if c.layer in ("events", "footsteps")):
        x = track.stems[cue.layer].samples[0]
        b = samples(cue.time_s)
        peak = np.max(np.abs(x[b : b + 960])) + 1e-12
        assert np.max(np.abs(np.diff(x[b - 1 : b + 3]))) < 0.05 * peak


def test_one_shots_start_exactly_at_their_cue_time(analysis):
    sheet = plan(analysis, seed=5)
    track = render(sheet)
    ev = track.stems["events"].samples.mean(axis=0)
    for cue in (c for c in sheet.cues if c.layer == "events"):
        b = samples(cue.time_s)
        before = np.max(np.abs(ev[b - 480 : b - 1]))
        after = np.max(np.abs(ev[b : b + 480]))
        assert after > 20 * max(before, 1e-7), f"cue at {cue.time_s:.4f} s is not where the sound starts"


def test_same_seed_same_audio_other_seed_other_audio(analysis):
    a = render(plan(analysis, "rain, birds, calm piano", seed=11)).mix.samples
    b = render(plan(analysis, "rain, birds, calm piano", seed=11)).mix.samples
    c = render(plan(analysis, "rain, birds, calm piano", seed=12)).mix.samples
    assert np.array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3
    assert abs(np.corrcoef(a[0], c[0])[0, 1]) < 0.9


def _band_levels(x: np.ndarray) -> np.ndarray:
    f, p = welch(x.mean(axis=0), fs=SR, nperseg=4096)
    edges = 62.5 * 2 ** np.arange(0, 9)  # octave bands 62.5 Hz .. 16 kHz
    levels = np.array([10 * np.log10(p[(f >= lo) & (f < 2 * lo)].sum() + 1e-20) for lo in edges])
    return levels - levels.max()


def test_distinct_prompts_sound_different(analysis):
    prompts = ["rain", "birds singing in a forest", "car engine", "calm piano music"]
    spectra = [_band_levels(render(plan(analysis, p, seed=1)).mix.samples) for p in prompts]
    for i in range(len(prompts)):
        for j in range(i + 1, len(prompts)):
            dist = float(np.mean(np.abs(spectra[i] - spectra[j])))
            assert dist > 3.0, f"{prompts[i]!r} and {prompts[j]!r} differ by only {dist:.1f} dB per octave"


def test_repeated_events_vary(analysis):
    sheet = plan(analysis, "glass clinking", seed=0)
    track = render(sheet)
    ev = track.stems["events"].samples[0]
    cues = [c for c in sheet.cues if c.layer == "events"]
    snippets = [ev[samples(c.time_s) : samples(c.time_s) + 2400] for c in cues[:2]]
    a, b = (s / (np.max(np.abs(s)) + 1e-9) for s in snippets)
    assert np.max(np.abs(a - b)) > 0.2  # no machine-gun repeats


def _knocks(every_s: float, seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    """Short decaying knocks on a faint noise bed, (2, n) at 48 kHz: audio whose loudness lives
    in peaks, which the true-peak limiter must hold down to reach a loud target."""
    rng = np.random.default_rng(seed)
    x = 0.003 * rng.standard_normal(int(SR * seconds))
    k = np.arange(int(0.03 * SR)) / SR
    hit = np.sin(2 * np.pi * 180 * k) * np.exp(-k * 120)
    for t in np.arange(0.25, seconds - 0.1, every_s):
        i = int(t * SR)
        x[i : i + len(hit)] += rng.uniform(0.3, 1.0) * hit
    return np.stack([x, 0.9 * x]).astype(np.float32)


@pytest.mark.parametrize("every_s", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_mastering_lands_within_0_2_lu_of_the_target(every_s, target):
    """master() stopped after 4 plain steps of the remaining error, which creep up on the target
    where the limiter works hard: knocks every 0.25 s ended at -18.5 LUFS for -16."""
    import warnings

    from v2a_core.render.master import master

    x = _knocks(every_s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no LoudnessWarning: the target is reachable
        result = master(x, target_lufs=target)
    y = x * result.gain
    assert abs(pyloudnorm.Meter(SR).integrated_loudness(y.T.astype(np.float64)) - target) <= 0.2
    assert result.loudness_lufs == pytest.approx(target, abs=0.2)
    assert _true_peak_dbtp(y) <= -1.0 + 0.05


def test_a_target_the_ceiling_makes_unreachable_is_a_warning():
    from v2a_core.render.master import LoudnessWarning, master

    x = np.zeros((2, SR * 5), np.float32)
    x[:, :: SR // 2] = 0.5  # lone clicks: all peak, no loudness
    with pytest.warns(LoudnessWarning, match=r"not -16 LUFS: under the -1 dBTP true-peak ceiling"):
        result = master(x, target_lufs=-16.0)
    assert result.loudness_lufs < -16.2
    assert _true_peak_dbtp(x * result.gain) <= -1.0 + 0.05


def test_the_real_bounce_clip_meets_a_minus_23_lufs_target(video_dir):
    """The sweep's case: -23 LUFS on this clip ended 0.45-0.58 LU low (-16 and -30 were fine)."""
    from v2a_core.pipeline import generate_soundtrack

    meter = pyloudnorm.Meter(SR)
    for target in (-16.0, -23.0, -30.0):
        track = generate_soundtrack(video_dir / "synth_bounce_24fps_audio.mp4", prompt="", seed=3, loudness_lufs=target)
        measured = meter.integrated_loudness(track.mix.samples.T.astype(np.float64))
        assert abs(measured - target) <= 0.2, (target, measured)


def test_generate_shows_a_missed_loudness_target_as_one_warning_line(tmp_path, monkeypatch, capsys):
    import warnings

    import v2a_core.pipeline
    from foleyseal.cli import main
    from provenance.core.errors import InputError
    from v2a_core.render.master import LoudnessWarning

    def generate(*args, **kwargs):
        warnings.warn(LoudnessWarning("mastered to -20.0 LUFS, not -12 LUFS"), stacklevel=2)
        raise InputError("stopped here")

    monkeypatch.setattr(v2a_core.pipeline, "generate", generate)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path))
    with pytest.raises(SystemExit):
        main(["generate", str(tmp_path / "v.mp4"), "--json"])
    err = capsys.readouterr().err
    assert "warning: mastered to -20.0 LUFS, not -12 LUFS\n" in err and "LoudnessWarning" not in err, err


# ------------------------------------------------------------ the negative prompt inside a cue
def _voices_played(monkeypatch, categories: list[str], excluded: set[str]) -> set[str]:
    """The voices render_music synthesised (notes, drums and the choir sample) for ``categories``."""
    from v2a_core.render import music

    played: set[str] = set()
    note, drum, sample = music._note, music._drum, music.load_sample

    def spy_note(voice, *a):
        played.add(voice)
        return note(voice, *a)

    def spy_drum(name, rng):
        played.add("drums")
        return drum(name, rng)

    def spy_sample(name):
        played.add(name)
        return sample(name)

    monkeypatch.setattr(music, "_note", spy_note)
    monkeypatch.setattr(music, "_drum", spy_drum)
    monkeypatch.setattr(music, "load_sample", spy_sample)
    out = music.render_music(categories, 6.0, 100.0, np.random.default_rng(0), excluded=frozenset(excluded))
    assert out.shape == (2, samples(6.0))
    return played


@pytest.mark.parametrize(
    "mood, negative, gone, kept",
    [("music.calm", "piano", {"piano"}, {"pad"}),
     ("music.happy", "drums", {"drums"}, {"guitar", "bass"}),
     ("music.happy", "percussion", {"drums"}, {"guitar", "bass"}),
     ("music.epic", "choir", {"choir", "ambi_choir"}, {"strings", "bass", "drums"}),
     ("music.epic", "voices", {"choir", "ambi_choir"}, {"strings", "bass", "drums"}),
     ("music.dreamy", "bells", {"bells"}, {"pad"})],
)
def test_an_excluded_instrument_is_not_played_by_a_mood(monkeypatch, mood, negative, gone, kept):
    from v2a_core.plan import excluded_categories

    everything = _voices_played(monkeypatch, [mood], set())
    assert gone - {"ambi_choir"} <= everything  # the bank's choir sample is optional
    played = _voices_played(monkeypatch, [mood], set(excluded_categories(negative)))
    assert not played & gone and kept <= played


def test_an_excluded_part_of_a_bed_is_not_rendered(monkeypatch):
    from v2a_core.render import beds

    calls: list[str] = []
    chirp = beds._chirp
    monkeypatch.setattr(beds, "_chirp", lambda rg: calls.append("chirp") or chirp(rg))
    rng = np.random.default_rng
    with_birds = beds.render_bed("forest", samples(8.0), rng(1))
    assert calls  # the forest's birds sing ...
    calls.clear()
    without = beds.render_bed("forest", samples(8.0), rng(1), excluded=frozenset({"animal.birds"}))
    assert not calls and not np.array_equal(with_birds, without)  # ... and are not rendered at all when excluded


@pytest.mark.parametrize("renderer", ["room", "forest", "night", "cave", "stream", "underwater", "traffic"])
def test_every_declared_part_is_honoured_and_every_honoured_part_declared(renderer):
    from v2a_core.render import beds

    asked: set[str] = set()

    class Recording(beds.Stream):
        def allows(self, category: str) -> bool:
            asked.add(category)
            return super().allows(category)

    n = samples(3.0)
    stream = Recording(np.random.default_rng(0), n)
    stream.begin(n)
    beds.RECIPES[renderer](stream)
    assert asked == set(beds.PARTS[renderer])  # the recipe consults exactly what PARTS says
    for part in beds.PARTS[renderer]:
        a = beds.render_bed(renderer, n, np.random.default_rng(0))
        b = beds.render_bed(renderer, n, np.random.default_rng(0), excluded=frozenset({part}))
        assert not np.allclose(a, b), part


def test_stems_lose_excluded_parts_and_the_cue_sheet_says_so(analysis):
    calm = render(plan(analysis, "calm music", seed=1))
    no_piano = render(plan(analysis, "calm music", "piano", seed=1))
    assert not np.array_equal(calm.stems["music"].samples, no_piano.stems["music"].samples)
    assert no_piano.cue_sheet.notes == ("music.calm: played without piano (excluded)",)
    assert "notes" in no_piano.cue_sheet.to_dict() and calm.cue_sheet.notes == ()
    forest = render(plan(analysis, "forest", seed=1))
    quiet = render(plan(analysis, "forest", "birds", seed=1))
    assert not np.array_equal(forest.stems["ambience"].samples, quiet.stems["ambience"].samples)
    assert "ambience.forest: played without animal.birds (excluded)" in quiet.cue_sheet.notes
    splash = render(plan(analysis, "splash", "bubbles", seed=1))
    assert "water.splash: played without water.bubbles (excluded)" in splash.cue_sheet.notes


def test_a_mood_with_every_voice_excluded_falls_back_or_has_no_music(analysis):
    fallback = render(plan(analysis, "calm music", "pad, piano", seed=1))
    assert np.any(fallback.stems["music"].samples)
    assert fallback.cue_sheet.notes == ("music.calm: its voices (pad, piano) are excluded; played on strings instead",)
    none = render(plan(analysis, "calm music", "instruments", seed=1))
    assert "music" not in none.stems  # no silent stem
    assert none.cue_sheet.notes == ("music.calm: no music; every voice it could be played on is excluded (pad, piano)",)
