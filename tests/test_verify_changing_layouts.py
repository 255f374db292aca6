"""Verification of streams whose channel layout changes mid-way.

Such streams are real (MP3s joined by a cutter, broadcast AAC switching between stereo and 5.1)
and hostile: one corrupt AAC frame can decode with 24 channels. Each part must be read, and a
frame with more than 8 channels once crashed the verifier (PyAV reads past its plane table), so
the verifier runs in a child process here: a crash is a failed test, not a dead test run.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from provenance.core.io import read_audio
from tests import _verify_fixtures
from tests._verify_fixtures import SR, VerifyEnv

verify_env = _verify_fixtures.verify_env

_LAYOUTS = {1: "mono", 2: "stereo", 8: "7.1"}


def _encoded(samples: np.ndarray, rate: int, container: str, codec: str, bitrate: int) -> bytes:
    """``samples`` (channels, frames) float32 encoded as a bare ``container`` stream (ADTS or MP3
    frames, which may be concatenated byte for byte, as stream cutters do)."""
    layout = _LAYOUTS[samples.shape[0]]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.bit_rate = bitrate
        # Packed frames in, the codec's own format out: PyAV cannot build planar 8-channel frames.
        to_codec = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate,
                                     frame_size=stream.codec_context.frame_size or 1152)
        for start in range(0, samples.shape[1], 4096):
            block = np.ascontiguousarray(samples[:, start:start + 4096].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
            frame.sample_rate, frame.pts = rate, start
            for converted in to_codec.resample(frame):
                out.mux(stream.encode(converted))
        for converted in to_codec.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _verify_in_child(env: VerifyEnv, path: Path) -> dict:
    code = "import sys; from foleyseal.cli import main; main(sys.argv[1:])"
    p = subprocess.run([sys.executable, "-c", code, "verify", "--json", str(path)], capture_output=True, text=True,
                       env=env.env(), timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert p.returncode >= 0, f"the verifier died with signal {-p.returncode}: {p.stderr[-2000:]}"
    return json.loads(p.stdout)


def _covered_s(report: dict) -> float:
    return sum(seg["end_s"] - seg["start_s"] for wm in report["watermark"] for seg in wm["segments"])


def _analysed_s(report: dict) -> float:
    (wm,) = report["watermark"]
    return wm["analysed_s"]


@pytest.fixture(scope="module")
def marked(verify_env: VerifyEnv) -> np.ndarray:
    audio = read_audio(verify_env.files["marked_wav"])
    assert audio.sample_rate == SR and audio.samples.shape[0] == 2
    return audio.samples


def test_aac_that_switches_from_mono_to_eight_channels_is_read_through(
    verify_env: VerifyEnv, marked: np.ndarray, tmp_path: Path
) -> None:
    half = marked.shape[1] // 2
    mono = marked[:, :half].mean(axis=0, keepdims=True)
    # The second half in 7.1: the marked stereo pair on the front, quieter copies elsewhere.
    eight = np.zeros((8, marked.shape[1] - half), np.float32)
    eight[0:2] = marked[:, half:]
    eight[4:8] = 0.25 * marked[:, half:].repeat(2, axis=0)
    path = tmp_path / "mono_then_7.1.aac"
    path.write_bytes(_encoded(mono, SR, "adts", "aac", 96_000) + _encoded(eight, SR, "adts", "aac", 384_000))

    report = _verify_in_child(verify_env, path)
    assert report["verdict"] == "credentials_recovered_by_watermark", report["notes"]
    assert [p for wm in report["watermark"] for p in wm["payloads"]] == [verify_env.payload]
    # Both halves are read (each codec stream adds its priming delay, about 1024 samples), and
    # the half after the join, shifted by that delay, is named by the payload of the first.
    assert _analysed_s(report) == pytest.approx(marked.shape[1] / SR, abs=0.15), report["watermark"]
    assert _covered_s(report) >= marked.shape[1] / SR - 1.0, report["watermark"]


def test_mp3_joined_from_stereo_and_mono_parts_is_read_through(
    verify_env: VerifyEnv, marked: np.ndarray, tmp_path: Path
) -> None:
    half = marked.shape[1] // 2
    stereo = _encoded(marked[:, :half], SR, "mp3", "libmp3lame", 192_000)
    mono = _encoded(marked[:, half:].mean(axis=0, keepdims=True), SR, "mp3", "libmp3lame", 128_000)
    path = tmp_path / "stereo_then_mono.mp3"
    path.write_bytes(stereo + mono)

    report = _verify_in_child(verify_env, path)
    assert [p for wm in report["watermark"] for p in wm["payloads"]] == [verify_env.payload], report["notes"]
    # Before each layout got its own resampler, the mono half was dropped as 'corrupt packets'.
    assert _analysed_s(report) == pytest.approx(marked.shape[1] / SR, abs=0.15), report["watermark"]
    assert _covered_s(report) >= marked.shape[1] / SR - 1.0, report["watermark"]
    assert not any("corrupt audio packet" in n and not n.startswith("1 ") for n in report["notes"]), report["notes"]
