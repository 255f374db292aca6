"""``foleyseal bench sync``: onsets of generated soundtracks vs. known visual events."""

from __future__ import annotations

from pathlib import Path

import typer

from foleyseal.cli.numbers import finite


def sync_cmd(
    videos: Path = typer.Option(..., "--videos", help="Directory with the videos and their EVENTS.json.", readable=False),
    out: Path = typer.Option(None, "--out", help="Directory for sync.json and sync.md (default: print only).", readable=False),
    prompt: str = typer.Option("", "--prompt", help="Prompt for every video (default: none, palette from the visuals)."),
    negative_prompt: str = typer.Option("", "--negative-prompt", help="Negative prompt for every video."),
    seed: int = typer.Option(0, "--seed", help="Generation seed."),
    generator: str = typer.Option("builtin", "--generator", help="Generator to test."),
    tolerance_ms: float = typer.Option(100.0, "--tolerance-ms", min=1.0, callback=finite, help="Largest onset-event distance that counts as a match."),
    json_out: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Generate a soundtrack for each video in EVENTS.json and score its sync with the visual events.

    Reports timing error, recall, precision and the global audio-visual offset against the sync targets. Exit 0 when every target that could be measured is met (one without data, such as real_recall on a set without real videos, reads n/a), 1 when one is missed or none could be measured, 3 on bad input.
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    from rich.progress import Progress

    from benchmarks.jsonout import dumps  # null, not NaN, for a measure without a value
    from benchmarks.sync import run_sync_benchmark
    from provenance.core.atomic import atomic_write_bytes, check_output_folder
    from provenance.core.errors import InputError

    if not (videos / "EVENTS.json").is_file():
        raise InputError("no EVENTS.json in the videos directory", path=videos)
    if out is not None:
        check_output_folder(out, files=("sync.json", "sync.md"))  # before every video is generated, not after
    if json_out:
        report = run_sync_benchmark(videos, prompt=prompt, negative_prompt=negative_prompt, seed=seed,
                                    generator=generator, tolerance_s=tolerance_ms / 1000)
    else:
        with Progress(transient=True) as bar:
            task = bar.add_task("sync", total=None)

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, total=total, description=name)

            report = run_sync_benchmark(videos, prompt=prompt, negative_prompt=negative_prompt, seed=seed,
                                        generator=generator, tolerance_s=tolerance_ms / 1000, progress=progress)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "sync.json", (dumps(report.to_dict(), indent=2) + "\n").encode())
        atomic_write_bytes(out / "sync.md", report.markdown().encode())
    if json_out:
        typer.echo(dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.markdown())
        if out is not None:
            typer.echo(f"wrote {out / 'sync.json'} and {out / 'sync.md'}")
    raise typer.Exit(0 if report.passed() else 1)
