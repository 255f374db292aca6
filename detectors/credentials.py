"""Content Credentials as the verifier sees them: the C2PA reader's report reduced to a verdict
(trust anchors are read by :func:`provenance.core.config.trust_anchors`)."""

from __future__ import annotations

from typing import Any

from detectors.report import Verdict


# Failure codes that say "the signer is not one we trust", as opposed to "something changed".
_TRUST_CODES = {
    "signingCredential.untrusted",
    # Validated at the current time with no trusted timestamp, an expired certificate is a
    # statement about the signer's credential now, not about the file: nothing changed.
    "signingCredential.expired",
    # A certificate outside the profile this verifier accepts (an extended key usage it is not
    # configured for) or revoked: the signer is not trusted; the bytes may be intact.
    "signingCredential.invalid",
    "signingCredential.revoked",
    "signingCredential.ocsp.revoked",
    "signingCredential.ocsp.unknown",
    "timeStamp.untrusted",
}


def _beyond_trust(codes: Any) -> tuple[str, ...]:
    """The failure ``codes`` that say something changed, not only that the signer is untrusted."""
    return tuple(c for c in codes or () if c not in _TRUST_CODES)


def classify_credentials(cred: Any) -> Verdict | None:
    """Map a :class:`CredentialsReport` to ``credentials_valid`` / ``_tampered`` / ``_untrusted``,
    or None when no credentials are present. Gated on failure codes, not on the state alone."""
    if cred is None or not getattr(cred, "present", False):
        return None
    codes = set(getattr(cred, "failure_codes", ()) or ())
    state = getattr(cred, "state", None)
    if _beyond_trust(codes) or getattr(cred, "error", None) and state != "Trusted":
        return Verdict.CREDENTIALS_TAMPERED
    if state == "Trusted" and not codes:
        return Verdict.CREDENTIALS_VALID
    # c2pa calls an expired certificate "Invalid", an unknown root "Valid": with nothing but
    # trust codes, both are intact credentials from a signer that cannot be trusted now.
    if state in ("Valid", "Trusted") or codes:
        return Verdict.CREDENTIALS_UNTRUSTED
    return Verdict.CREDENTIALS_TAMPERED


def unparseable(cred: Any) -> bool:
    """The C2PA reader reports an embedded manifest as "Invalid" when it cannot parse the *asset*
    at all (a truncated or fake WAV/FLAC/MP4), whether or not a manifest exists: such reports
    carry only library error codes (``c2pa.io``, ``c2pa.other``...), no validation codes."""
    if not getattr(cred, "present", False) or getattr(cred, "source", None) != "embedded":
        return False
    codes = tuple(getattr(cred, "failure_codes", ()) or ())
    return bool(getattr(cred, "error", None)) and all(c.startswith("c2pa.") for c in codes)


# What a derivative (re-encoded, trimmed) does to the manifest of the file it came from: the
# hard binding no longer matches. Nothing else may fail for that manifest to vouch for it.
_HARD_BINDING_MISMATCHES = {
    "assertion.dataHash.mismatch",
    "assertion.bmffHash.mismatch",
    "assertion.boxesHash.mismatch",
    "assertion.collectionHash.mismatch",
}


def why_record_does_not_vouch(cred: Any, payload: str | None) -> str | None:
    """Why a stored manifest, found through the watermark ``payload`` read from a file, cannot
    vouch for that file (None when it can): it must be readable, its signature valid and trusted
    (a hard-binding mismatch is all a derivative may add), and its soft binding must name the
    payload read. Anyone who can write a record (an API key, the database) could otherwise plant
    an unsigned, untrusted or unrelated manifest and have stripped files "recovered" by it."""
    if cred is None or not getattr(cred, "present", False):
        return "it holds no C2PA manifest"
    codes = tuple(getattr(cred, "failure_codes", ()) or ())
    error = getattr(cred, "error", None)
    if error and not (set(codes) <= _HARD_BINDING_MISMATCHES):
        return f"its manifest cannot be read ({', '.join(codes) or error})"
    other = [c for c in codes if c not in _HARD_BINDING_MISMATCHES]
    if _beyond_trust(other):
        return f"its manifest does not validate: {', '.join(other)}"
    bound = {b.value.lower() for sb in getattr(cred, "soft_bindings", ()) or () for b in sb.blocks}
    if payload is not None and payload.lower() not in bound:
        named = ", ".join(sorted(bound)) or "no payload"
        return f"its manifest binds {named}, not the payload {payload} read from the audio"
    if other:
        # intact, but signed by a chain this verifier does not trust: the fix is configuration
        return (f"its signer is not trusted by this verifier ({', '.join(other)}); add the signer's root "
                "certificate to the trust anchors (--trust-anchors) only if you trust it")
    return None


def parent_changed(cred: Any) -> tuple[str, ...]:
    """The failure codes, other than trust ones (the signer may have lacked the parent's anchors),
    that were recorded for the parent's credentials when ``cred`` was signed: () when the file it
    was made from was intact, or had none."""
    return _beyond_trust(getattr(cred, "parent_failure_codes", ()))


def changed_since_signed(cred: Any) -> tuple[str, ...]:
    """The failure codes of ``cred`` that say its file or manifest changed after signing (not
    those that only say the signer is not trusted here): () for intact credentials, for none, and
    for a file the C2PA reader could not parse (it holds no manifest to have changed)."""
    if cred is None or not getattr(cred, "present", False) or unparseable(cred):
        return ()
    return _beyond_trust(getattr(cred, "failure_codes", ()))
