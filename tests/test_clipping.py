"""Clipped audio: the detector erases clipped tiles instead of reading them as errors."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.attacks.registry import get_attack
from provenance.core import io
from provenance.watermark import WatermarkKey, detect, embed
from provenance.watermark.clipping import (
    CLIP_MIN_FRACTION,
    clipped_fraction,
    clipped_samples,
)
from provenance.watermark.detect import detect_features
from provenance.watermark.files import detect_file
from provenance.watermark.model import resample

KEY = WatermarkKey(bytes(range(32)))
PAYLOAD = "0123456789abcdef"


def test_runs_of_clipped_samples_are_flagged_and_natural_peaks_are_not():
    rate = 48_000
    t = np.arange(rate) / rate
    tone = 0.9 * np.sin(2 * np.pi * 440 * t)
    clipped = np.clip(4 * tone, -1.0, 1.0)[None].astype(np.float32)
    flags = clipped_samples(clipped)
    assert np.array_equal(flags, np.abs(clipped[0]) == 1.0)
    # quiet repeats and digital silence are not clipping
    assert not clipped_samples(np.zeros((2, rate), np.float32)).any()
    assert not clipped_samples(np.full((1, rate), 0.05, np.float32)).any()
    # either channel counts
    stereo = np.stack([tone.astype(np.float32), clipped[0]])
    assert np.array_equal(clipped_samples(stereo), flags)


@pytest.mark.parametrize("name", ["music_ambient_piano_choir.flac", "ambience_lava_bubbling.flac"])
def test_unclipped_recordings_stay_below_the_clipping_share(corpus_dir, name):
    # real recordings repeat a sample value three times now and then (integer storage of
    # quiet rumble), far less often than clipping does
    audio = io.read_audio(corpus_dir / name)
    share = clipped_samples(audio.samples).mean()
    assert 0 < share < CLIP_MIN_FRACTION
    pushed = get_attack("volume_x4_clip").run(audio, np.random.default_rng(0)).audio
    assert clipped_samples(pushed.samples).mean() > CLIP_MIN_FRACTION


def test_clipped_share_on_the_analysis_timeline():
    flags = np.zeros(48_000, dtype=bool)
    flags[3_000:6_000] = True  # 62.5 ms at 48 kHz
    share = clipped_fraction(flags, 48_000, 16_000, 16_000)
    assert share.shape == (16_000,)
    assert share[1_000:2_000].min() == pytest.approx(1.0)
    assert share[:999].max() == 0.0 and share[2_001:].max() == 0.0
    assert share.sum() == pytest.approx(1_000.0)


@pytest.fixture(scope="module")
def clipped_speech(corpus_dir):
    # 8 kHz telephone speech: the one corpus clip that, pushed 4x into clipping, decodes only
    # with its clipped tiles erased (under this key; the alternating block placement and the
    # channel-state reading rescue the others)
    speech = io.read_audio(corpus_dir / "speech_female_en_8k_mono.wav")
    marked = embed(speech, KEY, PAYLOAD)
    return get_attack("volume_x4_clip").run(marked, np.random.default_rng(0)).audio


def test_payload_survives_clipping_because_clipped_tiles_are_erased(clipped_speech):
    det = detect(clipped_speech, KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.details["clipping_erased"] is True
    # read without erasures, the clipped tiles are errors the code cannot correct
    x16 = resample(clipped_speech.mono(), clipped_speech.sample_rate, 16_000)
    plain = detect_features(x16, KEY, duration_s=clipped_speech.duration_s,
                            source_rate_hz=clipped_speech.sample_rate, search=False)
    assert plain.payload is None
    assert not detect(clipped_speech, WatermarkKey(bytes(range(1, 33)))).found


def test_files_are_read_with_the_same_erasures(clipped_speech, tmp_path):
    path = tmp_path / "clipped.flac"
    io.write_audio(path, clipped_speech, subtype="PCM_16")
    det = detect_file(path, KEY)
    assert det.found and det.payload == PAYLOAD and det.details["clipping_erased"] is True
