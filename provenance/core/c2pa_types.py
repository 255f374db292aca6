"""Result types of C2PA reading, the manifest store and ``mark``, shared by several packages.

``provenance.c2pa`` and ``provenance.store`` produce them; ``detectors`` (verification) and the
CLI consume them.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SoftBindingBlock:
    """One marked time span of a soft binding and the watermark value found/embedded there."""

    start_s: float
    """Start, seconds from the beginning of the asset (C2PA stores integer milliseconds)."""
    end_s: float
    """End, seconds from the beginning of the asset."""
    value: str
    """The soft-binding value: for FoleySeal, the 64-bit payload as 16 lower-case hex digits."""


@dataclass(frozen=True)
class SoftBinding:
    """A ``c2pa.soft-binding`` assertion: algorithm name and one block per time span."""

    alg: str
    blocks: tuple[SoftBindingBlock, ...]


@dataclass(frozen=True)
class CredentialsReport:
    """What C2PA Content Credentials an asset carries and whether they validate."""

    present: bool
    source: str | None = None
    """``embedded``, ``sidecar`` (a ``.c2pa`` file beside the asset), ``detached`` (bytes given
    by the caller, e.g. from the manifest store) or None when nothing was found."""
    state: str | None = None
    """c2pa's validation state: ``Trusted``, ``Valid`` or ``Invalid`` (None if not present)."""
    failure_codes: tuple[str, ...] = ()
    """Validation failure codes of the active manifest, e.g. ``assertion.dataHash.mismatch``,
    ``signingCredential.untrusted``. Gate on these, not on ``state`` alone."""
    signer: str | None = None
    """Subject of the signing certificate (RFC 4514 string)."""
    chain: tuple[str, ...] = ()
    """Subjects of the certificates sent with the signature, signing certificate first."""
    claim_generator: str | None = None
    """``name/version`` of the software that made the claim."""
    digital_source_type: str | None = None
    """IPTC digital source type of the first action (e.g. ``...trainedAlgorithmicMedia``)."""
    parent_source_type: str | None = None
    """When the active manifest states none (an edit: ``c2pa.opened``, ``c2pa.edited``), the
    digital source type its nearest ``parentOf`` ancestor states: an edit of generated audio is
    still generated audio."""
    parent_failure_codes: tuple[str, ...] = ()
    """The failure codes recorded, when the active manifest was signed, for the credentials of the
    file it was made from (its ``parentOf`` ingredient): a manifest signed over a tampered file
    validates itself, and these say what was wrong with what it vouches it came from."""
    actions: tuple[dict, ...] = ()
    """The ``c2pa.actions`` entries of the active manifest, as c2pa reports them."""
    soft_bindings: tuple[SoftBinding, ...] = ()
    generation_record: dict | None = None
    """FoleySeal's ``org.foleyseal.generation`` assertion, if present."""
    title: str | None = None
    format: str | None = None
    """MIME type recorded in the manifest (or of the asset when the manifest has none)."""
    manifest_json: str | None = None
    """c2pa's full JSON report (all manifests and validation results)."""
    error: str | None = None
    """Why reading failed or found nothing usable, in words."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["soft_bindings"] = [
            {"alg": sb.alg, "blocks": [asdict(b) for b in sb.blocks]} for sb in self.soft_bindings
        ]
        d["failure_codes"] = list(self.failure_codes)
        d["chain"] = list(self.chain)
        d["actions"] = list(self.actions)
        return d


@dataclass(frozen=True)
class StoreRecord:
    """One manifest-store entry: the detached manifest of one published asset."""

    id: str
    """Manifest id, URL-safe (``urn:c2pa:<uuid4>``, the label of the detached manifest)."""
    payload: str
    """Soft-binding value (watermark payload, 16 lower-case hex digits)."""
    algorithm: str
    """Soft-binding algorithm, e.g. ``org.foleyseal.audio-wm.1``."""
    manifest: bytes = field(repr=False)
    """C2PA manifest store bytes (``application/c2pa``) that validate against the published
    file's exact bytes via ``Reader(mime, file, manifest)``: the very manifest embedded in it
    (WAV, FLAC, MP3, M4A, MP4, MOV), or the detached one that is also the sidecar (Ogg, Opus,
    MKV, WebM, AIFF, CAF, W64, AU)."""
    asset_sha256: str
    """Hex SHA-256 of the published file's bytes (the bytes ``manifest`` validates against)."""
    mime_type: str
    duration_s: float
    """Length of the audio, seconds."""
    created_at: dt.datetime
    """When the record was made (UTC)."""
    title: str | None = None

    def to_dict(self, without_manifest: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "payload": self.payload,
            "algorithm": self.algorithm,
            "asset_sha256": self.asset_sha256,
            "mime_type": self.mime_type,
            "duration_s": self.duration_s,
            "created_at": self.created_at.isoformat(),
            "title": self.title,
            "manifest_size": len(self.manifest),
        }
        if not without_manifest:
            d["manifest_base64"] = base64.b64encode(self.manifest).decode("ascii")
        return d


@dataclass(frozen=True)
class MarkResult:
    """What :func:`provenance.mark.mark` produced."""

    output: Path
    payload: str
    """The watermark payload, 16 lower-case hex digits."""
    record: StoreRecord
    manifest_embedded: bool
    """True when the output carries the manifest inside (WAV, FLAC, MP3, M4A, MP4, MOV)."""
    sidecar: Path | None = None
    """The ``.c2pa`` file written beside outputs c2pa cannot embed into (Ogg, Opus, MKV, WebM,
    AIFF, CAF, W64, AU)."""
    replaced_payload: str | None = None
    """The payload of this operator's watermark that the input already carried, now replaced by
    :attr:`payload` (a file marks one payload at a time); the new manifest records it, and
    :attr:`replaced_record` (its store record, if this store holds one), as the mark it replaces."""
    replaced_record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "payload": self.payload,
            "manifest_embedded": self.manifest_embedded,
            "sidecar": str(self.sidecar) if self.sidecar else None,
            "record": self.record.to_dict(),
            "replaced_payload": self.replaced_payload,
            "replaced_record": self.replaced_record,
        }
