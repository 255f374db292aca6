"""``foleyseal generate``: a soundtrack for a video, watermarked, signed and stored."""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from foleyseal.cli.numbers import finite
from foleyseal.cli.names import shown
from foleyseal.cli.published import already_published, say_what_was_written

if TYPE_CHECKING:
    from provenance.core.config import Settings
    from v2a_core.pipeline import GenerateOptions, GenerateResult

_HOME_HELP = "FoleySeal home directory (default: $FOLEYSEAL_HOME or the per-user config dir)."


def _default_output(video: Path) -> Path:
    return Path.cwd() / f"{video.stem}.foleyseal.mp4"


@contextlib.contextmanager
def _loudness_warnings_on_stderr() -> Iterator[None]:
    """Show a missed loudness target as one ``warning:`` line, not as Python's warning with the
    source file and line of the mixer; other warnings are shown as before."""
    from v2a_core.render.master import LoudnessWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if issubclass(category, LoudnessWarning):
                typer.echo(f"warning: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _level(value: float, unit: str) -> str:
    """A measured level for people: ``-16.0 LUFS``, or ``no LUFS measured`` for -inf/NaN."""
    return f"{value:.1f} {unit}" if math.isfinite(value) else f"no {unit} measured"


def _check_seed(seed: int, candidates: int) -> None:
    """A usage error (exit 2) for a seed, or a candidate's seed SEED+N-1, outside 0..2^32-1,
    before any work (the API's own check, :func:`v2a_core.pipeline.check_seeds`)."""
    from provenance.core.errors import InputError
    from v2a_core.pipeline import check_seeds

    try:
        check_seeds(seed, candidates)
    except InputError as exc:
        raise typer.BadParameter(exc.message, param_hint="'--seed'") from None


def _list_sounds(value: bool) -> None:
    if value:
        from v2a_core.plan.taxonomy import markdown

        typer.echo(markdown(), nl=False)
        raise typer.Exit()


def _known_generator(name: str) -> str:
    """typer callback: an unknown --generator is a usage error (exit 2) listing the known ones."""
    from v2a_core.generators.registry import available

    if name not in (known := available()):
        raise typer.BadParameter(f"unknown generator {name!r}; available: {', '.join(known)}")
    return name


def generate_cmd(
    video: Path = typer.Argument(..., help="The video to score (any container/codec FFmpeg reads).", readable=False),
    output: Path = typer.Option(
        None, "-o", "--output",
        help="Output file: a video (.mp4/.mov/.m4v/.mkv: video copied, AAC soundtrack; .webm for "
        "VP8/VP9/AV1 video, Opus soundtrack) or audio (.wav/.flac/.mp3/.m4a/.ogg/.opus). MKV, WebM, "
        "Ogg and Opus get their C2PA manifest as a .c2pa sidecar. Default: ./VIDEO.foleyseal.mp4.",
        readable=False,
    ),
    list_sounds: bool = typer.Option(
        False, "--list-sounds", callback=_list_sounds, is_eager=True, expose_value=False,
        help="Print the sounds the built-in generator makes, with the words a prompt names them by, and exit.",
    ),
    prompt: str = typer.Option(
        "", "--prompt", "-p",
        help=("What the soundtrack should contain, e.g. 'rain, thunder, tension' (words that name no sound "
              "the generator makes are listed in a note)."),
    ),
    negative_prompt: str = typer.Option(
        "", "--negative-prompt", "-n",
        help=("What must not be heard (strict), e.g. 'music' or 'vocals' (words that remove nothing are "
              "listed in a note)."),
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed, 0 to 4294967295 (2^32 - 1): the same seed, video and prompts give the same soundtrack "
        "(each output still carries its own watermark payload).",
    ),
    candidates: int = typer.Option(  # max = pipeline.MAX_CANDIDATES (not imported here: the CLI starts fast)
        1, "--candidates", min=1, max=32, help="Render N variants (seeds SEED..SEED+N-1) as OUTPUT-1, OUTPUT-2...",
    ),
    generator: str = typer.Option("builtin", "--generator", callback=_known_generator,
                                  help="Generator name: builtin, external, or an installed plug-in (entry point group "
                                       "foleyseal.generators)."),
    generator_command: str = typer.Option(
        None, "--generator-command",
        help="Command template for --generator external, e.g. \"python demo.py --video {video} --prompt {prompt} "
        "--negative_prompt {negative_prompt} --output {output_dir}\" (run without a shell).",
    ),
    generator_timeout: float = typer.Option(
        3600.0, "--generator-timeout", min=0.001, metavar="SECONDS",
        help="Stop the --generator external command (and everything it started) after this many seconds.",
    ),
    stems: Path = typer.Option(None, "--stems", help="Directory for one marked stem per layer (FLAC).", readable=False),
    cue_sheet: Path = typer.Option(None, "--cue-sheet", help="Write the cue sheet (JSON) here.", readable=False),
    loudness: float = typer.Option(-16.0, "--loudness", min=-70.0, max=-5.0, callback=finite,
                                   help="Target integrated loudness, LUFS (true peak stays <= -1 dBTP)."),
    duration: float = typer.Option(None, "--duration", min=0.1, callback=finite, help="Score only the first SECONDS of the video."),
    private_prompts: bool = typer.Option(False, "--private-prompts", help="Leave the prompts, and the sound palette and exclusions they chose, out of the signed record and the store (a --cue-sheet, the user's own file, keeps them)."),
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary (no progress bars)."),
) -> None:
    """Generate a soundtrack for VIDEO, watermark it, sign it (C2PA) and store its record.

    Every output, candidate and stem is marked: there is no way to write an unmarked one (the mark is read back before publishing; a stem too silent to carry it is left out, with a note).

    Exit 0 on success; 2 on a usage error (a seed outside 0..2^32-1, an unknown --generator); 3 on bad input (no video stream, corrupt or truncated file, video or --duration too short, an output path that is the input or another output, a soundtrack too silent to carry the watermark, a failing generator, bad keys).
    """
    from provenance.core.config import load_settings
    from v2a_core.pipeline import GenerateOptions

    _check_seed(seed, candidates)
    if generator_command and generator == "builtin":
        generator = "external"
    settings = load_settings(home)
    out = output or _default_output(video)
    options = GenerateOptions(
        prompt=prompt,
        negative_prompt=negative_prompt,
        seed=seed,
        candidates=candidates,
        loudness_lufs=loudness,
        generator=generator,
        generator_command=generator_command,
        generator_timeout_s=generator_timeout,
        stems_dir=stems,
        cue_sheet_path=cue_sheet,
        include_prompts=not private_prompts,
        duration_s=duration,
    )
    with _loudness_warnings_on_stderr(), say_what_was_written():
        result = _run(video, out, options, settings, progress_bars=not json_out)
    with already_published(*(f.path for f in [*result.outputs, *result.stems]), *result.cue_sheets):
        _say_generated(video, result, json_out)


def _say_generated(video: Path, result: GenerateResult, json_out: bool) -> None:
    """generate's report of what it wrote."""
    from v2a_core.pipeline import finite_or_none

    summary = {
        "video": str(video),
        "outputs": [
            {"path": str(f.path), "seed": f.seed, "payload": f.payload, "record_id": f.record_id}
            for f in result.outputs
        ],
        "stems": [{"path": str(f.path), "layer": f.layer, "payload": f.payload} for f in result.stems],
        "cue_sheets": [str(p) for p in result.cue_sheets],
        # null, not -Infinity/NaN: JSON has neither (a silent or unmeasured soundtrack)
        "loudness_lufs": [finite_or_none(x) for x in result.loudness_lufs],
        "true_peak_dbtp": [finite_or_none(x) for x in result.true_peak_dbtp],
        "notes": list(result.notes),
    }
    if json_out:
        typer.echo(json.dumps(summary, indent=2, allow_nan=False))
    else:
        for f, lufs, tp in zip(result.outputs, result.loudness_lufs, result.true_peak_dbtp):
            typer.echo(f"wrote {shown(f.path)} (seed {f.seed}, {_level(lufs, 'LUFS')}, {_level(tp, 'dBTP')}, "
                       f"watermark payload {f.payload})")
        for f in result.stems:
            typer.echo(f"  stem {f.layer}: {shown(f.path)}")
        for p in result.cue_sheets:
            typer.echo(f"  cue sheet: {shown(p)}")
        for note in result.notes:
            typer.echo(f"  note: {note}")


def _run(video: Path, out: Path, options: GenerateOptions, settings: Settings, *,
         progress_bars: bool) -> GenerateResult:
    """``generate()``, with a progress bar per stage on stderr where a person watches (as `mark`
    draws its bars), unless ``progress_bars`` is False (``--json``): piped or redirected, stdout
    held the bars before the result lines."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from foleyseal.cli.progress import wanted
    from v2a_core.pipeline import generate

    if not progress_bars or not wanted():
        return generate(video, out, options, settings=settings)
    with Progress(
        TextColumn("{task.description:<14}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), transient=False, console=Console(stderr=True),
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=1.0)
            bar.update(tasks[stage], completed=max(0.0, min(1.0, fraction)))

        return generate(video, out, options, settings=settings, progress=progress)
