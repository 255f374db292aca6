"""The detector's own search over speed changes, time stretches and pitch shifts, on real clips
edited with real tools (polyphase resampling, Rubber Band through pedalboard)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.attacks.registry import get_attack
from provenance.core import io
from provenance.core.audio import Audio
from provenance.watermark import WatermarkKey, detect, embed
from provenance.watermark.detect import DEFAULT_THRESHOLD
from provenance.watermark.search import search_hypotheses
from provenance.watermark.layout import DEFAULT_PARAMS
from provenance.watermark.model import band_matrix
from provenance.watermark.warp import Warp, scaled_band_matrix, warp_time

KEY = WatermarkKey(bytes(range(32)))
OTHER_KEY = WatermarkKey(bytes(range(100, 132)))
PAYLOAD = "0123456789abcdef"


@pytest.fixture(scope="module")
def music(corpus_dir) -> Audio:
    return io.read_audio(corpus_dir / "music_electronic_48k_stereo.flac", start_s=0.0, duration_s=10.0)


@pytest.fixture(scope="module")
def marked(music) -> Audio:
    return embed(music, KEY, PAYLOAD)


def edited(audio: Audio, attack: str) -> Audio:
    """``audio`` after a registered benchmark attack (speed change by resampling; time stretch and
    pitch shift by Rubber Band through pedalboard)."""
    return get_attack(attack).run(audio, np.random.default_rng(0)).audio


def test_unedited_files_are_found_without_the_search(marked):
    det = detect(marked, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.speed == 1.0 and det.pitch_semitones == 0.0
    # the two reliability readings of the unedited timeline, not the search's union bound
    assert det.details["hypotheses"] == 2 and det.details["noise_floor"] is True


@pytest.mark.parametrize("percent", [5, -10])
def test_speed_changes_are_found_and_measured(marked, percent):
    faster = edited(marked, f"speed_{percent:+d}%")
    assert not detect(faster, KEY, search=False).found
    det = detect(faster, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.speed == pytest.approx(1 + percent / 100, abs=0.003)
    assert det.pitch_semitones == pytest.approx(12 * np.log2(1 + percent / 100), abs=0.15)
    # the union bound over every warp the search could have ended on
    assert det.details["hypotheses"] == search_hypotheses() > 1000
    assert det.p_value < DEFAULT_THRESHOLD
    (seg,) = det.segments
    assert seg.start_s < 0.5 and seg.end_s > faster.duration_s - 0.5


def test_a_long_sped_up_file_is_marked_beyond_the_searched_window(corpus_dir):
    # 50 s of three different recordings: longer than the 30 s window the search aligns
    from provenance.watermark.model import resample

    names = ["music_orchestral_44k_stereo.flac", "music_acoustic_guitar_phrases.flac",
             "music_electronic_48k_stereo.flac"]
    pieces = []
    for name in names:
        clip = io.read_audio(corpus_dir / name, duration_s=17.0)
        pieces.append(resample(clip.mono(), clip.sample_rate, 16_000))
    long = Audio(np.concatenate(pieces)[None], 16_000)
    faster = edited(embed(long, KEY, PAYLOAD), "speed_+5%")
    det = detect(faster, KEY)
    assert det.found and det.payload == PAYLOAD and det.speed == pytest.approx(1.05, abs=0.003)
    covered = sum(seg.end_s - seg.start_s for seg in det.segments)
    assert covered > 0.8 * faster.duration_s
    assert det.segments[0].start_s < 3.0 and det.segments[-1].end_s > faster.duration_s - 3.0


def test_time_stretch_is_found(marked):
    det = detect(edited(marked, "stretch_-5%"), KEY)  # 5 % slower, same pitch
    assert det.found and det.payload == PAYLOAD
    assert det.speed == pytest.approx(0.95, abs=0.005)
    assert abs(det.pitch_semitones) < 0.15


def test_pitch_shift_is_found(marked):
    det = detect(edited(marked, "pitch_-2st"), KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.pitch_semitones == pytest.approx(-2.0, abs=0.15)
    assert det.speed == pytest.approx(1.0, abs=0.005)


def test_pitch_shift_that_drifts_in_time_is_found(corpus_dir):
    # Rubber Band shifting this 8 kHz guitar clip by +1 semitone also stretches it by about
    # 0.7 %, beyond the fine steps around an unstretched pitch shift (+-0.3 %): the coarse
    # search tries each pitch at several time scales.
    clip = io.read_audio(corpus_dir / "music_acoustic_8k_telephone.flac")
    shifted = edited(embed(clip, KEY, PAYLOAD), "pitch_+1st")
    det = detect(shifted, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.pitch_semitones == pytest.approx(1.0, abs=0.15)
    assert det.speed < 0.996


def _generated(video_dir, name: str, prompt: str, seed: int) -> Audio:
    """The generator's soundtrack for one of ``../shared/video``, marked."""
    from v2a_core.pipeline import generate_soundtrack

    return embed(generate_soundtrack(video_dir / name, prompt=prompt, seed=seed).mix, KEY, PAYLOAD)


def test_steady_content_is_searched_without_the_noise_floor_discount(video_dir):
    # A generated soundtrack is a steady bed, whose quietest tiles are content: the search
    # with the noise-floor discount ranks the warps by a handful of tiles and ends on a wrong
    # one (here time scale 0.935 at +1.2 semitones); the search with the capacity alone finds
    # the stretch.
    stretched = edited(_generated(video_dir, "synth_flash_25fps_noaudio.mp4", "", 0), "stretch_+5%")
    det = detect(stretched, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.details["search_noise_floor"] is False
    assert det.details["hypotheses"] == search_hypotheses()
    assert det.speed == pytest.approx(1.05, abs=0.005) and abs(det.pitch_semitones) < 0.15


def test_a_mark_found_without_its_payload_is_searched(video_dir):
    # One semitone moves the bands by 6 %: enough of this soundtrack's mark stays in place for
    # the unedited timeline to find it, not to decode it. The search decodes it at the shift.
    shifted = edited(_generated(video_dir, "real_movie_hello.mp4", "rain, thunder, tense music", 1), "pitch_+1st")
    unedited = detect(shifted, KEY, search=False)
    assert unedited.found and unedited.payload is None
    det = detect(shifted, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.pitch_semitones == pytest.approx(1.0, abs=0.15)
    assert det.details["unedited_p_value"] == unedited.p_value


def test_search_finds_nothing_without_the_mark_or_with_another_key(music, marked):
    for audio, key in ((edited(music, "speed_+5%"), KEY), (edited(marked, "speed_+5%"), OTHER_KEY)):
        det = detect(audio, key)
        assert not det.found and det.payload is None and det.segments == ()
        assert det.p_value > 1e-3


def test_scaled_bands_and_warped_time():
    p = DEFAULT_PARAMS
    # at scale 1 every bin inside the range belongs wholly to one band, as in the embedder,
    # except bins straddling an edge, which are shared; each band keeps its total width
    m1 = scaled_band_matrix(p, 1.0)
    widths_hz = m1.sum(axis=0) * p.analysis_rate_hz / p.frame_len
    assert np.allclose(widths_hz, np.diff(p.band_edges_hz), rtol=1e-4)
    assert np.abs(m1 - band_matrix(p)).sum(axis=0).max() <= 2.0
    # a band measured at scale 2**(1/12) is the band one semitone up
    up = scaled_band_matrix(p, 2 ** (1 / 12)).sum(axis=0) * p.analysis_rate_hz / p.frame_len
    assert np.allclose(up, np.diff(p.band_edges_hz) * 2 ** (1 / 12), rtol=1e-4)
    # reading a ramp at 0.9 x its frame index
    ramp = np.arange(100, dtype=np.float32)[:, None].repeat(3, axis=1)
    w = warp_time(ramp, 0.9)
    assert w.shape == (111, 3)
    assert np.allclose(w[:, 0], 0.9 * np.arange(111), atol=1e-4)
    assert Warp(1 / 1.05, 1.05).speed == pytest.approx(1.05)
    assert Warp(1.0, 2 ** (2 / 12)).pitch_semitones == pytest.approx(2.0)
