"""Signing assets with C2PA manifests: embedded, or detached as a sidecar; the bytes the store keeps.

Formats c2pa embeds into: WAV, FLAC, MP3, M4A (AAC in MP4), MP4 and MOV. Ogg (Vorbis, Opus),
Matroska and WebM, AIFF, CAF, W64 and AU (:data:`SIDECAR_ONLY`) cannot carry a manifest, so
those get a *sidecar*: ``song.ogg.c2pa`` beside ``song.ogg``,
holding the detached manifest (see :mod:`provenance.c2pa.sidecar` for the naming).

The manifest store keeps, for every published file, a manifest store (``application/c2pa``
bytes) that validates against that file's exact bytes through
``Reader(mime, file, manifest_bytes)``:

* embeddable formats: the bytes the embedding sign returns, i.e. the very manifest inside the
  file (same label, same claim). Its hard binding (a data hash that excludes the embedded
  manifest's own bytes, or a BMFF hash for MP4/M4A/MOV) covers the published file.
* Ogg/Opus: the detached manifest (``set_no_embed()``) over the file's bytes, which is also
  the sidecar.

Measured with c2pa-python 0.38.1, and the reason for this choice: a *second*, detached
manifest signed over the already-signed file validates for WAV only; for FLAC and MP3 it
fails with ``assertion.dataHash.mismatch`` and for M4A/MP4 with ``assertion.bmffHash.mismatch``
(the format handlers hash a signed file differently when it carries a manifest). A manifest
over the unsigned watermarked audio would validate only against bytes nobody outside
FoleySeal ever holds. The published file is what circulates, so that is what the stored
manifest binds; a copy stripped of its credentials (re-encoded, remuxed) is found through the
watermark payload, and the stored manifest then proves what the original file was.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa

from provenance.c2pa.manifest import ManifestSpec, build_definition
from provenance.c2pa.sidecar import find_sidecar, sidecar_path
from provenance.core.atomic import atomic_path, atomic_write_bytes
from provenance.core.digest import sha256_file
from provenance.core.errors import FormatError, InputError, SigningError
from provenance.core.interrupts import stop_signals_deferred
from provenance.core.io.headers import is_rf64
from provenance.core.io.read import check_decodes
from provenance.keys.signers import SigningIdentity

MIME_BY_SUFFIX = {
    ".wav": "audio/wav",
    ".wave": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mkv": "video/x-matroska",
    ".mka": "audio/x-matroska",
    ".webm": "video/webm",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".caf": "audio/x-caf",
    ".w64": "audio/x-w64",
    ".au": "audio/basic",
}
EMBEDDABLE = frozenset({"audio/wav", "audio/flac", "audio/mpeg", "audio/mp4", "video/mp4", "video/quicktime"})
# c2pa cannot embed into these, but signs them detached: the manifest binds the file's exact
# bytes and travels as a sidecar.
SIDECAR_ONLY = frozenset({"audio/ogg", "audio/x-matroska", "video/x-matroska", "video/webm", "audio/aiff",
                          "audio/x-caf", "audio/x-w64", "audio/basic"})
_IO_BLOCK = 1 << 20


def mime_for(path: str | Path) -> str:
    """MIME type FoleySeal signs ``path`` as, from its extension (:class:`FormatError` if unknown)."""
    suffix = Path(path).suffix.lower()
    try:
        return MIME_BY_SUFFIX[suffix]
    except KeyError:
        raise FormatError(
            f"cannot sign '{suffix or '(no extension)'}' files; supported: "
            + ", ".join(sorted(MIME_BY_SUFFIX)),
            path=path,
        ) from None


def can_embed(mime_type: str) -> bool:
    return mime_type in EMBEDDABLE


RF64_FORMAT = "audio/x-rf64"
"""The type an RF64 ``.wav`` is given to c2pa: one it does not parse (as for Ogg), so the manifest
binds the file's bytes whole, from a sidecar. As ``audio/wav`` c2pa expects ``RIFF`` and fails."""


def c2pa_format(path: Path, mime_type: str) -> str:
    """The type to hand c2pa for the file at ``path``, named as ``mime_type``."""
    return RF64_FORMAT if mime_type == "audio/wav" and is_rf64(Path(path)) else mime_type


def embeds_into(path: Path, mime_type: str) -> bool:
    """Whether the file at ``path``, of ``mime_type``, gets its manifest embedded (else a sidecar):
    a ``.wav`` that is RF64 (over 4 GiB, or written so) is one c2pa cannot parse."""
    return can_embed(mime_type) and not is_rf64(Path(path))


_TRUST_FAILURES = ("signingCredential.", "timeStamp.")
"""Failure codes about whom to trust (no trust anchors are given here), not about the file."""


def _sidecar_provenance(path: Path, mime_type: str) -> tuple[bytes, str, dict[str, Any]] | None:
    """The manifest store a sidecar beside ``path`` holds for it, its active manifest's label and
    its validation results, or None.

    c2pa reads an ingredient's provenance from the ingredient's bytes only: for the formats it
    can only sign with a sidecar (Ogg, AIFF...) the ingredient would lose its history, and a
    re-signed file would no longer say where it came from. Validated without trust anchors, as
    c2pa validates an embedded ingredient manifest; a sidecar that does not match the file (its
    hash or signature fails) is left out."""
    if embeds_into(path, mime_type):
        return None
    sidecar = find_sidecar(path)
    if sidecar is None:
        return None
    try:
        manifest = sidecar.read_bytes()
        with open(path, "rb") as fh, stop_signals_deferred(), c2pa.Reader(c2pa_format(path, mime_type), fh, manifest) as reader:
            store = json.loads(reader.json())  # signals wait: see _sign
    except (OSError, ValueError, c2pa.C2paError):
        return None
    active, results = store.get("active_manifest"), store.get("validation_results")
    if not active or not isinstance(results, dict):
        return None
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    if any(not code.startswith(_TRUST_FAILURES) for code in failures):
        return None  # e.g. assertion.dataHash.mismatch: the sidecar of another file, or the file was edited
    return manifest, active, results


def _builder(spec: ManifestSpec, *, embed: bool) -> c2pa.Builder:
    definition_json = json.dumps(build_definition(spec))
    try:
        builder = c2pa.Builder(definition_json)
    except c2pa.C2paError as exc:
        if "StringTooLong" in str(exc):  # c2pa takes a manifest definition of about 1 MB at most
            raise InputError(f"the manifest would be too large for C2PA ({len(definition_json)} bytes of JSON): "
                             "shorten the title or the generation record") from exc
        raise SigningError(f"c2pa refused the manifest: {exc}") from exc
    try:
        if not embed:
            builder.set_no_embed()
        for ing in spec.ingredients():
            definition = ing.definition()
            carried = _sidecar_provenance(ing.path, ing.mime_type)
            if carried is not None:
                manifest, active, results = carried
                resource = f"{ing.label}.c2pa"
                builder.add_resource(resource, io.BytesIO(manifest))
                definition.update(
                    manifest_data={"format": "application/c2pa", "identifier": resource},
                    active_manifest=active,
                    validation_results=results,
                )
            with open(ing.path, "rb") as fh:
                builder.add_ingredient(definition, c2pa_format(ing.path, ing.mime_type), fh)
    except OSError as exc:
        builder.close()
        raise InputError(f"cannot read ingredient: {exc.strerror}", path=exc.filename) from exc
    except c2pa.C2paError as exc:
        builder.close()
        raise SigningError(f"c2pa refused the manifest: {exc}") from exc
    return builder


def _sign(
    spec: ManifestSpec,
    identity: SigningIdentity,
    src: Path,
    dst: Any,
    *,
    embed: bool,
    mime_type: str,
) -> bytes:
    builder = _builder(spec, embed=embed)
    signer = identity.signer()
    try:
        # c2pa reads and writes the streams through Python callbacks called from its native code;
        # a KeyboardInterrupt raised in one aborts the whole process (a Rust panic), so stop
        # signals wait until c2pa returns.
        with open(src, "rb") as fh, stop_signals_deferred():
            return builder.sign(signer, mime_type, fh, dst)
    except c2pa.C2paError as exc:
        if isinstance(exc, c2pa.C2paError.NotSupported):
            raise FormatError(f"c2pa cannot sign {mime_type} files: {exc}", path=src) from exc
        identity.raise_for_failure(exc, path=src)
        raise  # pragma: no cover - raise_for_failure always raises
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=src) from exc
    finally:
        signer.close()
        builder.close()


def sign_embedded(spec: ManifestSpec, identity: SigningIdentity, src: Path, dst: Path) -> bytes:
    """Write ``src`` + an embedded manifest to ``dst`` (a temporary path the caller renames)."""
    with open(dst, "w+b") as out:
        manifest = _sign(spec, identity, src, out, embed=True, mime_type=spec.mime_type)
        out.flush()
        os.fsync(out.fileno())
    return manifest


class _Discard(io.RawIOBase):
    """A seekable sink: c2pa copies the asset to the destination even when it embeds nothing."""

    def __init__(self) -> None:
        self._pos = 0
        self._end = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = len(b)
        self._pos += n
        self._end = max(self._end, self._pos)
        return n

    def readinto(self, b: Any) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


def sign_detached(spec: ManifestSpec, identity: SigningIdentity, asset: Path) -> bytes:
    """A detached manifest store (``application/c2pa`` bytes) bound to ``asset``'s exact bytes."""
    return _sign(spec, identity, asset, _Discard(), embed=False, mime_type=c2pa_format(asset, spec.mime_type))


@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_file` wrote."""

    output: Path
    mime_type: str
    manifest_embedded: bool
    sidecar: Path | None
    manifest: bytes
    """Manifest store bytes that validate against the published ``output`` (for the store)."""
    manifest_label: str
    """Label (id) of the active manifest, ``urn:c2pa:<uuid4>``."""
    asset_sha256: str
    """SHA-256 of the published ``output`` bytes."""


def sign_to(spec: ManifestSpec, identity: SigningIdentity, src: Path, tmp_out: Path) -> tuple[bool, bytes, str]:
    """Sign ``src`` into ``tmp_out`` (not yet published).

    Returns ``(embedded, manifest, asset_sha256)``: ``manifest`` validates against the bytes
    now in ``tmp_out``. For a format c2pa cannot embed into, ``tmp_out`` is a byte copy of
    ``src`` and ``manifest`` is its detached manifest (the caller writes it as the sidecar).
    """
    if embeds_into(src, spec.mime_type):
        manifest = sign_embedded(spec, identity, src, tmp_out)
        return True, manifest, sha256_file(tmp_out)
    if spec.mime_type in SIDECAR_ONLY or can_embed(spec.mime_type):  # the latter: RF64
        if Path(src).resolve() != Path(tmp_out).resolve():
            with open(src, "rb") as fi, open(tmp_out, "wb") as fo:
                for block in iter(lambda: fi.read(_IO_BLOCK), b""):
                    fo.write(block)
        manifest = sign_detached(spec, identity, tmp_out)
        return False, manifest, sha256_file(tmp_out)
    raise FormatError(f"cannot sign {spec.mime_type} files", path=src)


_FAMILIES = {"audio/mp4": "ISO BMFF", "video/mp4": "ISO BMFF", "video/quicktime": "ISO BMFF",
             "audio/x-matroska": "Matroska", "video/x-matroska": "Matroska", "video/webm": "Matroska"}
"""MIME types that c2pa reads with one parser (an M4A named .mp4 is still an M4A)."""


def content_mime(path: Path) -> str | None:
    """The MIME type of what ``path`` holds, judged by its bytes, not its name (FLAC named
    ``.wav``); None when it is not audio, or a video without audio, that can be told."""
    from provenance.core.errors import FoleySealError
    from provenance.core.io import audio_info

    try:
        fmt = audio_info(path).format
    except FoleySealError:
        return None
    return MIME_BY_SUFFIX.get(f".{fmt.lower()}")


def check_content_matches(src: Path, mime: str) -> None:
    """:class:`FormatError` when ``src`` holds another format than ``mime``, the type its name
    gives (c2pa reads a file by the type it is given, and failed on such a file with an
    "Unknown error", or said it cannot sign that type)."""
    held = content_mime(src)
    if held is not None and _FAMILIES.get(held, held) != _FAMILIES.get(mime, mime):
        suffix = next(k for k, v in MIME_BY_SUFFIX.items() if v == held)
        raise FormatError(f"holds {held} content, not the {mime} its name says; rename it {suffix}", path=src)


def sign_file(src: str | Path, dst: str | Path, spec: ManifestSpec, identity: SigningIdentity) -> SignResult:
    """Sign ``src`` into ``dst`` atomically: embedded manifest, or copy + sidecar for Ogg/Opus.

    ``src`` must be intact media (:func:`provenance.core.io.check_decodes`): a manifest vouches
    for the bytes it binds, so a truncated or corrupt file is refused with a
    :class:`~provenance.core.errors.FormatError` naming it, before anything is written. ``dst``
    and its sidecar appear only when everything succeeded.
    """
    src, dst = Path(src), Path(dst)
    check_decodes(src)
    # the output is these bytes (sign keeps the format), signed as the type its name gives
    check_content_matches(src, spec.mime_type)
    sidecar: Path | None = None
    try:
        with atomic_path(dst) as tmp:
            embedded, manifest, digest = sign_to(spec, identity, src, tmp)
            if not embedded:
                sidecar = sidecar_path(dst)
                atomic_write_bytes(sidecar, manifest)
    except BaseException:
        if sidecar is not None:
            sidecar.unlink(missing_ok=True)
        raise
    return SignResult(dst, spec.mime_type, embedded, sidecar, manifest, spec.label, digest)
