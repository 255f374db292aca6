"""A stand-in for a neural video-to-audio model's command-line demo (MMAudio-style).

    python fake_v2a_generator.py --video V --prompt P --negative_prompt N --output DIR [--seed S]
        [--duration D] [--mode ok|fail|nothing|garbage|video|mono44k|short|tone|several]

Writes DIR/<video stem>.wav: a tone whose pitch depends on the prompt and the seed (so tests
can tell prompts apart) over faint noise, as long as the video (``short``: 0.5 s of it, as a
model that gave up early; ``tone``: the tone alone). Also records its argv in DIR/args.json so
tests can check that each placeholder arrived as exactly one argument.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import soundfile as sf


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", required=True)
    ap.add_argument("--prompt", default="")
    ap.add_argument("--negative_prompt", default="")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--mode", default="ok")
    args = ap.parse_args()
    out = Path(args.output)
    (out / "args.json").write_text(json.dumps(sys.argv[1:]))
    if args.mode == "fail":
        print("CUDA out of memory (pretend)", file=sys.stderr)
        return 2
    if args.mode == "nothing":
        return 0
    if args.mode == "garbage":  # a model that died mid-write
        (out / f"{Path(args.video).stem}.wav").write_bytes(b"RIFF garbage")
        return 0
    with av.open(args.video) as c:
        vs = c.streams.video[0]
        duration = float(vs.duration * vs.time_base) if vs.duration else 5.0
    duration = args.duration or duration
    rate = 44_100 if args.mode == "mono44k" else 16_000
    t = np.arange(int((0.5 if args.mode == "short" else duration) * rate)) / rate
    f = 200 + (zlib.crc32(args.prompt.encode()) % 800) + 10 * args.seed
    x = 0.3 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    # and a little noise: a lone tone fills too few bands to carry the watermark, which FoleySeal
    # reads back before publishing (a real model's output is broadband)
    if args.mode != "tone":
        x = x + 0.03 * np.random.default_rng(args.seed).standard_normal(t.size)
    if args.mode == "several":  # a silent take first by name: taken by the documented rule
        sf.write(out / "a_take.wav", np.zeros((t.size, 2), np.float32), rate)
        sf.write(out / "c_take.flac", np.zeros((t.size, 2), np.float32), rate)
    if args.mode == "mono44k":
        sf.write(out / f"{Path(args.video).stem}.flac", x.astype(np.float32), rate)
    else:
        sf.write(out / f"{Path(args.video).stem}.wav", np.stack([x, 0.5 * x], axis=1).astype(np.float32), rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())


class PluginGen:
    """A stand-in for a Python plug-in (entry point group ``foleyseal.generators``) that returns
    its model's raw output. The prompt picks what it returns: ``long`` (5x the video), ``sr8k``
    (8 kHz mono), ``ch8`` (8 channels), ``stems``, or a fault: ``raise``, ``exit``, ``zerorate``,
    ``none``, ``nan``, ``badstem``; anything else: 48 kHz stereo noise as long as the video."""

    name = "fakeplug"
    version = "0.1"

    def generate(self, request, *, progress=None):
        from provenance.core.audio import Audio
        from v2a_core.types import Soundtrack
        from v2a_core.video import probe

        mode = request.prompt
        seconds = request.duration_s or probe(request.video).duration_s
        rate, channels = (8000, 1) if mode == "sr8k" else (48_000, 8 if mode == "ch8" else 2)
        frames = int(seconds * rate) * (5 if mode == "long" else 1)
        if mode == "raise":
            raise RuntimeError("model OOM")
        if mode == "exit":  # a model script's sys.exit() left in its library code
            raise SystemExit(5)
        if mode == "zerorate":  # FoleySeal's own Audio refuses it, inside the plug-in
            return Soundtrack(mix=Audio(np.zeros((2, 10), np.float32), 0), generator=self.name, seed=request.seed)
        if mode == "none":
            return None
        x = (0.1 * np.random.default_rng(request.seed).standard_normal((channels, frames))).astype(np.float32)
        if mode == "nan":
            x[:, 100] = np.nan
        stems = {}
        if mode in ("stems", "badstem"):
            stems = {"../escape" if mode == "badstem" else "voice": Audio(x[:, : frames // 2], rate)}
        return Soundtrack(mix=Audio(x, rate), stems=stems, generator=self.name, seed=request.seed)


class BrokenPluginGen:
    """A plug-in that cannot start (its __init__ raises)."""

    def __init__(self) -> None:
        raise RuntimeError("no CUDA device")
