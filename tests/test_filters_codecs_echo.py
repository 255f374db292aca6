"""Static filters, frequency-selective damage and echo: balanced chips, the channel-state
reading and echo cancellation."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from benchmarks.attacks.registry import get_attack
from provenance.core import io
from provenance.watermark import WatermarkKey, confirm, detect, embed
from provenance.watermark import decode as decode_module
from provenance.watermark.echo import Echo, cancel_echo, find_echo
from provenance.watermark.layout import DEFAULT_PARAMS, Layout
from provenance.watermark.model import resample

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
    # The mark is kept only below 900 Hz: the upper bands still hold loud audio, which the
    # tile reliabilities trust, but no mark (as after a codec that resynthesises them). (Up to
    # a cut at 1.1 kHz the alternating block placement alone is enough for this clip.)
    audio, marked = guitar
    sos = butter(8, 900.0, "lowpass", fs=audio.sample_rate, output="sos")
    mark_below_900 = sosfiltfilt(sos, marked.samples - audio.samples, axis=-1)
    damaged = audio.with_samples((audio.samples + mark_below_900).astype(np.float32))
    det = detect(damaged, KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    # without the channel-state reading the same file is found but not decoded
    monkeypatch.setattr(decode_module, "channel_state_soft", lambda g, expected: np.zeros_like(g.r))
    plain = detect(damaged, KEY, search=False)
    assert plain.found and plain.payload is None


def test_block_phases_place_each_coded_bit_in_two_regions():
    p = DEFAULT_PARAMS
    role = Layout.from_key(KEY).role
    assert role.shape == (p.block_phases, p.block_runs, p.groups_per_run) and p.block_phases == 2
    assert np.all((role < 0) == (role[0] < 0))  # pilots stay put
    assert np.all((role[0] < 0).sum(axis=0) == p.n_pilots // p.groups_per_run)  # evenly per region
    for phase in role:
        assert sorted(phase[phase >= 0]) == list(range(p.coded_bits))
    # (run, region) of coded bits 0, 1, 2, ... in each phase
    where = [np.argwhere(phase >= 0)[np.argsort(phase[phase >= 0])] for phase in role]
    assert np.all(where[1][:, 1] == (where[0][:, 1] + 2) % p.groups_per_run)
    assert np.mean(where[0][:, 0] == where[1][:, 0]) < 0.1  # and at another (keyed) time


def test_repetitions_in_other_regions_carry_what_a_band_limit_erases(guitar, monkeypatch):
    # Only the mark below 1.45 kHz is kept (the two lower of the four frequency regions). The
    # alternate blocks put every coded bit into one of those regions at least every other block.
    audio, _ = guitar

    def damaged_detection():
        marked = embed(audio, KEY, PAYLOAD)
        sos = butter(8, 1450.0, "lowpass", fs=audio.sample_rate, output="sos")
        low = sosfiltfilt(sos, marked.samples - audio.samples, axis=-1)
        return detect(audio.with_samples((audio.samples + low).astype(np.float32)), KEY, search=False)

    det = damaged_detection()
    assert det.found and det.payload == PAYLOAD
    # With the same placement in every block, half of the coded bits sit in the erased
    # regions in every repetition: found, but not decoded.
    from_key = Layout.from_key.__func__

    def one_placement(cls, key, params=DEFAULT_PARAMS):
        layout = from_key(cls, key, params)
        return dataclasses.replace(layout, role=np.repeat(layout.role[:1], params.block_phases, axis=0))

    monkeypatch.setattr(Layout, "from_key", classmethod(one_placement))
    det = damaged_detection()
    assert det.found and det.payload is None


def test_an_excerpt_starting_in_an_odd_block_decodes(guitar):
    _, marked = guitar
    rate = marked.sample_rate
    excerpt = marked.with_samples(marked.samples[:, int(5.0 * rate) : int(14.0 * rate)])
    det = detect(excerpt, KEY, search=False)
    assert det.found and det.payload == PAYLOAD


def test_channel_state_reading_never_invents_a_payload_for_another_key(guitar):
    _, marked = guitar
    for i in range(3):
        det = detect(marked, WatermarkKey(bytes([i + 100]) * 32), search=False)
        assert not det.found and det.payload is None


def test_an_echo_is_found_and_undone(guitar):
    audio, _ = guitar
    x16 = resample(audio.mono(), audio.sample_rate, 16_000)
    assert find_echo(x16) is None  # the recording itself has no dominant echo
    echoed = get_attack("echo_100ms").run(audio, np.random.default_rng(0)).audio  # -6 dB, 100 ms
    echo = find_echo(resample(echoed.mono(), echoed.sample_rate, 16_000))
    assert echo is not None
    assert echo.delay_s == pytest.approx(0.1, abs=0.001)
    assert 0.25 < echo.gain < 0.6
    # the inverse filter is exact for the echo it models
    d, g = 1_600, 0.5
    y = x16.astype(np.float64).copy()
    y[d:] += g * x16[:-d]
    undone = cancel_echo(y, Echo(delay=d, gain=g, peak_z=100.0, rate_hz=16_000))
    assert np.max(np.abs(undone - x16)) < 1e-5


def test_payload_survives_an_echo(guitar, monkeypatch):
    _, marked = guitar
    echoed = get_attack("echo_100ms").run(marked, np.random.default_rng(0)).audio
    det = detect(echoed, KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    assert det.details["echo_cancelled"] is True and det.details["echo_delay_s"] == pytest.approx(0.1, abs=0.001)
    assert not detect(echoed, WatermarkKey(bytes(range(1, 33))), search=False).found
    # read only as it is, the echo mixes each slot with the mark of five slots earlier
    monkeypatch.setattr(detect_module, "find_echo", lambda x16, params: None)
    assert detect(echoed, KEY, search=False).payload is None


def test_a_weak_presence_score_is_confirmed_by_its_decoded_payload(corpus_dir, monkeypatch):
    """Opus at 16 kbps leaves this clip's presence p-value (with the noise-floor discount, the
    first reading) above the threshold, while its payload still decodes: the decode confirms the
    mark (p-value times the CRC bound, over the budget share). Without the confirmation that
    reading does not find the mark, and the report falls to the reading without the discount."""
    key, payload = WatermarkKey(bytes([40]) * 32), "0fedcba987654321"
    marked = embed(io.read_audio(corpus_dir / "ambience_fire_crackle.wav"), key, payload)
    coded = io.encode_decode(marked, "opus", 16)
    det = detect(coded, key, search=False)
    presence = det.details["presence_p_value"]
    assert detect_module.DEFAULT_THRESHOLD < presence <= confirm.CONFIRM_P_VALUE
    assert det.found and det.payload == payload and det.segments and det.details["noise_floor"] is True
    assert det.p_value == pytest.approx(
        presence * confirm.CRC_PASS_BOUND / confirm.CONFIRM_SHARE)
    for module in (confirm, detect_module):  # the route, and where the detector opens it
        monkeypatch.setattr(module, "CONFIRM_P_VALUE", 0.0)
    plain = detect(coded, key, search=False)
    assert plain.details["noise_floor"] is False and plain.p_value != det.p_value


@pytest.mark.parametrize("split", [True, False])
def test_payload_confirmation_keeps_p_values_valid(split):
    """Without the mark a CRC passes with probability CRC_PASS_BOUND whatever the presence
    p-value is; the combined p-value must still satisfy P(p <= x) <= x. Taking the product
    without splitting the budget (as a check that this test can fail) roughly doubles it."""
    q = confirm.CRC_PASS_BOUND
    rng = np.random.default_rng(7)
    n = 2_000_000
    # presence p-values log-uniform on [1e-10, 1], reweighted to the uniform law
    p = 10.0 ** rng.uniform(-10.0, 0.0, n)
    weight = p * np.log(1e10)
    decoded = rng.random(n) < q
    if split:
        combined = np.array([confirm.confirmed_p_value(float(a), bool(d)) for a, d in zip(p, decoded)])
    else:
        combined = np.where(decoded, p * q, p)
    rates = [float(np.mean(weight * (combined <= x))) / x for x in (1e-7, 1e-6, 1e-5, 1e-4)]
    if split:
        assert max(rates) <= 1.03, rates
    else:
        assert min(rates) > 1.5, rates


def test_steady_content_is_read_without_the_noise_floor_discount():
    """A generated soundtrack for the bundled example video is steady (an ambience bed under
    the effects), so its quietest tiles are content, not added noise. The first reading discounts
    them as noise floor and misses the payload after MP3 at 32 kbps; the second, without the
    discount, decodes it."""
    from pathlib import Path

    from v2a_core.pipeline import generate_soundtrack

    example = Path(__file__).resolve().parents[1] / "examples" / "ball_bounce.mp4"
    soundtrack = generate_soundtrack(example, seed=0).mix
    marked = embed(soundtrack, KEY, PAYLOAD)
    det = detect(io.encode_decode(marked, "mp3", 32), KEY, search=False)
    assert det.found and det.payload == PAYLOAD
    assert det.details["noise_floor"] is False and det.details["hypotheses"] == 2
    # the first reading is kept whenever it decodes: here, the unattacked file
    clean = detect(marked, KEY, search=False)
    assert clean.payload == PAYLOAD and clean.details["noise_floor"] is True
