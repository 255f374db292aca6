"""``foleyseal watermark embed|detect``: the audio watermark on files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from foleyseal.cli import exit_codes
from foleyseal.cli.names import shown
from foleyseal.cli.numbers import mark_strength, p_text, p_value_threshold

if TYPE_CHECKING:
    from provenance.watermark.keys import WatermarkKey

app = typer.Typer(help="Embed or detect FoleySeal's keyed audio watermark.", no_args_is_help=True)


@app.command("embed")
def embed_cmd(
    input: Path = typer.Argument(..., help="Audio file (WAV, FLAC, OGG, Opus, MP3, M4A) or video (MP4, MOV, MKV, WebM).", readable=False),
    output: Path = typer.Argument(..., help="Where to write the marked file (format from its extension; an audio extension for a video "
                                "input writes its marked audio track alone).", readable=False),
    key: Path = typer.Option(..., "--key", help="Watermark key file (mode 0600; see `foleyseal keys new-watermark-key`).", readable=False),
    payload: str = typer.Option(..., "--payload", help="64-bit payload as 16 hex digits."),
    strength: float = typer.Option(1.0, "--strength", callback=mark_strength,
                                   help="Mark strength, 0.05-1.0 (1.0 = the default: a median SNR of about 30 dB on "
                                        "music and speech, 24-37 dB from clip to clip; lower values are quieter and "
                                        "may leave no mark that can be found)."),
    check: bool = typer.Option(True, "--check/--no-check",
                               help="Read the mark back from the file written, as `watermark detect` would, and "
                                    "refuse it (exit 3, OUTPUT left as it was) unless the payload is found."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Embed PAYLOAD into INPUT with KEY, writing OUTPUT atomically (exit 0; 3 on bad input, or
    when the mark cannot be read back: too little sound, too low a strength, a lossy encoder
    that took it, or audio under one 4.32 s block, of which only part of the payload fits; under
    1 s nothing is marked)."""
    from provenance.watermark.embed import payload_hex
    from provenance.watermark.files import embed_file
    from provenance.watermark.keys import load_key

    from foleyseal.cli.progress import file_progress
    from foleyseal.cli.published import say_if_resampled

    payload = payload_hex(payload, 64)  # validated before any work; " 0xABCD..." -> "abcd..."
    wm_key = load_key(key)
    with file_progress(input.name) as report:
        embed_file(input, output, wm_key, payload, strength=strength, confirm=check, with_store=False,
                   progress=report)
    say_if_resampled(input, output)  # as mark says it: a 44.1 kHz input into .opus is 48 kHz out
    if not check:
        _say_if_shorter_than_a_block(output)
    _say_if_a_sidecar_is_beside(output)
    _say_if_a_mark_was_replaced(input, output, wm_key, payload)
    if json_out:
        typer.echo(json.dumps({"input": str(input), "output": str(output), "payload": payload,
                               "key_id": wm_key.key_id, "strength": strength}))
    else:
        typer.echo(f"marked {shown(input)} -> {shown(output)} (payload {payload}, key {wm_key.key_id})")


def _say_if_shorter_than_a_block(output: Path) -> None:
    """A note on stderr when OUTPUT, marked without a read-back, is shorter than one payload
    block: its mark is found, but its payload may not be read (with the read-back, a payload that
    does not read back is refused and said)."""
    from provenance.core.io import audio_info
    from provenance.watermark.embed import READS_BACK_FROM_S, min_duration_s

    duration_s, block = audio_info(output).duration_s, min_duration_s()
    if duration_s < block:
        typer.echo(f"note: {output} is {duration_s:.2f} s long, shorter than one {block:.2f} s watermark block: "
                   "its mark can be found, but it holds only part of the coded payload, which may not be read (a "
                   f"verifier holding the manifest store names it more often; from {READS_BACK_FROM_S:g} s in most "
                   "files)", err=True)


def _say_if_a_mark_was_replaced(input: Path, output: Path, key: WatermarkKey, payload: str) -> None:
    """A note on stderr when INPUT already carried a mark of this key with another payload: the
    new one replaces it, and whatever that payload led to (a store's record) is no longer found
    in OUTPUT. `mark` says the same (and records the payload it replaces); this command cannot."""
    from provenance.core.errors import FoleySealError
    from provenance.watermark.files import prior_payload

    try:
        before = prior_payload(input, key)
    except FoleySealError:  # read once already; a note is not worth an error
        return
    if before is not None and before != payload:
        typer.echo(f"note: {input} already carried a watermark of this key, payload {before}; {output} carries "
                   f"{payload} in its place, and the old payload (and any record it led to) is no longer found in it",
                   err=True)


_DAMAGE = ("cannot decode the audio", "file is truncated", "Ogg stream is truncated")
"""How the reader's errors about a damaged file begin: for those, ``detect`` points to ``verify``."""


@app.command("detect")
def detect_cmd(
    file: Path = typer.Argument(..., help="Audio or video file to examine.", readable=False),
    key: Path = typer.Option(..., "--key", help="Watermark key file.", readable=False),
    threshold: float = typer.Option(1e-6, "--threshold", callback=p_value_threshold,
                                    help="p-value at or below which the mark counts as found (between 0 and 1)."),
    json_out: bool = typer.Option(False, "--json", help="Print the detection report as JSON."),
    track: int | None = typer.Option(None, "--track", min=0, metavar="N",
                                     help="Which audio track of a video to read (0 is the first; default: the main one)."),
) -> None:
    """Look for the watermark of KEY in FILE. Exit 0 if found, 1 if not, 3 on bad input."""
    from provenance.core.errors import FormatError
    from provenance.watermark.files import detect_file
    from provenance.watermark.keys import load_key

    from foleyseal.cli.progress import file_progress

    wm_key = load_key(key)
    try:
        with file_progress(file.name) as report:
            det = detect_file(file, wm_key, threshold=threshold, track=track,
                              progress=lambda share: report("detecting", share))
    except FormatError as exc:
        if not exc.message.startswith(_DAMAGE):
            raise
        # This reader stops at damage by design (it also reads what is about to be marked).
        raise FormatError(f"{exc.message.rstrip('.')}; `foleyseal verify` reads a damaged file past the damage and "
                          "checks the watermark in what decodes", path=exc.path) from exc
    if json_out:
        typer.echo(json.dumps({"file": str(file), **det.to_dict()}, indent=2))
    else:
        typer.echo(f"{file}: watermark {'FOUND' if det.found else 'not found'}")
        typer.echo(f"  p-value        {p_text(det.p_value, 3)} (threshold {det.threshold:g})")
        if det.found:
            typer.echo(f"  payload        {det.payload or 'unreadable (CRC failed)'}")
            typer.echo(f"  bit confidence {det.bit_confidence:.2f}")
            if det.speed != 1.0 or det.pitch_semitones != 0.0:
                typer.echo(f"  edited         speed x{det.speed:.4f}, pitch {det.pitch_semitones:+.2f} semitones")
            for s in det.segments:
                typer.echo(f"  segment        {s.start_s:8.2f} s - {s.end_s:8.2f} s  payload {s.payload}")
    raise typer.Exit(exit_codes.OK if det.found else exit_codes.NOT_FOUND)


def _say_if_a_sidecar_is_beside(output: Path) -> None:
    """A note on stderr when a ``.c2pa`` sidecar lies beside the output just written: it holds the
    credentials of other bytes (most often the file this one replaced, marked and signed by an
    earlier `mark`), and a verifier reads it as this file's and calls the file tampered."""
    from provenance.c2pa.sidecar import find_sidecar

    stale = find_sidecar(output)
    if stale is not None:
        typer.echo(f"note: {stale} lies beside {output} but was not written for it (it holds the credentials of "
                   f"other bytes, perhaps the file {output.name} replaced): verifiers read it as {output.name}'s "
                   "and say it was changed after signing; remove it, or sign this file (`foleyseal sign`)",
                   err=True)
