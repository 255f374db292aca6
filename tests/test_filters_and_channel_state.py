"""Static filters and frequency-selective damage: balanced chips and the channel-state reading."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from benchmarks.attacks.registry import get_attack
from provenance.core import io
from provenance.watermark import WatermarkKey, detect, embed
from provenance.watermark.layout import DEFAULT_PARAMS, Layout

KEY = WatermarkKey(bytes(range(32)))
PAYLOAD = "0123456789abcdef"
detect_module = sys.modules["provenance.watermark.detect"]


def test_chips_cancel_a_constant_on_every_band_pair():
    p = DEFAULT_PARAMS
    chips = Layout.from_key(KEY).chips.reshape(p.block_runs, p.groups_per_run, p.run_slots, p.group_band_pairs)
    assert np.all(chips.sum(axis=2) == 0)
    # one sign change per run: + + - - or - - + +
    assert np.all(chips[:, :, 0] == chips[:, :, 1]) and np.all(chips[:, :, 2] == -chips[:, :, 0])
    other = Layout.from_key(WatermarkKey(bytes(range(1, 33)))).chips
    assert 0.3 < np.mean(other.reshape(chips.shape) != chips) < 0.7  # keyed


@pytest.fixture(scope="module")
def guitar(corpus_dir):
    audio = io.read_audio(corpus_dir / "music_acoustic_guitar_phrases.flac")
    return audio, embed(audio, KEY, PAYLOAD)


def test_telephone_band_keeps_the_payload(guitar):
    # A 300-3400 Hz band limit shifts the level difference of the band pairs at its edges by
    # several dB; with chips that did not cancel constants this clip lost its payload.
    _, marked = guitar
    phone = get_attack("bandpass_300_3400").run(marked, np.random.default_rng(0)).audio
    det = detect(phone, KEY, search=False)
    assert det.found and det.payload == PAYLOAD


def test_upper_bands_without_the_mark_are_discounted(guitar, monkeypatch):
    # The mark is kept only below 2 kHz: the upper bands still hold loud audio, which the
    # tile reliabilities trust, but no mark (as after a codec that resynthesises them).
    audio, marked = guitar
    sos = butter(8, 2000.0, "lowpass", fs=audio.sample_rate, output="sos")
    mark_below_2k = sosfiltfilt(sos, marked.samples - audio.samples, axis=-1)
    damaged = audio.with_samples((audio.samples + mark_below_2k).astype(np.float32))
    det = detect(damaged, KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    # without the channel-state reading the same file is found but not decoded
    monkeypatch.setattr(detect_module, "_channel_state_soft", lambda g, expected: np.zeros_like(g.r))
    plain = detect(damaged, KEY, search=False)
    assert plain.found and plain.payload is None


def test_channel_state_reading_never_invents_a_payload_for_another_key(guitar):
    _, marked = guitar
    for i in range(3):
        det = detect(marked, WatermarkKey(bytes([i + 100]) * 32), search=False)
        assert not det.found and det.payload is None
