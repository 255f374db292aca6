"""``foleyseal sign`` and ``foleyseal mark``: C2PA credentials, and the full marking job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from foleyseal.cli.names import shown

if TYPE_CHECKING:
    from provenance.core.c2pa_types import MarkResult

_HOME_HELP = "FoleySeal home directory (default: $FOLEYSEAL_HOME or the per-user config dir)."


def _settings(home: Path | None):
    from provenance.core.config import load_settings

    return load_settings(home)


def sign_cmd(
    input: Path = typer.Argument(..., help="Audio or video file (WAV, FLAC, MP3, M4A, MP4, MOV; Ogg/Opus, MKV, WebM, AIFF, CAF, W64 and AU get a sidecar).", readable=False),
    output: Path = typer.Argument(..., help="Where to write the signed file (same format as INPUT; INPUT itself signs it in place).", readable=False),
    generated: bool = typer.Option(
        False, "--generated/--edited",
        help="Disclose the audio as AI-generated (c2pa.created, trainedAlgorithmicMedia), or as an "
        "existing file that was opened (default).",
    ),
    title: str = typer.Option(None, "--title", help="Title recorded in the manifest (default: OUTPUT's name)."),
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Add a signed C2PA manifest to INPUT, writing OUTPUT atomically.

    No watermark and no store record: use `foleyseal mark` for the full job. OUTPUT may be INPUT: the file is then signed in place (its audio is unchanged; credentials it carried become the new manifest's parent). Exit 0, or 3 on bad input or keys.
    """
    from provenance.sign import sign

    settings = _settings(home)
    changed = _changed_since_signed(input)  # read before: OUTPUT may be INPUT
    result = sign(input, output, settings=settings, generated=generated, title=title)
    _say_changed_since_signed(input, changed)
    if json_out:
        typer.echo(json.dumps({
            "input": str(input), "output": str(result.output), "mime_type": result.mime_type,
            "manifest_embedded": result.manifest_embedded,
            "sidecar": str(result.sidecar) if result.sidecar else None,
            "manifest_id": result.manifest_label, "asset_sha256": result.asset_sha256,
        }, indent=2))
    else:
        where = "embedded" if result.manifest_embedded else f"sidecar {result.sidecar}"
        typer.echo(f"signed {shown(input)} -> {shown(output)} (manifest {result.manifest_label}, {where})")


def mark_cmd(
    input: Path = typer.Argument(..., help="Audio (WAV, FLAC, MP3, M4A, Ogg, Opus, AIFF, CAF, W64, AU) or video (MP4, MOV, MKV, WebM).", readable=False),
    output: Path = typer.Argument(..., help="Where to write the marked, signed file (format from its extension; an "
                                            "audio extension for a video input writes its marked audio track alone).", readable=False),
    generated: bool = typer.Option(
        False, "--generated",
        help="The audio is AI-generated: disclose it (c2pa.created, trainedAlgorithmicMedia). "
        "Default: someone else's file, recorded as opened and edited.",
    ),
    title: str = typer.Option(None, "--title", help="Title for the manifest and the store (default: OUTPUT's name)."),
    source_video: Path = typer.Option(None, "--source-video", help="Video the soundtrack was made for (ingredient + SHA-256).", readable=False),
    record: Path = typer.Option(None, "--generation-record", help="JSON file with the generation record (generator, prompt, seed, parameters...).", readable=False),
    no_prompts: bool = typer.Option(False, "--no-prompts", help="Leave prompt and negative prompt out of the manifest."),
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Watermark, sign and record INPUT into OUTPUT: the whole job.

    Allocates a new payload, embeds the watermark, signs a C2PA manifest, records it in the manifest store, and publishes OUTPUT atomically. On failure nothing is left behind.

    Exit 0, or 3 on bad input, keys or store.
    """
    from provenance.core.errors import InputError
    from provenance.mark import mark

    gen_record = None
    if record is not None:
        try:
            gen_record = json.loads(record.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the generation record: {exc}", path=record) from exc
        if not isinstance(gen_record, dict):
            raise InputError("the generation record must be a JSON object", path=record)
    from foleyseal.cli.progress import file_progress
    from foleyseal.cli.published import already_published, say_what_was_written

    changed = _changed_since_signed(input)  # read before: OUTPUT may be INPUT
    with say_what_was_written(), file_progress(input.name) as report:
        result = mark(
            input, output,
            settings=_settings(home),
            generation_record=gen_record,
            source_video=source_video,
            include_prompts=not no_prompts,
            generated=generated,
            title=title,
            progress=report,
        )
    with already_published(result.output, result.sidecar):
        _say_changed_since_signed(input, changed)
        _say_marked(input, result, json_out)


def _say_marked(input: Path, result: MarkResult, json_out: bool) -> None:
    """mark's report: notes on stderr, then the result."""
    from foleyseal.cli.published import say_if_resampled

    say_if_resampled(input, result.output)
    if result.replaced_payload is not None:
        record = f"record {result.replaced_record}" if result.replaced_record else "no record in this store"
        typer.echo(f"note: {input} already carried this operator's watermark, payload {result.replaced_payload} "
                   f"({record}); {result.output} carries payload {result.payload} in its place, and its "
                   "manifest records the one it replaces", err=True)
    if json_out:
        typer.echo(json.dumps({"input": str(input), **result.to_dict()}, indent=2))
    else:
        where = "embedded" if result.manifest_embedded else f"sidecar {result.sidecar}"
        typer.echo(f"marked {shown(input)} -> {shown(result.output)}")
        typer.echo(f"  payload   {result.payload}")
        typer.echo(f"  manifest  {result.record.id} ({where})")
        typer.echo(f"  sha256    {result.record.asset_sha256}")


def _changed_since_signed(input: Path) -> tuple[str, ...]:
    """The failure codes of the Content Credentials INPUT carries that say it changed after it was
    signed (() for none, or for credentials that cannot be read: the signing names those)."""
    from provenance.c2pa.read import read_credentials
    from provenance.core.errors import FoleySealError

    from detectors.credentials import changed_since_signed

    try:
        return changed_since_signed(read_credentials(input))
    except FoleySealError:
        return ()


def _say_changed_since_signed(input: Path, codes: tuple[str, ...]) -> None:
    """A note on stderr, once the output is written, when INPUT's credentials no longer validate
    (``codes``): the new manifest records them as its parent's, so verifiers will say the parent
    had been changed; the person signing should know it now, not learn it from a verifier. Said
    before the work, it announced a manifest that a failure then never wrote."""
    if codes:
        typer.echo(f"note: {shown(input)} carried Content Credentials that do not validate ({', '.join(codes)}): "
                   "it was changed after it was signed; the new manifest records them as its parent's, and "
                   "verifiers will say so", err=True)
