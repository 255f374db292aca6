"""Boundary accuracy of the verifier's segments, over many payloads.

Where a segment ends depends on the payload: the agreement of unmarked audio with the pilots
and the codeword is chance, and a chance fluke next to a mark's edge can join its segment. So
one payload says little; this benchmark marks an 8 s excerpt of a corpus clip with ``--payloads``
random payloads and places it in unmarked audio from the other clips (mono, 48 kHz, 16-bit WAV),
in two scenes read through :class:`~detectors.verify.Verifier`:

- ``long``: at 17 s in a 38 s file read in 12 s windows overlapping by 4 s, as a long file is
  read in its 60 s windows (the verification test ``test_long_files_are_searched_window_by_window``);
- ``splice``: at 7.3 s in a 24.4 s file read as one window (boundaries off any analysis grid).

For each it reports how often exactly one segment was found with both ends within 0.5 s (the
verification API's stated accuracy), and the distribution of start and end errors, seconds.

    python -m benchmarks.segment_edges --corpus ../shared/corpus --payloads 20 --out bench-out/segment-edges.json
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.jsonout import dumps
from provenance.core.atomic import atomic_write_bytes

RATE = 48_000
MARKED_S = 8.0
TOLERANCE_S = 0.5
HOSTS = (
    "ambience_water_stream.flac",
    "ambience_fire_crackle.wav",
    "music_orchestral_44k_stereo.flac",
    "music_electronic_48k_stereo.flac",
)
"""Clips with sound throughout (a boundary inside silence has no place to be found)."""


@dataclass(frozen=True)
class Scene:
    """Where the marked excerpt sits and how the file is read."""

    name: str
    before_s: float
    after_s: float
    window_s: float
    overlap_s: float

    def limits(self) -> Any:
        """The verifier's limits for this scene (its analysis window and overlap)."""
        from detectors.verify import VerifyLimits

        return VerifyLimits(window_s=self.window_s, overlap_s=self.overlap_s)


SCENES = (Scene("long", 17.0, 13.0, 12.0, 4.0), Scene("splice", 7.3, 9.1, 60.0, 5.0))


@dataclass
class SceneResult:
    """Per-trial errors of one scene (detected minus true boundary, seconds; None: no single segment)."""

    start_err_s: list[float | None] = field(default_factory=list)
    end_err_s: list[float | None] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Trials, share within ``TOLERANCE_S`` at both ends, and error statistics (seconds)."""
        return summarize_errors(self.start_err_s, self.end_err_s)


def summarize_errors(start_err_s: list[float | None], end_err_s: list[float | None]) -> dict[str, Any]:
    """Counts and statistics of boundary errors; a trial with None (not exactly one segment)
    counts as outside the tolerance."""
    n = len(start_err_s)
    single = [(s, e) for s, e in zip(start_err_s, end_err_s) if s is not None and e is not None]
    within = sum(1 for s, e in single if abs(s) <= TOLERANCE_S and abs(e) <= TOLERANCE_S)
    out: dict[str, Any] = {"trials": n, "single_segment": len(single), "within_tolerance": within,
                           "tolerance_s": TOLERANCE_S}
    for name, vals in (("start", [s for s, _ in single]), ("end", [e for _, e in single])):
        if vals:
            a = np.abs(np.asarray(vals))
            out[f"{name}_abs_err_s"] = {"median": round(float(np.median(a)), 3),
                                        "p90": round(float(np.percentile(a, 90)), 3),
                                        "max": round(float(a.max()), 3)}
            out[f"{name}_mean_err_s"] = round(float(np.mean(vals)), 3)
    return out


def _mono_48k(path: Path) -> np.ndarray:
    from benchmarks.attacks.base import resample
    from provenance.core.io import read_audio

    a = read_audio(path)
    return resample(a.mono(), a.sample_rate, RATE)


def _stretch(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` samples of ``x``, repeated if it is shorter."""
    return np.tile(x, int(np.ceil(n / x.shape[0])))[:n]


def run(corpus: Path, payloads: int, seed: int) -> dict[str, Any]:
    """Run every scene ``payloads`` times (hosts in turn) and summarise the errors."""
    from benchmarks.homes import init_home
    from detectors.verify import Verifier
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import embed, load_key

    clips = {name: _mono_48k(corpus / name) for name in HOSTS}
    rng = np.random.default_rng(seed)
    results = {s.name: SceneResult() for s in SCENES}
    with tempfile.TemporaryDirectory(prefix="foleyseal-segment-edges-") as d, contextlib.ExitStack() as stack:
        base = Path(d)
        settings = init_home(base / "home")
        key = load_key(settings.watermark_key_path)
        verifiers = {sc.name: stack.enter_context(Verifier(settings, limits=sc.limits(), threads=2)) for sc in SCENES}
        for i in range(payloads):
            host_name = HOSTS[i % len(HOSTS)]
            others = [clips[n] for n in HOSTS if n != host_name]
            host = clips[host_name]
            start = int(rng.integers(0, max(1, host.shape[0] - int(MARKED_S * RATE))))
            excerpt = host[start : start + int(MARKED_S * RATE)]
            # default strength; each scene is written as 16-bit PCM, as a verifier would receive it
            marked = embed(Audio(excerpt[np.newaxis, :], RATE), key, rng.bytes(8).hex()).samples[0]
            for scene in SCENES:
                fill = [others[k % len(others)] for k in rng.permutation(len(others))[:2]]
                x = np.concatenate([_stretch(fill[0], int(scene.before_s * RATE)), marked,
                                    _stretch(fill[1], int(scene.after_s * RATE))])
                x = x / max(1.0, float(np.max(np.abs(x))) / 0.9)
                path = base / f"{scene.name}.wav"
                write_audio(path, Audio(x[np.newaxis, :].astype(np.float32), RATE), subtype="PCM_16")
                segs = verifiers[scene.name].verify(path).watermark[0].segments
                res = results[scene.name]
                res.segments.append(len(segs))
                single = len(segs) == 1
                res.start_err_s.append(round(segs[0].start_s - scene.before_s, 3) if single else None)
                res.end_err_s.append(round(segs[0].end_s - scene.before_s - MARKED_S, 3) if single else None)
    return {"payloads": payloads, "seed": seed, "hosts": list(HOSTS),
            "scenes": {name: {**res.summary(), "trials_detail": asdict(res)} for name, res in results.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--payloads", type=int, default=20, help="trials per scene (about 25 s each, both scenes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON results here")
    args = ap.parse_args(argv)
    res = run(args.corpus, args.payloads, args.seed)
    for name, sc in res["scenes"].items():
        print(f"{name:7s} {sc['within_tolerance']}/{sc['trials']} within {TOLERANCE_S} s at both ends "
              f"(single segment {sc['single_segment']}); start |err| {sc.get('start_abs_err_s')}; "
              f"end |err| {sc.get('end_abs_err_s')}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out, dumps(res, indent=2).encode("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
