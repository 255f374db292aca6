"""Reading and validating C2PA Content Credentials of a file.

Trust: validation always checks the signature and the hard binding; *trust* needs anchors.
With ``trust_anchors_pem`` (FoleySeal's root and any other roots, e.g. from
:func:`provenance.core.config.trust_anchors_pem`) a good file reads ``Trusted``; without, it
reads ``Valid`` with the failure code ``signingCredential.untrusted``. Gate on the failure
codes, never on the state alone.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import c2pa

from provenance.c2pa.manifest import GENERATION_LABEL
from provenance.c2pa.sidecar import find_sidecar
from provenance.c2pa.sign import MIME_BY_SUFFIX, c2pa_format, embeds_into
from provenance.core.c2pa_types import CredentialsReport, SoftBinding, SoftBindingBlock
from provenance.core.errors import ConfigError, InputError
from provenance.core.interrupts import stop_signals_deferred


def reader_context(trust_anchors_pem: str | None) -> c2pa.Context:
    """A c2pa Context that verifies trust against ``trust_anchors_pem`` (PEM text) if given.

    Anchors the library refuses are a fault of the configuration, not of any file read with
    them: :class:`ConfigError` (:func:`provenance.core.config.trust_anchors` parses each one
    first, so this names what slipped through)."""
    settings: dict[str, Any] = {"verify": {"verify_trust": True}}
    if trust_anchors_pem and trust_anchors_pem.strip():
        settings["trust"] = {"user_anchors": trust_anchors_pem}
    try:
        return c2pa.Context.from_dict(settings)
    except c2pa.C2paError as exc:
        raise ConfigError(f"the C2PA reader refuses the trust anchors ({exc})") from exc


def _name(d: Any) -> str | None:
    if not isinstance(d, dict) or not d:
        return None
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _labelled(assertions: list[dict], *labels: str) -> list[dict]:
    out = []
    for a in assertions:
        label = a.get("label", "")
        base = label.split(".v")[0] if label.startswith("c2pa.actions") else label
        if label in labels or base in labels:
            out.append(a.get("data") or {})
    return out


def _soft_bindings(assertions: list[dict]) -> tuple[SoftBinding, ...]:
    found = []
    for data in _labelled(assertions, "c2pa.soft-binding"):
        blocks = []
        for b in data.get("blocks") or []:
            span = ((b.get("scope") or {}).get("timespan")) or {}
            blocks.append(
                SoftBindingBlock(
                    start_s=float(span.get("start", 0)) / 1000.0,
                    end_s=float(span.get("end", 0)) / 1000.0,
                    value=str(b.get("value", "")),
                )
            )
        found.append(SoftBinding(alg=str(data.get("alg", "")), blocks=tuple(blocks)))
    return tuple(found)


def _failure_codes(results: dict | None) -> tuple[str, ...]:
    """The failure codes of a validation, each once, in the order c2pa reports them first.

    c2pa may list one failure several times: a detached manifest checked against a re-encoded
    file fails ``assertion.dataHash.mismatch`` twice, for the same assertion, with two
    explanations (the exclusion range, then the hash). A code says what failed; it is kept once,
    so that reports and the page do not read "mismatch, mismatch"."""
    if not results:
        return ()
    codes = [f.get("code", "?") for f in (results.get("activeManifest") or {}).get("failure", [])]
    for delta in results.get("ingredientDeltas") or []:
        vd = delta.get("validationDeltas") or {}
        codes += [f"ingredient:{f.get('code', '?')}" for f in vd.get("failure", [])]
    return tuple(dict.fromkeys(codes))


def _chain(reader: c2pa.Reader) -> tuple[str | None, tuple[str, ...]]:
    """Signer subject and the subjects known from the signature (leaf, then its issuer)."""
    try:
        cr = json.loads(reader.crjson())
        manifests = cr.get("manifests") or []
        info = (manifests[0].get("signature") or {}).get("certificateInfo") or {} if manifests else {}
    except (c2pa.C2paError, ValueError, AttributeError, IndexError):
        return None, ()
    subject, issuer = _name(info.get("subject")), _name(info.get("issuer"))
    return subject, tuple(s for s in (subject, issuer) if s)


def _actions(manifest: dict) -> list[dict]:
    actions: list[dict] = []
    for a in _labelled(manifest.get("assertions") or [], "c2pa.actions"):
        actions.extend(a.get("actions") or [])
    return actions


def _source_type(manifest: dict) -> str | None:
    """The digital source type the first action of ``manifest`` that states one gives."""
    return next((a.get("digitalSourceType") for a in _actions(manifest) if a.get("digitalSourceType")), None)


def _parent(manifest: dict) -> dict:
    """``manifest``'s ``parentOf`` ingredient ({} when it has none)."""
    return next((i for i in manifest.get("ingredients") or [] if i.get("relationship") == "parentOf"), {})


def _parent_source_type(manifests: dict, manifest: dict) -> str | None:
    """The digital source type of the nearest ancestor (``parentOf`` ingredients, followed up
    through their own manifests) that states one: an edit of generated audio ("opened",
    "edited") states none itself, and its provenance must not lose what the parent disclosed."""
    seen: set[str] = set()
    while True:
        label = _parent(manifest).get("active_manifest")
        if not label or label in seen or label not in manifests:
            return None
        seen.add(label)
        manifest = manifests[label]
        dst = _source_type(manifest)
        if dst:
            return dst


_SIGNER_HAD_NO_TRUST_LIST = frozenset({"signingCredential.untrusted", "timeStamp.untrusted"})
"""Codes a signing tool records for every parent it validates without trust anchors (FoleySeal
does, as c2pa does for embedded ingredients): they say nothing about the parent, and a verifier
judges trust with its own anchors."""


def _parent_failures(manifest: dict) -> tuple[str, ...]:
    """The failure codes the signer's reader recorded for the ``parentOf`` ingredient's own
    credentials when ``manifest`` was made (a file signed over a tampered one carries them),
    less those that only say the signer had no trust list."""
    results = _parent(manifest).get("validation_results") or {}
    codes = [f.get("code", "?") for f in (results.get("activeManifest") or {}).get("failure", [])]
    return tuple(c for c in dict.fromkeys(codes) if c not in _SIGNER_HAD_NO_TRUST_LIST)


def _report_from_reader(reader: c2pa.Reader, source: str, mime: str | None) -> CredentialsReport:
    manifest_json = reader.json()
    data = json.loads(manifest_json)
    manifests = data.get("manifests") or {}
    active = manifests.get(data.get("active_manifest") or "", {})
    assertions = active.get("assertions") or []
    actions = _actions(active)
    dst = _source_type(active)
    gens = _labelled(assertions, GENERATION_LABEL)
    cgi = (active.get("claim_generator_info") or [{}])[0]
    claim_generator = f"{cgi.get('name')}/{cgi.get('version')}" if cgi.get("name") else active.get("claim_generator")
    signer, chain = _chain(reader)
    if signer is None:
        sig = active.get("signature_info") or {}
        signer = f"CN={sig['common_name']}" if sig.get("common_name") else None
        chain = (signer,) if signer else ()
    return CredentialsReport(
        present=True,
        source=source,
        state=reader.get_validation_state(),
        failure_codes=_failure_codes(reader.get_validation_results()),
        signer=signer,
        chain=chain,
        claim_generator=claim_generator,
        digital_source_type=dst,
        parent_source_type=None if dst else _parent_source_type(manifests, active),
        parent_failure_codes=_parent_failures(active),
        actions=tuple(actions),
        soft_bindings=_soft_bindings(assertions),
        generation_record=gens[0] if gens else None,
        title=active.get("title"),
        format=active.get("format") or mime,
        manifest_json=manifest_json,
    )


def _invalid(source: str, mime: str | None, exc: BaseException) -> CredentialsReport:
    return CredentialsReport(
        present=True,
        source=source,
        state="Invalid",
        failure_codes=(f"c2pa.{type(exc).__name__.strip('_').removeprefix('C2pa').lower() or 'error'}",),
        format=mime,
        error=f"the manifest cannot be read or validated: {exc}",
    )


def read_credentials(
    path: str | Path,
    *,
    trust_anchors_pem: str | None = None,
    manifest_bytes: bytes | None = None,
) -> CredentialsReport:
    """Read and validate the Content Credentials of ``path``.

    Order: ``manifest_bytes`` if given (a detached manifest, e.g. from the manifest store,
    checked against this file's bytes: the hard binding), else the embedded manifest, else a
    sidecar (``song.ogg.c2pa``, or ``song.c2pa``). Bad or absent manifests never raise: the
    report says ``present=False`` or ``state="Invalid"`` with failure codes and ``error``. A
    file that cannot be opened raises :class:`InputError`; trust anchors the C2PA library
    refuses, :class:`ConfigError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    mime = MIME_BY_SUFFIX.get(path.suffix.lower())
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from exc

    with reader_context(trust_anchors_pem) as ctx:  # a ConfigError here is no fault of the file
        return _read_with(path, mime, ctx, manifest_bytes)


HARD_BINDING_FAILURES = frozenset({
    "assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch",
    "assertion.collectionHash.mismatch",
})
"""Failure codes of a hard binding (the manifest's hash of the asset's bytes) that does not match."""


def read_detached_manifest(manifest: bytes, mime: str) -> CredentialsReport:
    """Read and validate a detached manifest store without the asset it was signed for.

    The claim's signature and the assertions' hashes are checked; the hard binding cannot be,
    so it fails by construction (codes in :data:`HARD_BINDING_FAILURES`), as does trust (no
    anchors: ``signingCredential.untrusted``). Never raises: an unreadable manifest gives
    ``state="Invalid"`` and ``error``; one that holds none, ``present=False``."""
    with reader_context(None) as ctx:
        try:
            with stop_signals_deferred():
                reader = c2pa.Reader.try_create(mime, io.BytesIO(b""), manifest, context=ctx)
                if reader is None:
                    return CredentialsReport(present=False, format=mime, error="the manifest store holds no manifest")
                with reader:
                    return _report_from_reader(reader, "detached", mime)
        except c2pa.C2paError as exc:
            return _invalid("detached", mime, exc)
        except (ValueError, TypeError) as exc:  # malformed JSON from the library
            return _invalid("detached", mime, exc)


# What a manifest read without its asset and without trust anchors may fail and still be sound:
# the hard binding (no asset), trust and revocation (the verifier judges them with its anchors),
# and its parent's credentials (a record of a file that was re-marked).
_DETACHED_ALLOWED = HARD_BINDING_FAILURES | {"signingCredential.untrusted", "signingCredential.expired",
                                             "timeStamp.untrusted"}
_DETACHED_ALLOWED_PREFIXES = ("signingCredential.ocsp.", "ingredient:")


def record_manifest_problem(manifest: bytes, *, manifest_id: str, alg: str, payload: str, mime: str) -> str | None:
    """Why ``manifest`` (a detached manifest store) cannot be the record of ``manifest_id`` with
    watermark ``payload`` (16 hex digits) under soft-binding algorithm ``alg``, or None when it
    can: it must be readable, its signature and assertions must validate (:func:`read_detached_manifest`),
    its active manifest must be ``manifest_id`` and its soft binding must hold ``payload``."""
    creds = read_detached_manifest(manifest, mime)
    if not creds.present or creds.error:
        return creds.error or "the manifest store holds no manifest"
    failed = [c for c in creds.failure_codes
              if c not in _DETACHED_ALLOWED and not c.startswith(_DETACHED_ALLOWED_PREFIXES)]
    if failed:
        return f"the manifest does not validate ({', '.join(failed)})"
    active = json.loads(creds.manifest_json or "{}").get("active_manifest")
    if active != manifest_id:
        return f"the manifest's active manifest is {active!r}, not {manifest_id!r}"
    bound = {b.value.lower() for sb in creds.soft_bindings if sb.alg == alg for b in sb.blocks}
    if payload.lower() not in bound:
        held = ", ".join(sorted(bound)) or "none"
        return f"the manifest's soft binding ({alg}) does not hold payload {payload.lower()} (it holds: {held})"
    return None


def _read_with(path: Path, mime: str | None, ctx: c2pa.Context, manifest_bytes: bytes | None) -> CredentialsReport:
    """:func:`read_credentials` with the reader's context made."""

    def attempt(source: str, manifest: bytes | None) -> CredentialsReport | None:
        try:
            # c2pa reads the file through Python callbacks called from its native code; a
            # KeyboardInterrupt raised in one is dropped here (and aborts the process when
            # signing: provenance.c2pa.sign._sign), so stop signals wait until c2pa returns
            with open(path, "rb") as fh, stop_signals_deferred():
                reader = c2pa.Reader.try_create(c2pa_format(path, mime) if mime else mime, fh, manifest, context=ctx)
                if reader is None:
                    return None
                with reader:
                    return _report_from_reader(reader, source, mime)
        except c2pa.C2paError as exc:
            if isinstance(exc, (c2pa.C2paError.NotSupported,)) and manifest is None:
                return None
            return _invalid(source, mime, exc)
        except (ValueError, TypeError) as exc:  # malformed JSON from the library
            return _invalid(source, mime, exc)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path=path) from exc

    if manifest_bytes is not None:
        report = attempt("detached", manifest_bytes)
        return report or CredentialsReport(
            present=False, format=mime, error="the detached manifest holds no C2PA manifest"
        )
    if mime is None or embeds_into(path, mime):
        report = attempt("embedded", None)
        if report is not None:
            return report
    sidecar = find_sidecar(path)
    if sidecar is not None:
        try:
            sidecar_bytes = sidecar.read_bytes()
        except OSError as exc:
            return CredentialsReport(present=False, format=mime, error=f"cannot read sidecar {sidecar}: {exc}")
        if not sidecar_bytes:
            return CredentialsReport(present=False, source="sidecar", format=mime,
                                     error=f"the sidecar {sidecar.name} is empty (0 bytes): it holds no manifest")
        report = attempt("sidecar", sidecar_bytes)
        if report is not None:
            return report
    return CredentialsReport(present=False, format=mime, error="no C2PA manifest found (embedded or sidecar)")
