"""Quality of the FoleySeal mark on a whole corpus: SNR, PESQ-WB (speech), ViSQOL (music).

    python -m benchmarks.quality_corpus --corpus ../shared/corpus [--strength 1.0] [--json]

Marks every clip of the corpus (its MANIFEST.tsv gives each clip's kind) with a fixed key and
reports the per-clip figures and the medians that issue 2's acceptance asks for.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from benchmarks.jsonout import dumps
from benchmarks.pool import call, worker_pool
from benchmarks.requirements import missing_message, missing_requirements
from provenance.core.errors import FoleySealError, InputError

KEY = bytes(range(32))
PAYLOAD = "c0ffee0123456789"


def _one(args: tuple[str, str, float]) -> dict:
    from benchmarks.quality import pesq_wb, snr_db, visqol_audio
    from provenance.core import io
    from provenance.watermark import embed, min_duration_s

    path, kind, strength = args
    audio = io.read_audio(path)
    row: dict = {"file": Path(path).name, "kind": kind, "snr_db": None, "pesq_wb": None, "visqol": None}
    if audio.duration_s < min_duration_s():
        return row
    marked = embed(audio, KEY, PAYLOAD, strength=strength)
    row["snr_db"] = snr_db(audio.samples, marked.samples)
    if kind == "speech":
        row["pesq_wb"] = pesq_wb(audio, marked)
    elif kind == "music":
        row["visqol"] = visqol_audio(audio, marked)
    return row


def _median(values: list) -> dict | None:
    vals = [v for v in values if v is not None]
    return {"median": float(np.median(vals)), "min": float(min(vals)), "n": len(vals)} if vals else None


def run(corpus: Path, strength: float = 1.0, workers: int = 2) -> dict:
    """Mark every clip of ``corpus`` at ``strength`` and measure it; raises ``InputError`` naming
    the packages of the ``bench`` extra that are missing (PESQ and ViSQOL are the point)."""
    missing = missing_requirements([], ("pesq", "visqol"), plots=False)
    if missing:
        raise InputError(missing_message(missing, allow_flag=None))
    with open(corpus / "MANIFEST.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    jobs = [(str(corpus / r["file"]), r["description"].split(",")[0].strip(), strength) for r in rows]
    with worker_pool(workers) as ex:
        clips = list(ex.map(call, [_one] * len(jobs), jobs))
    return {
        "strength": strength,
        "snr_db_music_speech": _median([c["snr_db"] for c in clips if c["kind"] in ("music", "speech")]),
        "snr_db_all": _median([c["snr_db"] for c in clips]),
        "pesq_wb_speech": _median([c["pesq_wb"] for c in clips]),
        "visqol_music": _median([c["visqol"] for c in clips]),
        "clips": clips,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print everything as JSON")
    a = ap.parse_args()
    try:
        res = run(a.corpus, a.strength, a.workers)
    except FoleySealError as exc:
        raise SystemExit(f"error: {exc}") from None
    if a.json:
        print(dumps(res, indent=2))
        return
    for c in res["clips"]:
        print(f"{c['file']:44s} {c['kind'][:8]:8s} snr={c['snr_db']} pesq={c['pesq_wb']} visqol={c['visqol']}")
    for k in ("snr_db_music_speech", "snr_db_all", "pesq_wb_speech", "visqol_music"):
        print(k, res[k])


if __name__ == "__main__":
    main()
