"""``detect_file`` on files longer than one analysis window: read window by window with bounded
memory, the windows' evidence joined on the file's timeline (windows shrunk here to keep it fast)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

import provenance.watermark.files as files
from provenance.core import io
from provenance.core.audio import Audio
from provenance.watermark import WatermarkKey, embed
from provenance.watermark.files import detect_file

KEY = WatermarkKey(bytes(range(32)))
PAYLOAD = "0123456789abcdef"
SR = 16_000


def music_like(seconds: float, seed: int = 5) -> Audio:
    """Deterministic mono material with a changing spectrum: red noise, a chord, bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    bed = lfilter([1.0], [1.0, -0.97], rng.standard_normal(n))
    bed = 0.2 * bed / np.abs(bed).max()
    chord = sum(0.03 * np.sin(2 * np.pi * f * t + 2 * np.sin(0.3 * t)) for f in (220.0, 330.0, 440.0, 587.0))
    bursts = (np.sin(2 * np.pi * 1.7 * t) > 0.9) * rng.standard_normal(n) * 0.1
    return Audio(np.clip(bed + chord + bursts, -0.9, 0.9).astype(np.float32)[np.newaxis, :], SR)


@pytest.fixture
def small_windows(monkeypatch):
    """20 s windows overlapping by 5 s, and a record of the signal lengths the detector was given."""
    monkeypatch.setattr(files, "LONG_FILE_WINDOW_S", 20.0)
    monkeypatch.setattr(files, "LONG_FILE_OVERLAP_S", 5.0)
    lengths: list[int] = []
    real = files.detect_features

    def spy(x16, *args, **kwargs):
        lengths.append(x16.shape[-1])
        return real(x16, *args, **kwargs)

    monkeypatch.setattr(files, "detect_features", spy)
    return lengths


def test_a_mark_in_the_middle_of_a_long_file_is_found_and_placed(tmp_path, small_windows):
    host = music_like(60.0)
    marked = embed(host, KEY, PAYLOAD).samples
    x = host.samples.copy()
    a, b = 25 * SR, 45 * SR  # marked from 25 s to 45 s: across three of the four windows
    x[:, a:b] = marked[:, a:b]
    path = tmp_path / "long.flac"
    io.write_audio(path, host.with_samples(x))

    det = detect_file(path, KEY)
    assert small_windows == [20 * SR] * 4  # 0-20, 15-35, 30-50, and the last 20 s: never the whole file
    assert det.found and det.payload == PAYLOAD
    assert det.details["windows"] == 4 and det.p_value <= det.threshold
    assert abs(det.duration_s - 60.0) < 0.01
    (seg,) = det.segments  # the windows' spans joined on the file's timeline
    assert abs(seg.start_s - 25.0) <= 0.5 and abs(seg.end_s - 45.0) <= 0.5, det.segments
    assert seg.payload == PAYLOAD


def test_an_unmarked_long_file_is_not_found_and_its_p_value_counts_every_window(tmp_path, small_windows,
                                                                               monkeypatch):
    path = tmp_path / "plain.wav"
    io.write_audio(path, music_like(47.0, seed=9))
    ps: list[float] = []
    spy = files.detect_features

    def keep_p(*args, **kwargs):
        det = spy(*args, **kwargs)
        ps.append(det.p_value)
        return det

    monkeypatch.setattr(files, "detect_features", keep_p)
    det = detect_file(path, KEY)
    assert small_windows == [20 * SR] * 3  # 0-20, 15-35, 27-47
    assert not det.found and det.payload is None and det.segments == ()
    assert det.p_value == pytest.approx(min(1.0, 3 * min(ps)))


def test_a_file_of_one_window_is_read_as_one_piece(tmp_path, small_windows):
    """Up to the window length nothing changes: the file is the detector's one signal."""
    host = music_like(12.0)
    path = tmp_path / "short.flac"
    io.write_audio(path, embed(host, KEY, PAYLOAD))
    det = detect_file(path, KEY)
    assert small_windows == [12 * SR]
    assert det.found and det.payload == PAYLOAD and "windows" not in det.details
