"""Decoding for the video-to-audio generator: timestamps, sizes, and every kind of bad input.

Also holds the small test-video writers the other ``test_v2a_*`` modules import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from provenance.core.errors import FormatError, InputError
from v2a_core.analysis import analyze
from v2a_core.video import analysis_size, iter_frames, probe

SR = 48_000
GRAVITY = 1200.0  # px/s^2 in the test bounce scene


# ----------------------------------------------------------------------------- writers
def write_video(
    path: Path,
    render: Callable[[float], np.ndarray],
    times: list[float],
    size: tuple[int, int],
    *,
    time_base: Fraction = Fraction(1, 600),
    rate: int = 25,
    audio: np.ndarray | None = None,
    start_s: float = 0.0,
) -> Path:
    """H.264 MP4 with frames ``render(t)`` (RGB uint8 (h, w, 3)) at exactly ``times`` (s), whose
    timestamps (and the audio's) start at ``start_s`` (a clip cut from a longer recording)."""
    w, h = size
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = time_base
        vs.options = {"crf": "18", "preset": "ultrafast", "bf": "0"}
        aus = None
        if audio is not None:
            aus = c.add_stream("aac", rate=SR, layout="mono")
        for t in times:
            fr = av.VideoFrame.from_ndarray(render(t), format="rgb24")
            fr.pts = int(round((start_s + t) / time_base))
            fr.time_base = time_base
            for p in vs.encode(fr):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if aus is not None:
            for k in range(0, len(audio), 1024):
                af = av.AudioFrame.from_ndarray(audio[None, k : k + 1024].astype(np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = SR, k + round(start_s * SR), Fraction(1, SR)
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode():
                c.mux(p)
    return path


def cfr(duration_s: float, fps: float) -> list[float]:
    return [k / fps for k in range(int(round(duration_s * fps)))]


def bounce_times(t0: float = 0.3, height: float = 110.0, e: float = 0.7, min_gap: float = 0.25) -> list[float]:
    """Contact times of a ball dropped at ``t0`` from ``height`` px (analytic)."""
    t = t0 + np.sqrt(2 * height / GRAVITY)
    v = np.sqrt(2 * GRAVITY * height)
    out = [t]
    while True:
        v *= e
        gap = 2 * v / GRAVITY
        if gap < min_gap:
            return out
        t += gap
        out.append(t)


def bounce_video(path: Path, *, duration_s: float = 4.0, fps: float = 24.0, size=(320, 180), ball_x: float = 0.5,
                 start_s: float = 0.0) -> tuple[Path, list[float]]:
    """A ball dropped onto a floor; bounces between frames. Returns (path, contact times after
    the first picture; its timestamps start at ``start_s``)."""
    w, h = size
    floor, r, t0, height0, e = h - 20, 8, 0.3, 110.0, 0.7
    hits = bounce_times(t0, height0, e)
    v0 = np.sqrt(2 * GRAVITY * height0)
    speeds = [v0 * e**k for k in range(len(hits))]

    def height(t: float) -> float:
        if t < t0:
            return height0
        if t < hits[0]:
            return height0 - 0.5 * GRAVITY * (t - t0) ** 2
        for k, tb in enumerate(hits):
            nxt = hits[k + 1] if k + 1 < len(hits) else np.inf
            if tb <= t < nxt:
                if nxt == np.inf:
                    return 0.0
                dt = t - tb
                return max(0.0, speeds[k] * e * dt - 0.5 * GRAVITY * dt * dt)
        return 0.0

    yy, xx = np.mgrid[:h, :w]

    def render(t: float) -> np.ndarray:
        img = np.full((h, w, 3), (25, 25, 35), np.uint8)
        img[floor:] = (90, 70, 50)
        cy = floor - r - height(t)
        img[(xx - ball_x * w) ** 2 + (yy - cy) ** 2 <= r * r] = (240, 200, 40)
        return img

    return write_video(path, render, cfr(duration_s, fps), size, time_base=Fraction(1, 1200), rate=int(fps),
                       start_s=start_s), hits


def flash_video(path: Path, *, duration_s: float = 4.0, fps: float = 25.0, onsets=(15, 40, 70), size=(320, 240),
                start_s: float = 0.0) -> tuple[Path, list[float]]:
    w, h = size

    def render(t: float) -> np.ndarray:
        img = np.zeros((h, w, 3), np.uint8)
        k = int(round(t * fps))
        if any(o <= k < o + 2 for o in onsets):
            img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 255
        return img

    return (write_video(path, render, cfr(duration_s, fps), size, rate=int(fps), start_s=start_s),
            [o / fps for o in onsets])


def still_video(path: Path, *, duration_s: float, fps: float = 25.0, size=(320, 240), rgb=(40, 90, 160)) -> Path:
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rgb
    img[h // 2 :] = (rgb[0] // 2, rgb[1] // 2, rgb[2] // 2)
    return write_video(path, lambda t: img, cfr(duration_s, fps) or [0.0], size, rate=int(fps))


# ----------------------------------------------------------------------------- tests
def test_frame_times_come_from_timestamps_even_with_variable_frame_rate(tmp_path):
    times = [k / 60 for k in range(60)] + [1.0 + k / 20 for k in range(20)]  # 60 fps, then 20 fps
    path = write_video(tmp_path / "vfr.mp4", lambda t: np.full((120, 160, 3), int(t * 100) % 255, np.uint8),
                       times, (160, 120), time_base=Fraction(1, 600), rate=60)
    got = [f.time_s for f in iter_frames(path)]
    assert len(got) == len(times)
    assert np.max(np.abs(np.array(got) - np.array(times))) < 1e-3


def test_frame_times_count_from_the_first_picture_of_a_clip_cut_from_a_recording(tmp_path):
    """A clip whose timestamps start an hour in (cut from a recording, an MPEG-TS capture) is
    analysed on its own timeline: the first picture at 0 s, the soundtrack as long as the clip."""
    path = write_video(tmp_path / "late.mp4", lambda t: np.full((120, 160, 3), int(t * 100) % 255, np.uint8),
                       cfr(2.0, 25), (160, 120), start_s=3600.0)
    got = [f.time_s for f in iter_frames(path)]
    assert np.max(np.abs(np.array(got) - np.array(cfr(2.0, 25)))) < 1e-3
    assert analyze(path).duration_s == pytest.approx(2.0, abs=1e-3)
    assert probe(path).start_s == pytest.approx(3600.0)


def test_the_last_frame_of_a_variable_rate_video_is_shown_for_its_own_duration(tmp_path):
    """60 fps, then 20 fps: the last frame is shown for the 1/60 s the container gives it, not the
    50 ms interval before it, so the soundtrack is as long as the picture."""
    times = [k / 60 for k in range(60)] + [1.0 + k / 20 for k in range(20)]
    path = write_video(tmp_path / "vfr.mp4", lambda t: np.full((120, 160, 3), int(t * 100) % 255, np.uint8),
                       times, (160, 120), time_base=Fraction(1, 600), rate=60)
    frames = list(iter_frames(path))
    assert frames[-1].shown_s == pytest.approx(1 / 60, abs=1e-3)
    assert frames[-2].shown_s == pytest.approx(1 / 20, abs=1e-3)
    declared = probe(path).duration_s
    assert declared == pytest.approx(1.95 + 1 / 60, abs=1e-3)
    assert analyze(path).duration_s == pytest.approx(declared, abs=1e-6)


def test_analysis_size_keeps_aspect_and_never_upscales(tmp_path):
    assert analysis_size(1920, 1080) == (320, 180)
    assert analysis_size(180, 320) == (180, 320)
    assert analysis_size(1080, 1920) == (180, 320)
    path = still_video(tmp_path / "portrait.mp4", duration_s=1.0, size=(180, 320))
    frames = list(iter_frames(path))
    assert frames[0].yuv.shape == (320, 180, 3)
    info = probe(path)
    assert (info.width, info.height) == (180, 320) and not info.has_audio


def test_probe_reports_audio_track(tmp_path):
    audio = 0.1 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    path = write_video(tmp_path / "a.mp4", lambda t: np.zeros((64, 64, 3), np.uint8), cfr(1.0, 25), (64, 64), audio=audio)
    assert probe(path).has_audio


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda d: d / "missing.mp4", InputError, "no such file"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", InputError, "empty"),
        (lambda d: [(d / "junk.mp4").write_bytes(np.random.default_rng(1).bytes(5000)), d / "junk.mp4"][1], FormatError, "cannot"),
        (lambda d: d, InputError, "directory"),
    ],
)
def test_unreadable_inputs_get_clear_errors(tmp_path, make, error, words):
    path = make(tmp_path)
    with pytest.raises(error) as exc:
        list(iter_frames(path))
    assert words in str(exc.value)


def test_audio_only_file_is_refused_as_having_no_video_stream(tmp_path):
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(SR, np.float32), SR)
    with pytest.raises(InputError, match="no video stream"):
        probe(wav)
    m4a = tmp_path / "tone.m4a"
    with av.open(str(m4a), "w") as c:
        s = c.add_stream("aac", rate=SR, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = SR, 0
        for p in list(s.encode(af)) + list(s.encode()):
            c.mux(p)
    with pytest.raises(InputError, match="no video stream"):
        list(iter_frames(m4a))


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_video_stream_without_frames_is_refused(tmp_path, ext):
    path = tmp_path / f"zero.{ext}"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()  # header only, not one frame
    with pytest.raises((InputError, FormatError)) as exc:
        list(iter_frames(path))
    assert any(w in str(exc.value) for w in ("no decodable frames", "no video stream", "cannot be read"))
    assert str(path) in str(exc.value)


def test_truncated_file_is_refused_or_decoded_in_part(tmp_path):
    good, _ = bounce_video(tmp_path / "good.mp4", duration_s=2.0)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov at the end (PyAV default): header lost
    with pytest.raises((InputError, FormatError)):
        list(iter_frames(cut))


def test_one_frame_video_decodes(tmp_path):
    path = still_video(tmp_path / "one.mp4", duration_s=0.04)
    frames = list(iter_frames(path))
    assert len(frames) == 1 and frames[0].time_s == 0.0


def test_4k_frames_are_reduced_while_decoding(tmp_path):
    path = still_video(tmp_path / "uhd.mp4", duration_s=0.12, size=(3840, 2160))
    frames = list(iter_frames(path))
    assert len(frames) == 3
    assert frames[0].yuv.shape == (180, 320, 3) and frames[0].half.shape == (90, 160, 3)


def _faststart_video(path: Path, duration_s: float, fps: int = 30) -> Path:
    """H.264 MP4 with its index (moov) at the front, as web tools write it: cut short, it still
    opens and declares its full length."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        for i in range(int(duration_s * fps)):
            img = np.zeros((64, 64, 3), np.uint8)
            img[(i * 3) % 48 : (i * 3) % 48 + 16, 24:40] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def test_a_truncated_video_with_its_index_in_front_is_refused_as_truncated(tmp_path):
    full = _faststart_video(tmp_path / "full.mp4", 6.0)
    assert probe(full).duration_s == pytest.approx(6.0)
    assert len(list(iter_frames(full))) == 180  # complete: no complaint
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).duration_s == pytest.approx(6.0)  # the header still declares 6 s
    with pytest.raises(FormatError, match=r"truncated or damaged: its frames end at \d\.\d\d s of the 6.00 s") as exc:
        list(iter_frames(cut))
    assert str(cut) in str(exc.value)
    assert len(list(iter_frames(cut, max_duration_s=1.0))) == 31  # the part asked for is intact


def test_decoding_stopped_early_does_not_deadlock_with_pyav_logging_on(tmp_path):
    """PyAV frees a decoder holding the GIL; a frame thread logging meanwhile (PyAV's log callback,
    installed once av.logging's level is set, as verification does) waited for the GIL forever.
    Stopping early (--duration) hit it within a few runs; in a child process, so a hang fails."""
    import os
    import subprocess
    import sys

    path, _ = bounce_video(tmp_path / "b.mp4", duration_s=6.0)
    script = (
        "import av.logging, sys\n"
        "av.logging.set_level(av.logging.PANIC)\n"
        "from v2a_core.video.decode import iter_frames, prefetch\n"
        "for _ in range(300):\n"
        "    assert sum(1 for _ in prefetch(iter_frames(sys.argv[1], max_duration_s=2.0))) == 49\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script, str(path)], env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_pipe_given_as_the_video_is_named_as_one(tmp_path):
    """A FIFO was refused as "is empty (0 bytes)"."""
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is not a regular file"):
        probe(fifo)


def test_a_matroska_picture_that_starts_late_is_not_called_truncated(tmp_path):
    """FFmpeg's Matroska muxer tags a stream with its end time (``DURATION``); read as a length
    after the start, an intact MKV whose picture starts 0.52 s in was refused as "truncated or
    damaged: its frames end at 4.52 s of the 5.04 s its header declares"."""
    path, _ = flash_video(tmp_path / "late.mkv", duration_s=4.0, start_s=0.52)
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        assert float(vs.start_time * vs.time_base) == pytest.approx(0.52, abs=0.01)
        assert vs.metadata.get("DURATION", "").startswith("00:00:04.5")
    frames = list(iter_frames(path))
    assert len(frames) == 100  # every frame, none refused
