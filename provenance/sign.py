"""``sign``: C2PA credentials alone, with the operator's identity (no watermark, no store record).

The step of :func:`provenance.mark.mark` that signs, for a file that should not or cannot carry
the watermark (too short or silent, or already published unmarked). The file keeps its format and
its bytes: the manifest is embedded, or written as a ``.c2pa`` sidecar for the formats c2pa cannot
embed into (:data:`provenance.c2pa.sign.SIDECAR_ONLY`).
"""

from __future__ import annotations

import os
from pathlib import Path

from provenance.c2pa.manifest import Ingredient, ManifestSpec, generation_assertion
from provenance.c2pa.sign import SignResult, mime_for, sign_file
from provenance.core.arguments import flag_argument, path_argument, text_argument
from provenance.core.atomic import same_file
from provenance.core.config import Settings, load_settings
from provenance.core.errors import InputError
from provenance.core.text import valid_unicode
from provenance.keys.signers import load_identity


def sign(
    input_path: str | Path,
    output_path: str | Path,
    *,
    settings: Settings | None = None,
    generated: bool = False,
    title: str | None = None,
) -> SignResult:
    """Sign ``input_path`` into ``output_path`` (same format) with the operator's signing key.

    ``generated=True`` discloses the audio as AI-generated (``c2pa.created`` with
    ``trainedAlgorithmicMedia``); otherwise the input is an existing file that was opened
    (``c2pa.opened``, the input as parent ingredient, so its own credentials become the new
    manifest's history). ``output_path`` may be ``input_path``: signed in place, atomically (through
    a symbolic link, the file it points to).
    ``title`` defaults to the output's name. ``settings`` default to
    :func:`provenance.core.config.load_settings`.

    Raises :class:`InputError` for an output of another format, :class:`FormatError` for a
    truncated or corrupt input (a manifest vouches for the bytes it binds), :class:`KeyFileError`
    for a missing or unusable signing key, :class:`SigningError`; on any error nothing is written.
    """
    input_path, output_path = path_argument("input_path", input_path), path_argument("output_path", output_path)
    generated, title = flag_argument("generated", generated), text_argument("title", title)
    settings = settings or load_settings()
    if not input_path.is_file():  # said before anything about the output's name
        raise InputError("input file not found" if not input_path.exists() else "input is not a regular file",
                         path=input_path)
    if output_path.is_symlink() and same_file(input_path, output_path):
        # in place through a link: the rename would put the signed copy in the link's place and
        # leave the file it points to unsigned
        output_path = Path(os.path.realpath(output_path))
    mime = mime_for(output_path)
    if mime != mime_for(input_path):
        raise InputError(f"sign keeps the format: the output must be a {input_path.suffix} file too",
                         path=output_path)
    identity = load_identity(settings)
    parent = None if generated else Ingredient(input_path, mime, "parentOf", title=input_path.name)
    spec = ManifestSpec(
        mime_type=mime,
        title=valid_unicode(title or output_path.name),
        generated=generated,
        generation_record=generation_assertion(None, operation="sign"),
        parent=parent,
    )
    return sign_file(input_path, output_path, spec, identity)
