"""Hostile-input acceptance for the verifier: thousands of generated bad files through the engine
(in-process, as the CLI runs it) and the HTTP service.

Every input must get either a correct report or a 4xx answer with a clear message: never a 5xx,
never a crash or a hung worker, never a temporary file left behind.

Inputs are generated in memory, deterministically from a seed, from small valid files of every
supported format (plain ones, and signed + watermarked ones when a FoleySeal home is given):
truncated, bit-flipped, random bytes, wrong extensions, zip-like and polyglot files, headers that
claim absurd sizes/rates/channel counts, NaN/Inf float WAVs, 0-byte files, 8 channels at 192 kHz,
path-traversal file names. Two hours of silence is a sparse file on disk (see
:func:`two_hours_of_silence`).

Run the full set (2,000 inputs through the engine and the service) with::

    python -m benchmarks.hostile --count 2000 [--out bench-out/hostile.json]

``tests/test_hostile_inputs.py`` runs a 300-input sample of the same generator.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.jsonout import dumps
from provenance.core.atomic import atomic_write_bytes

VERDICTS = {
    "credentials_valid",
    "credentials_tampered",
    "credentials_untrusted",
    "credentials_recovered_by_watermark",
    "partially_marked",
    "watermark_only",
    "no_evidence",
    "error",
}
CATEGORIES = (
    "truncated",
    "bitflip",
    "random",
    "wrong_extension",
    "zip_polyglot",
    "absurd_header",
    "nonfinite_float",
    "zero_byte",
    "multichannel_highrate",
    "path_traversal",
)
TRAVERSAL_NAMES = (
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "/etc/shadow.wav",
    "a/../../b.wav",
    "%2e%2e%2f%2e%2e%2fx.wav",
    "....//....//x.mp3",
    "\u202egnp.wav",
    "con.wav",
    "x" * 300 + ".wav",
    " .wav",
    "dir/sub/../../../../tmp/evil.flac",
    "file.wav;rm -rf ~",
    "<script>alert(1)</script>.wav",
)


@dataclass(frozen=True)
class HostileCase:
    """One generated input."""

    index: int
    category: str
    name: str
    """The file name presented to the verifier (may be hostile)."""
    data: bytes
    base: str
    """Which valid file it came from ('' for pure noise)."""
    signed: bool
    """Derived from a signed (Content Credentials) file."""
    identical: bool = False
    """The bytes are exactly the base file's (only the name changed)."""
    expect: str | None = None
    """The exact verdict a correct report has, when one is known."""


@dataclass
class Outcome:
    case: HostileCase
    status: int
    """HTTP status, or for the engine: 200 for a report, 422 for verdict ``error``."""
    verdict: str | None
    detail: str | None
    seconds: float
    problem: str | None = None


# --------------------------------------------------------------------------------------------
# valid base files


def _noise_host(seconds: float, sr: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = np.cumsum(rng.standard_normal((channels, n)), axis=1)
    x -= np.convolve(x[0], np.ones(64) / 64, "same")[None, :]
    x /= np.max(np.abs(x)) * 2
    return x.astype(np.float32)


def plain_bases(seconds: float = 4.0) -> dict[str, bytes]:
    """Small valid unsigned, unmarked files of each supported format (name -> bytes)."""
    from provenance.core.audio import Audio
    from provenance.core.io import replace_audio_track, write_audio

    out: dict[str, bytes] = {}
    audio16 = Audio(_noise_host(seconds, 16_000, 1, 1), 16_000)
    audio48 = Audio(_noise_host(seconds, 48_000, 2, 2), 48_000)
    with tempfile.TemporaryDirectory(prefix="foleyseal-hostile-bases-") as d:
        tmp = Path(d)
        specs = [
            ("plain16.wav", audio16, "PCM_16"),
            ("float.wav", audio16, "FLOAT"),
            ("plain.flac", audio16, None),
            ("plain.mp3", audio48, None),
            ("plain.ogg", audio16, "VORBIS"),
            ("plain.opus", audio48, None),
            ("plain.m4a", audio48, None),
        ]
        for name, audio, subtype in specs:
            write_audio(tmp / name, audio, subtype=subtype)
            out[name] = (tmp / name).read_bytes()
        _tiny_video(tmp / "v.mp4", seconds)
        replace_audio_track(tmp / "v.mp4", audio48, tmp / "plain.mp4")
        out["plain.mp4"] = (tmp / "plain.mp4").read_bytes()
    return out


def _tiny_video(path: Path, seconds: float) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width = s.height = 16
        s.pix_fmt = "yuv420p"
        for i in range(int(seconds * 5)):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), i * 9 % 255, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


# --------------------------------------------------------------------------------------------
# hand-made containers


def wav_bytes(
    samples: bytes,
    *,
    fmt_tag: int = 1,
    channels: int = 1,
    rate: int = 16_000,
    bits: int = 16,
    data_size: int | None = None,
    riff_size: int | None = None,
    block_align: int | None = None,
    byte_rate: int | None = None,
) -> bytes:
    """A WAV file whose header fields can all be set to anything (sizes in bytes)."""
    ba = block_align if block_align is not None else max(0, channels * bits // 8) & 0xFFFF
    br = byte_rate if byte_rate is not None else (rate * ba) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", fmt_tag & 0xFFFF, channels & 0xFFFF, rate & 0xFFFFFFFF, br, ba, bits & 0xFFFF)
    ds = len(samples) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", ds & 0xFFFFFFFF) + samples
    rs = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", rs & 0xFFFFFFFF) + body


def float_wav(values: np.ndarray, rate: int = 16_000, channels: int = 1, bits: int = 32) -> bytes:
    dtype = "<f4" if bits == 32 else "<f8"
    return wav_bytes(values.astype(dtype).tobytes(), fmt_tag=3, channels=channels, rate=rate, bits=bits)


def two_hours_of_silence(path: Path, *, rate: int = 8_000) -> Path:
    """A valid 16-bit mono WAV holding 2 h of digital silence, written as a sparse file (fast)."""
    frames = int(2 * 3600 * rate)
    header = wav_bytes(b"", rate=rate, data_size=frames * 2, riff_size=36 + frames * 2)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + frames * 2)
    return path


# --------------------------------------------------------------------------------------------
# the generator


def _flip_bits(data: bytes, rng: np.random.Generator, n: int, *, head_only: bool = False) -> bytes:
    b = bytearray(data)
    limit = min(len(b), 256) if head_only else len(b)
    for _ in range(n):
        i = int(rng.integers(0, limit))
        b[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    # A fixed timestamp: writestr(name) stamps the current time, which made the generated
    # cases differ whenever two runs straddled a 2-second tick of the ZIP clock.
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(info, data)
    return buf.getvalue()


def _absurd(rng: np.random.Generator, bases: dict[str, bytes]) -> tuple[str, bytes]:
    pcm = np.zeros(1600, "<i2").tobytes()
    choice = int(rng.integers(0, 16))
    if choice == 0:
        return "huge-data.wav", wav_bytes(pcm, data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF)
    if choice == 1:
        return "many-channels.wav", wav_bytes(pcm, channels=int(rng.choice([0, 9, 255, 65535])))
    if choice == 2:
        return "rate.wav", wav_bytes(pcm, rate=int(rng.choice([0, 1, 7, 384_000, 0xFFFFFFFF])))
    if choice == 3:
        return "bits.wav", wav_bytes(pcm, bits=int(rng.choice([0, 1, 3, 12, 64, 255, 65535])))
    if choice == 4:
        return "align.wav", wav_bytes(pcm, block_align=0, byte_rate=0)
    if choice == 5:
        return "fmt-tag.wav", wav_bytes(pcm, fmt_tag=int(rng.choice([0, 2, 0x55, 0xFFFE, 0x1234])))
    if choice == 6:
        # A fmt chunk that claims to be 4 GB long.
        w = bytearray(wav_bytes(pcm))
        w[16:20] = struct.pack("<I", 0xFFFFFFF0)
        return "fmt-size.wav", bytes(w)
    if choice == 7:
        # RF64 with an absurd ds64 chunk.
        ds64 = b"ds64" + struct.pack("<IQQQI", 28, 2**62, 2**62, 2**62, 0)
        body = b"WAVE" + ds64 + wav_bytes(pcm)[12:]
        return "absurd.rf64.wav", b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body
    if choice == 8 and "plain.flac" in bases:
        # FLAC STREAMINFO: block sizes 0, rate 1048575 Hz, 8 ch, 2^36-1 samples.
        f = bytearray(bases["plain.flac"])
        f[8:12] = b"\0\0\0\0"
        f[18:22] = bytes([0xFF, 0xFF, 0xFE | 0x01, 0xFF])
        f[22:26] = b"\xff\xff\xff\xff"
        return "streaminfo.flac", bytes(f)
    if choice == 9 and "plain.m4a" in bases:
        m = bytearray(bases["plain.m4a"])
        i = m.find(b"moov")
        if i >= 4:
            m[i - 4 : i] = struct.pack(">I", 0xFFFFFFF0)
        return "moov-size.m4a", bytes(m)
    if choice == 10 and "plain.mp4" in bases:
        m = bytearray(bases["plain.mp4"])
        i = m.find(b"mdat")
        if i >= 4:
            m[i - 4 : i + 12] = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 2**63 - 1)
        return "mdat-size.mp4", bytes(m)
    if choice == 11 and "plain.mp4" in bases:
        m = bytearray(bases["plain.mp4"])
        for tag in (b"stsz", b"stco", b"stts", b"stsc"):
            i = m.find(tag)
            if i >= 0:
                m[i + 8 : i + 12] = b"\xff\xff\xff\xff"  # entry count
        return "tables.mp4", bytes(m)
    if choice == 12 and "plain.mp3" in bases:
        # An ID3v2 tag claiming 256 MB.
        return "id3.mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + bases["plain.mp3"]
    if choice == 13 and "plain.ogg" in bases:
        o = bytearray(bases["plain.ogg"])
        for i in range(0, len(o) - 14):
            if o[i : i + 4] == b"OggS":
                o[i + 6 : i + 14] = b"\xff" * 7 + b"\x7f"  # granule position
        return "granule.ogg", bytes(o)
    if choice == 14:
        return "extensible.wav", wav_bytes(pcm, fmt_tag=0xFFFE, channels=8, rate=192_000, bits=24)
    return "header-only.wav", wav_bytes(b"", data_size=2**31)


def iter_cases(count: int, *, seed: int = 0, plain: dict[str, bytes], signed: dict[str, bytes] | None = None) -> Iterator[HostileCase]:
    """``count`` hostile inputs, cycling through :data:`CATEGORIES` (deterministic for a seed)."""
    signed = signed or {}
    plain_names = sorted(plain)
    signed_names = sorted(signed)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        cat = CATEGORIES[i % len(CATEGORIES)]
        use_signed = bool(signed_names) and rng.random() < 0.2
        base_name = str(rng.choice(signed_names if use_signed else plain_names))
        base = (signed if use_signed else plain)[base_name]
        ext = os.path.splitext(base_name)[1]
        if cat == "truncated":
            cut = int(rng.choice([1, 4, 12, 44, 100, 512, int(rng.integers(1, len(base)))]))
            yield HostileCase(i, cat, f"truncated-{cut}{ext}", base[:cut], base_name, use_signed)
        elif cat == "bitflip":
            n = int(rng.choice([1, 8, 64, 512]))
            data = _flip_bits(base, rng, n, head_only=bool(rng.random() < 0.4))
            yield HostileCase(i, cat, f"flipped-{n}{ext}", data, base_name, use_signed, identical=data == base)
        elif cat == "random":
            n = int(rng.choice([1, 16, 200, 4096, 65536, 300_000]))
            name = f"random-{n}" + str(rng.choice([".wav", ".mp3", ".flac", ".mp4", ".ogg", ".bin", ""]))
            yield HostileCase(i, cat, name, rng.bytes(n), "", False, expect=None)
        elif cat == "wrong_extension":
            other = str(rng.choice([".mp3", ".wav", ".flac", ".ogg", ".mp4", ".m4a", ".txt", ".jpg", ".exe", ""]))
            yield HostileCase(i, cat, f"renamed{other}", base, base_name, use_signed, identical=True)
        elif cat == "zip_polyglot":
            k = int(rng.integers(0, 6))
            if k == 0:
                data, name = _zip_of(base_name, base), "archive" + str(rng.choice([".zip", ".wav", ".mp3"]))
            elif k == 1:
                data, name = base + _zip_of("x.txt", b"hello"), f"polyglot-appended{ext}"
            elif k == 2:
                data, name = _zip_of("x.txt", b"hello") + base, f"polyglot-prefixed{ext}"
            elif k == 3:
                data, name = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + base, f"pdf{ext}"
            elif k == 4:
                data, name = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + base, f"jpeg{ext}"
            else:
                data, name = b"<html><body>" + base + b"</body></html>", f"html{ext}"
            # A valid file with a zip appended is still that file: a report is expected then.
            yield HostileCase(i, cat, name, data, base_name, use_signed)
        elif cat == "absurd_header":
            name, data = _absurd(rng, plain)
            yield HostileCase(i, cat, name, data, "", False)
        elif cat == "nonfinite_float":
            n = 16_000 * int(rng.integers(1, 5))
            v = np.random.default_rng([seed, i, 1]).standard_normal(n).astype(np.float32) * 0.1
            kind = int(rng.integers(0, 5))
            if kind == 0:
                v[:] = np.nan
            elif kind == 1:
                v[:: int(rng.integers(2, 50))] = np.nan
            elif kind == 2:
                v[int(rng.integers(0, n))] = np.inf
                v[int(rng.integers(0, n))] = -np.inf
            elif kind == 3:
                v *= np.float32(1e30)
            else:
                v[:] = np.inf
            bits = int(rng.choice([32, 64]))
            yield HostileCase(i, cat, f"nonfinite-{kind}.wav", float_wav(v, bits=bits), "", False)
        elif cat == "zero_byte":
            name = "empty" + str(rng.choice([".wav", ".mp3", ".mp4", ""]))
            yield HostileCase(i, cat, name, b"", "", False, expect="error")
        elif cat == "multichannel_highrate":
            k = int(rng.integers(0, 4))
            if k == 0:
                x = (np.random.default_rng([seed, i]).standard_normal((8, 96_000)) * 3000).astype("<i2")
                data = wav_bytes(x.T.tobytes(), channels=8, rate=192_000, bits=16)
                yield HostileCase(i, cat, "8ch-192k.wav", data, "", False, expect="no_evidence")
            elif k == 1:
                x = (np.random.default_rng([seed, i]).standard_normal((2, 4_000)) * 3000).astype("<i2")
                yield HostileCase(i, cat, "4khz.wav", wav_bytes(x.T.tobytes(), channels=2, rate=4_000), "", False)
            elif k == 2:
                x = (np.random.default_rng([seed, i]).standard_normal((12, 8_000)) * 3000).astype("<i2")
                yield HostileCase(i, cat, "12ch.wav", wav_bytes(x.T.tobytes(), channels=12, rate=16_000), "", False)
            else:
                yield HostileCase(i, cat, "1-frame.wav", wav_bytes(b"\x01\x00"), "", False)
        else:  # path_traversal
            name = TRAVERSAL_NAMES[i // len(CATEGORIES) % len(TRAVERSAL_NAMES)]
            yield HostileCase(i, cat, name, base, base_name, use_signed, identical=True)


# --------------------------------------------------------------------------------------------
# judging an answer


def judge(case: HostileCase, status: int, body: Any) -> str | None:
    """None when the answer is acceptable, else what is wrong with it."""
    if status >= 500:
        return f"HTTP {status}"
    if not isinstance(body, dict):
        return "answer is not a JSON object"
    if 400 <= status < 500:
        detail = body.get("detail")
        if not isinstance(detail, str) or len(detail) < 8:
            return f"{status} without a clear message: {detail!r}"
        if case.expect not in (None, "error") and status == 422:
            return f"422 ({detail}) where a '{case.expect}' report was expected"
        return None
    if status != 200:
        return f"unexpected status {status}"
    verdict = body.get("verdict")
    if verdict not in VERDICTS or verdict == "error":
        return f"bad verdict {verdict!r} with 200"
    if not body.get("explanation"):
        return "report without explanation"
    if case.expect is not None and verdict != case.expect:
        return f"verdict {verdict}, expected {case.expect}"
    if case.signed and case.identical and verdict != "credentials_valid":
        return f"unchanged signed file got {verdict}"
    if case.signed and not case.identical and verdict == "credentials_valid":
        return "a modified signed file was reported credentials_valid"
    if not case.signed and verdict not in ("no_evidence",):
        return f"an unsigned, unmarked input produced evidence: {verdict}"
    return None


# --------------------------------------------------------------------------------------------
# runners


def run_engine(cases: list[HostileCase] | Iterator[HostileCase], verifier: Any) -> list[Outcome]:
    """Each case through ``verifier`` in-process: half as a file path, half as a stream."""
    out: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="foleyseal-hostile-files-") as d:
        for case in cases:
            t0 = time.perf_counter()
            if case.index % 2:
                report = verifier.verify(io.BytesIO(case.data), name=case.name)
            else:
                p = Path(d) / f"case{case.index}{_ext(case.name)}"
                p.write_bytes(case.data)
                report = verifier.verify(p, name=case.name)
                p.unlink()
            body = report.to_dict()
            json.dumps(body, allow_nan=False)
            status = 422 if body["verdict"] == "error" else 200
            if status == 422:
                body = {"detail": body["error"], "report": body}
            o = Outcome(case, status, report.verdict.value, report.error, time.perf_counter() - t0)
            o.problem = judge(case, status, body)
            out.append(o)
    return out


def _ext(name: str) -> str:
    ext = os.path.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])[1].lower()
    return ext if 1 < len(ext) <= 9 and ext[1:].isalnum() and ext.isascii() else ""


def run_http(cases: list[HostileCase] | Iterator[HostileCase], client: Any) -> list[Outcome]:
    """Each case through ``POST /v1/verify`` (``client``: a TestClient or an httpx.Client):
    multipart for most, raw body with ``?filename=`` for every third."""
    out: list[Outcome] = []
    for case in cases:
        t0 = time.perf_counter()
        if case.index % 3 == 0:
            r = client.post("/v1/verify", params={"filename": case.name}, content=case.data,
                            headers={"content-type": "application/octet-stream"})
        else:
            r = client.post("/v1/verify", files={"file": (case.name, case.data, "application/octet-stream")})
        try:
            body = r.json()
        except ValueError:
            body = None
        o = Outcome(case, r.status_code, (body or {}).get("verdict"), (body or {}).get("detail"),
                    time.perf_counter() - t0)
        o.problem = judge(case, r.status_code, body)
        if o.problem is None and r.status_code == 200:
            shown = body.get("file", "")
            if "/" in shown or "\\" in shown:
                o.problem = f"report shows an unsanitised file name {shown!r}"
        out.append(o)
    return out


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    by_cat: dict[str, Counter] = {}
    for o in outcomes:
        key = o.verdict if o.status == 200 else f"HTTP {o.status}"
        by_cat.setdefault(o.case.category, Counter())[key] += 1
    times = np.array([o.seconds for o in outcomes]) if outcomes else np.zeros(1)
    return {
        "inputs": len(outcomes),
        "problems": [f"#{o.case.index} {o.case.category} {o.case.name!r}: {o.problem}" for o in outcomes if o.problem],
        "status_counts": dict(Counter(o.status for o in outcomes)),
        "by_category": {k: dict(v) for k, v in sorted(by_cat.items())},
        "seconds_total": round(float(times.sum()), 2),
        "seconds_p50": round(float(np.percentile(times, 50)), 4),
        "seconds_p95": round(float(np.percentile(times, 95)), 4),
        "seconds_max": round(float(times.max()), 3),
    }


# --------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class _Env:
    home: Path
    settings: Any
    signed: dict[str, bytes] = field(default_factory=dict)


def _make_home(base: Path) -> _Env:
    """A throwaway FoleySeal home with keys and two signed+marked files (WAV, MP4)."""
    from benchmarks.homes import init_home
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.mark import mark

    home = base / "home"
    settings = init_home(home)
    write_audio(base / "src.wav", Audio(_noise_host(6.0, 48_000, 2, 5), 48_000), subtype="PCM_16")
    m = mark(base / "src.wav", base / "signed.wav", settings=settings, generated=True)
    env = _Env(home, settings, {"signed.wav": m.output.read_bytes()})
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="inputs per door (engine, HTTP)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args(argv)

    from fastapi.testclient import TestClient

    from detectors.service import ServiceConfig, create_app
    from detectors.verify import Verifier

    results: dict[str, Any] = {"count": args.count, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="foleyseal-hostile-bench-") as d:
        base = Path(d)
        scratch = base / "tmp"
        scratch.mkdir()
        env = _make_home(base)
        plain = plain_bases()
        old_tmp = tempfile.tempdir
        tempfile.tempdir = str(scratch)  # every temporary file of the engine lands here
        try:
            t0 = time.perf_counter()
            with Verifier(env.settings) as v:
                eng = run_engine(iter_cases(args.count, seed=args.seed, plain=plain, signed=env.signed), v)
                silence = two_hours_of_silence(base / "silence-2h.wav")
                t1 = time.perf_counter()
                rep = v.verify(silence)
                results["two_hours_of_silence"] = {
                    "verdict": rep.verdict.value, "seconds": round(time.perf_counter() - t1, 2), "notes": rep.notes,
                }
            results["engine"] = summarize(eng)
            results["engine"]["wall_s"] = round(time.perf_counter() - t0, 1)
        finally:
            tempfile.tempdir = old_tmp
        results["engine_temp_left"] = sorted(os.listdir(scratch))
        if not args.skip_http:
            up = base / "uploads"
            config = ServiceConfig(home=env.home, upload_dir=up, workers=2, rate_limit_per_min=0)
            t0 = time.perf_counter()
            with TestClient(create_app(config)) as c:
                http = run_http(iter_cases(args.count, seed=args.seed + 1, plain=plain, signed=env.signed), c)
                health = c.get("/v1/health").json()
            results["http"] = summarize(http)
            results["http"]["wall_s"] = round(time.perf_counter() - t0, 1)
            results["http"]["worker_restarts"] = health["worker_restarts"]
            results["http_temp_left"] = [str(p) for p in up.rglob("*") if p.is_file()] if up.exists() else []
    text = dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out, text.encode("utf-8"))
    bad = results["engine"]["problems"] + results.get("http", {}).get("problems", [])
    bad += results["engine_temp_left"] + results.get("http_temp_left", [])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
