"""Content Credentials as the verifier sees them: trust anchors read from PEM files, and the
C2PA reader's report reduced to a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detectors.report import Verdict


# Failure codes that say "the signer is not one we trust", as opposed to "something changed".
_TRUST_CODES = {
    "signingCredential.untrusted",
    # Validated at the current time with no trusted timestamp, an expired certificate is a
    # statement about the signer's credential now, not about the file: nothing changed.
    "signingCredential.expired",
    "signingCredential.ocsp.unknown",
    "timeStamp.untrusted",
}


def read_pem_file(path: Path) -> str:
    """The PEM text of a trust-anchors file; :class:`~provenance.core.errors.ConfigError` naming the
    file when it cannot be read or holds no certificate."""
    from provenance.core.errors import ConfigError

    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"cannot read trust anchors: {exc.strerror or exc}", path=path) from exc
    except UnicodeDecodeError:
        raise ConfigError("trust anchors file is not a PEM text file", path=path) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError("trust anchors file holds no PEM certificate", path=path)
    return text.strip() + "\n"


def count_certs(pem: str) -> int:
    """How many certificates a PEM text holds."""
    return pem.count("-----BEGIN CERTIFICATE-----")


def classify_credentials(cred: Any) -> Verdict | None:
    """Map a :class:`CredentialsReport` to ``credentials_valid`` / ``_tampered`` / ``_untrusted``,
    or None when no credentials are present. Gated on failure codes, not on the state alone."""
    if cred is None or not getattr(cred, "present", False):
        return None
    codes = set(getattr(cred, "failure_codes", ()) or ())
    state = getattr(cred, "state", None)
    hard_failures = codes - _TRUST_CODES
    if hard_failures or getattr(cred, "error", None) and state != "Trusted":
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
