"""``foleyseal bench``: the benchmark commands. ``robustness`` and ``attacks`` live here; ``sync``,
``speed`` and ``load`` in their own modules (``load`` in :mod:`foleyseal.cli.verify`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from foleyseal.cli.numbers import finite, mark_strength
from provenance.core.errors import InputError

app = typer.Typer(
    help="Benchmarks: watermark robustness against attacks (robustness; attacks lists them), "
    "audio-visual sync of generated soundtracks (sync), speed (speed) and the verification "
    "service under load (load).",
    no_args_is_help=True,
)


def _attack_names(value: str | None) -> str | None:
    """``--attacks``, refused when given but naming no attack: ``--attacks "$ATTACKS"`` with the
    variable unset ran every attack (the 35-minute suite) instead of saying so."""
    if value is not None and not any(name.strip() for name in value.split(",")):
        raise typer.BadParameter(f"{value!r} names no attack; leave --attacks out to run every attack")
    return value


@app.command("robustness")
def robustness_cmd(
    corpus: Path = typer.Option(..., "--corpus", help="Directory of audio clips to mark and attack.", readable=False),
    out: Path = typer.Option(..., "--out", help="Output directory (results.jsonl/json, summary.md, PNG plots). "
                             "Re-running with the same directory resumes: finished trials are skipped.", readable=False),
    attacks: str = typer.Option(None, "--attacks", callback=_attack_names,
                                help="Comma-separated attack names (default: all; see `foleyseal bench attacks`)."),
    attack_list: Path = typer.Option(None, "--attack-list", help="TOML file listing/defining attacks.", readable=False),
    watermarkers: str = typer.Option(None, "--watermarkers", help="Comma-separated: foleyseal, foleyseal+store "
                                     "(read by a verifier holding a store of a million issued payloads), "
                                     "foleyseal-spread (format variant: runs interleaved in time), lsb, "
                                     "external (all tools in --external-config) or one tool's name. Default: "
                                     "foleyseal,lsb (+external with --external-config)."),
    external_config: Path = typer.Option(None, "--external-config", help="TOML file of external watermarkers (watermarker tables with embed/detect command templates).", readable=False),
    quick: bool = typer.Option(False, "--quick", help="CI mode: 3 clips, 5 attacks, few null trials, no ViSQOL."),
    strength: float = typer.Option(1.0, "--strength", callback=mark_strength, help="Embedding strength for watermarkers that have one "
                                   "(FoleySeal: 0.05-1.0, 1.0 its default)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (1 = run in this process)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of every random choice (payloads, crops, noise)."),
    null_per_clip: int = typer.Option(None, "--null-per-clip", min=0,
                                      help="Null trials per clip and watermarker (default 40; quick 4)."),
    max_clips: int = typer.Option(None, "--max-clips", min=1, help="Use at most this many clips."),
    min_clip_s: float = typer.Option(None, "--min-clip-s", min=0.0, callback=finite,
                                     help="Use only clips at least this long, seconds (issue 2's matrix: 10)."),
    information: bool = typer.Option(False, "--information", help="Also measure, per attacked file, the "
                                     "information per coded bit its soft values carry about the embedded "
                                     "payload (FoleySeal; not after speed, tempo or pitch edits): tells "
                                     "failures no decoder could avoid from the others. About 1-2 s of CPU per trial."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Run even when optional packages "
                                       "of the `bench` extra are missing (pedalboard, pesq, visqol-python, numba, "
                                       "matplotlib): the attacks, quality measures and plots they make are "
                                       "left out (numba: ViSQOL measured slowly) and listed in summary.md. "
                                       "Without it such a run stops at once (exit 3) and names them. "
                                       "Resuming with the packages measures the missing quality."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary of the run."),
) -> None:
    """Run the robustness benchmark (corpus x attacks x watermarkers) and write its report to OUT.

    Exit 0 when every watermarker had trials measured; 3 when a setting is wrong, a needed package is missing, another run is writing to OUT, or a watermarker had no trial measured at all (every one failed: its report is still written, its figures read n/a); 130/143 when interrupted.
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    from benchmarks.attacks import load_attack_list, parse_attacks
    from benchmarks.jsonout import dumps
    from benchmarks.report import summarize
    from benchmarks.robustness import RESULTS_JSONL, BenchConfig, check_paths, check_requirements, run_benchmark
    from benchmarks.watermarkers import build_watermarkers

    if attacks is not None and attack_list:
        raise InputError("give either --attacks or --attack-list, not both")
    wm_names = [w.strip() for w in (watermarkers or "").split(",") if w.strip()]
    if not wm_names:
        wm_names = ["foleyseal", "lsb"] + (["external"] if external_config else [])
    wms = build_watermarkers(wm_names, external_config=external_config, strength=strength)
    chosen = load_attack_list(attack_list) if attack_list else parse_attacks(attacks) if attacks is not None else None
    extra = {"strength": strength, "workers": workers, "seed": seed, "information": information,
             "allow_missing": allow_missing}
    if null_per_clip is not None:
        extra["null_per_clip"] = null_per_clip
    if max_clips is not None:
        extra["max_clips"] = max_clips
    if min_clip_s is not None:
        extra["min_clip_s"] = min_clip_s
    if chosen is not None:
        extra["attacks"] = chosen
    if quick:
        cfg = BenchConfig.quick_defaults(corpus, out, wms, **extra)
    else:
        cfg = BenchConfig(corpus=corpus, out=out, watermarkers=wms,
                          attacks=extra.pop("attacks", None) or parse_attacks("all"), **extra)
    check_paths(cfg)
    cfg = check_requirements(cfg)
    if cfg.missing:
        typer.echo("warning: --allow-missing: packages missing (what they make is not measured, or "
                   "measured slowly): "
                   + "; ".join(r.describe() for r in cfg.missing), err=True)
    try:
        result = run_benchmark(cfg, show_progress=progress and not json_out)
    except KeyboardInterrupt:
        # "interrupted (SIGINT)" alone left the user to guess whether 30 minutes of trials were lost
        typer.echo(f"finished trials are kept in {Path(out) / RESULTS_JSONL}; run the same command again "
                   "to resume (finished trials are skipped)", err=True)
        raise
    s = summarize(result.rows)
    for name, why in result.unreadable:
        typer.echo(f"warning: {name} left out of the corpus: {why}", err=True)
    for warning in s["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    if json_out:
        typer.echo(dumps({
            "out": str(result.out), "files": [str(p) for p in result.files], "trials": len(result.rows),
            "ran": result.ran_trials, "resumed": result.skipped_trials, "remeasured": result.remeasured_trials,
            "errors": s["errors"], "warnings": s["warnings"],
            "unreadable": [{"file": f, "reason": why} for f, why in result.unreadable],
            "seconds": round(result.seconds, 1),
            "exact_by_kind": s["by_kind"], "nulls": s["nulls"],
        }, indent=2))
    else:
        again = (f"; {result.remeasured_trials} of them measured again: OUT held them for other inputs"
                 if result.remeasured_trials else "")
        typer.echo(f"{len(result.rows)} trials ({result.ran_trials} run, {result.skipped_trials} resumed{again}) "
                   f"in {result.seconds:.0f} s; {s['errors']} errors")
        for p in result.files:
            typer.echo(f"  wrote {p}")
    detections = [r for r in result.rows if r.get("kind") in ("attack", "null")]
    if detections and all(r.get("error") for r in detections):
        # No detection was measured: a broken tool or setting, not a result to read as all misses.
        first = next(r["error"] for r in detections)
        raise InputError(f"every trial failed; the first: {first}")
    if s["unmeasured"]:
        # Its cells read n/a, but a run that exits 0 is read as a complete comparison.
        names = ", ".join(repr(w) for w in s["unmeasured"])
        first = next(r["error"] for r in detections if r.get("watermarker") == s["unmeasured"][0])
        raise InputError(f"no trial of watermarker {names} was measured (every one failed; the others' "
                         f"results are written); the first error: {first}")


@app.command("attacks")
def attacks_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print the attacks and their parameters as JSON."),
) -> None:
    """List the registered attacks by name, with their kind and parameters."""
    from benchmarks.attacks import get_attack, list_attacks

    items = [{"name": n, "kind": get_attack(n).kind, **get_attack(n).params()} for n in list_attacks()]
    if json_out:
        typer.echo(json.dumps(items, indent=2))
        return
    for it in items:
        params = ", ".join(f"{k}={v}" for k, v in it.items() if k not in ("name", "kind", "type", "steps"))
        if "steps" in it:
            params = " -> ".join(s["name"] for s in it["steps"])
        typer.echo(f"{it['name']:42s} {it['kind']:8s} {it['type']}({params})")


from foleyseal.cli.verify import bench_load_cmd  # noqa: E402 - issue 6: the service load test

app.command("load")(bench_load_cmd)

from foleyseal.cli.bench_sync import sync_cmd  # noqa: E402 - issue 5: audio-visual sync of generated soundtracks

app.command("sync")(sync_cmd)

from foleyseal.cli.bench_speed import speed_cmd  # noqa: E402 - issues 2-6: pytest-benchmark speed benchmarks

app.command("speed")(speed_cmd)
