"""Session fixtures for the verification tests: a FoleySeal home and real marked files, made once.

Import the fixtures you use into a test module (``from tests._verify_fixtures import ...``);
this module is not a conftest so that it stays owned by the verification tests.

Everything is deterministic: the host signal and the watermark key are fixed, and the payloads
that ``mark`` allocates at random (as it must) come from a seeded sequence here
(:func:`seeded_payloads`), so that a segment boundary that depends on the payload cannot make a
test pass on one run and fail on the next. The host was chosen with a wide detection margin
after MP3 64 kbps and Opus 96 kbps (p < 1e-16 over 24 payloads).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import signal

SR = 48_000
CLIP_S = 8.0
FIXED_KEY = bytes(range(32))
"""Watermark key of the test home (fixed, so detection margins do not vary between runs)."""
FIRST_PAYLOADS = ("63d68fb2494c15eb",)
"""Payloads the store allocates first (the first goes to ``marked.wav``). With this one, the
long-file test's segment overhung the mark's end by 0.61 s (a CI failure, 2026-11-26) before
segment edges were placed at their change points (``segments.trim_edges``)."""


@contextlib.contextmanager
def seeded_payloads(seed: int = 2026) -> Iterator[None]:
    """Within the block, the manifest store allocates :data:`FIRST_PAYLOADS`, then payloads
    drawn from a generator seeded with ``seed``, instead of fresh random ones."""
    from types import SimpleNamespace
    from unittest import mock

    from provenance.store import repository

    rng = np.random.default_rng(seed)
    queue = [bytes.fromhex(p) for p in FIRST_PAYLOADS]

    def token_bytes(n: int) -> bytes:
        return queue.pop(0)[:n] if queue else rng.bytes(n)

    # The store module's own name only: keys and everything else still draw real randomness.
    with mock.patch.object(repository, "secrets", SimpleNamespace(token_bytes=token_bytes)):
        yield


def foley_host(seconds: float, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A broadband foley-like stereo signal (a brook: band-passed noise with slow swells, plus
    water drops), float32 ``(2, frames)`` peaking at about -3 dBFS. Channels are strongly
    correlated, as in real recordings."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    b, a = signal.butter(2, [300 / (sr / 2), 6000 / (sr / 2)], "band")
    brook = signal.lfilter(b, a, rng.standard_normal(n))
    t = np.arange(n) / sr
    out = brook * (1 + 0.4 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)) + 0.2 * np.sin(2 * np.pi * 1.7 * t))
    drop_len = int(sr * 0.03)
    for start in rng.integers(0, n - 2000, int(seconds * 6)):
        f = rng.uniform(500, 3000)
        k = np.arange(min(drop_len, n - start))
        out[start : start + k.size] += np.sin(2 * np.pi * f * k / sr) * np.exp(-k / (sr * 0.008)) * rng.uniform(0.5, 2)
    side = signal.lfilter(b, a, rng.standard_normal(n)) * 0.15
    st = np.stack([out + side, out - side])
    st /= np.max(np.abs(st)) * 1.4
    return st.astype(np.float32)


def write_video_only(path: Path, seconds: float, *, fps: int = 10, size: int = 32) -> None:
    """A tiny MPEG-4 video without audio (a moving gradient), for building test MP4s."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.zeros((size, size, 3), np.uint8)
            img[:, :, 0] = (np.arange(size)[None, :] * 8 + i * 5) % 255
            img[:, :, 1] = 128
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def flip_byte(src: Path, dst: Path, *, where: float = 0.6, mask: int = 0x10) -> None:
    """Copy ``src`` to ``dst`` with one byte flipped at ``where`` (fraction of the file)."""
    data = bytearray(src.read_bytes())
    i = int(len(data) * where)
    data[i] ^= mask
    dst.write_bytes(bytes(data))


def _mdat_offset(path: Path) -> int:
    """Offset of the middle of the first top-level ``mdat`` box of an MP4 (media data)."""
    data = path.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:
            break
        if kind == b"mdat":
            return pos + size // 2
        pos += size
    raise AssertionError(f"no mdat box in {path}")


@dataclass
class VerifyEnv:
    """The test home and the files made in it."""

    home: Path
    settings: Any
    files: dict[str, Path]
    payload: str
    """Payload of ``marked.wav`` (and its re-encodes and the splice)."""
    record_id: str
    mp4_payload: str
    splice_span_s: tuple[float, float]
    """Where the marked audio sits in ``spliced.wav``, seconds."""
    other_home: Path
    """A second FoleySeal home whose (development) root this verifier does not trust."""

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should use this home."""
        e = dict(os.environ)
        e["FOLEYSEAL_HOME"] = str(self.home)
        return e


def _init_home(home: Path, key: bytes | None) -> Any:
    from typer.testing import CliRunner

    from foleyseal.cli import app
    from provenance.core.config import load_settings
    from provenance.watermark.keys import WatermarkKey, save_key

    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    settings = load_settings(home)
    if key is not None:
        settings.watermark_key_path.parent.mkdir(parents=True, exist_ok=True)
        save_key(WatermarkKey(key), settings.watermark_key_path)
    result = CliRunner().invoke(app, ["keys", "init", "--home", str(home)])
    assert result.exit_code == 0, result.output
    return load_settings(home)


def _sign(home: Path, src: Path, dst: Path) -> Path:
    """``foleyseal sign --home HOME SRC DST``; DST (its sidecar, for formats without an embedded
    manifest, is DST + ``.c2pa``)."""
    from typer.testing import CliRunner

    from foleyseal.cli import app

    result = CliRunner().invoke(app, ["sign", "--home", str(home), str(src), str(dst)])
    assert result.exit_code == 0, result.output
    return dst


def build_verify_env(base: Path) -> VerifyEnv:
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, replace_audio_track, write_audio
    from provenance.mark import mark

    home = base / "home"
    settings = _init_home(home, FIXED_KEY)
    other_home = base / "other-home"
    other = _init_home(other_home, None)
    d = base / "files"
    d.mkdir()
    f: dict[str, Path] = {}

    host = foley_host(CLIP_S, seed=0)
    write_audio(d / "host.wav", Audio(host, SR, subtype="PCM_16"))
    write_audio(d / "unmarked.wav", Audio(foley_host(CLIP_S, seed=7), SR, subtype="PCM_16"))
    f["unmarked"] = d / "unmarked.wav"

    res = mark(d / "host.wav", d / "marked.wav", settings=settings, generated=True, title="test clip",
               generation_record={"generator": "test", "prompt": "a brook with water drops"})
    f["marked_wav"] = res.output

    write_video_only(d / "video.mp4", CLIP_S)
    replace_audio_track(d / "video.mp4", Audio(foley_host(CLIP_S, seed=1), SR), d / "input.mp4")
    res_mp4 = mark(d / "input.mp4", d / "marked.mp4", settings=settings, generated=True, title="test video")
    f["marked_mp4"] = res_mp4.output

    flip_byte(f["marked_wav"], d / "flipped.wav")
    f["flipped_wav"] = d / "flipped.wav"
    data = bytearray(f["marked_mp4"].read_bytes())
    data[_mdat_offset(f["marked_mp4"])] ^= 0x10
    (d / "flipped.mp4").write_bytes(bytes(data))
    f["flipped_mp4"] = d / "flipped.mp4"

    marked = read_audio(f["marked_wav"])
    write_audio(d / "reencoded.mp3", marked, bitrate_kbps=64)
    f["mp3_64"] = d / "reencoded.mp3"
    write_audio(d / "reencoded.opus", marked, bitrate_kbps=96)
    f["opus"] = d / "reencoded.opus"

    # Boundaries off any analysis grid (7.3 s, 15.3 s).
    before = foley_host(7.3, seed=11)
    after = foley_host(9.1, seed=12)
    spliced = np.concatenate([before, marked.samples, after], axis=1)
    write_audio(d / "spliced.wav", Audio(spliced, SR, subtype="PCM_16"))
    f["spliced"] = d / "spliced.wav"

    res_other = mark(d / "host.wav", d / "untrusted.wav", settings=other, generated=True, title="other signer")
    f["untrusted"] = res_other.output

    # Signed only (`foleyseal sign`, no watermark), as Ogg: its manifest goes to signed.ogg.c2pa.
    write_audio(d / "plain.ogg", Audio(foley_host(4.0, seed=3), SR))
    f["signed_ogg"] = _sign(home, d / "plain.ogg", d / "signed.ogg")

    return VerifyEnv(
        home=home,
        settings=settings,
        files=f,
        payload=res.payload,
        record_id=res.record.id,
        mp4_payload=res_mp4.payload,
        splice_span_s=(7.3, 7.3 + marked.duration_s),
        other_home=other_home,
    )


@pytest.fixture(scope="session")
def verify_env(tmp_path_factory: pytest.TempPathFactory) -> VerifyEnv:
    """A FoleySeal home with keys, and marked/tampered/re-encoded/spliced/unmarked files."""
    with seeded_payloads():
        return build_verify_env(tmp_path_factory.mktemp("verify"))


def settings_without_store(env: VerifyEnv) -> Any:
    """The test settings pointing at a store that does not exist (verification without records)."""
    return replace(env.settings, store_url=f"sqlite:///{env.home / 'absent.sqlite3'}")


class RunningServer:
    """A real uvicorn server on 127.0.0.1 in a background thread (see :func:`running_server`)."""

    def __init__(self, config: Any) -> None:
        import threading

        import uvicorn

        from detectors.service import create_app
        from detectors.service.app import uvicorn_options

        self.app = create_app(config)
        options = {**uvicorn_options(config), "timeout_keep_alive": 5}
        uv_config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options)
        self.server = uvicorn.Server(uv_config)
        # on a socket bound as `serve` binds its own (the kind asyncio does not set TCP_NODELAY on)
        self.sock = uv_config.bind_socket()
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="uvicorn-test",
                                       daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 180
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


def running_server(config: Any) -> RunningServer:
    """``with running_server(ServiceConfig(...)) as base_url:`` - the real service on a free port."""
    return RunningServer(config)
