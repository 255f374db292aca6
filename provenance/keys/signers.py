"""Signers: who produces the C2PA signature.

Two kinds, chosen by the configuration:

* **file signer** (default): the PEM private key at ``Settings.signing_key_path``.
* **callback signer**: ``signer_callback = "package.module:function"`` in ``config.toml``
  (or ``$FOLEYSEAL_SIGNER_CALLBACK``). The key stays in an HSM or a cloud KMS; FoleySeal only
  holds the certificate chain (``cert_chain``). The hook contract::

      def sign(data: bytes) -> bytes:
          '''Sign ``data`` (the COSE Sig_structure, at most 1 MiB) with the private key of the
          signing certificate and return the signature.'''

  For ES256/384/512 return an ECDSA signature with SHA-256/384/512 (DER, as
  ``cryptography`` and most KMS APIs produce it, or raw r||s); for PS256 an RSASSA-PSS
  signature with SHA-256, MGF1-SHA-256 and a 32-byte salt; for Ed25519 the raw signature.
  The algorithm is taken from the certificate's public key. An exception raised by the hook
  fails the signing with a :class:`SigningError` that names the hook and the exception.

An optional RFC 3161 timestamp authority (``tsa_url``) countersigns every signature, so the
credentials stay valid after the signing certificate expires. Signing without one works; an
unreachable one makes signing fail (c2pa does not fall back silently), reported as such.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa

from provenance.core.config import Settings
from provenance.core.errors import ConfigError, KeyFileError, SigningError
from provenance.core.interrupts import stop_signals_deferred
from provenance.core.permissions import check_owner_only
from provenance.keys.pki import (
    load_certificates,
    load_private_key,
    private_key_pem,
    same_public_key,
    signing_alg,
    validate_chain,
)

SignCallback = Callable[[bytes], bytes]

_C2PA_ALGS = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}


def resolve_callback(spec: str) -> SignCallback:
    """Import ``"package.module:function"`` and return the callable (:class:`ConfigError` if not)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"signer_callback must look like 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"signer_callback module {module_name!r} cannot be imported: {exc}") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ConfigError(f"signer_callback {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise ConfigError(f"signer_callback {spec!r} is not callable")
    return fn  # type: ignore[return-value]


@dataclass
class SigningIdentity:
    """Everything needed to make c2pa signers: the chain, the algorithm, and a key or a hook.

    Build one with :func:`load_identity` (from the settings) or directly (tests, embedders).
    Make a fresh :meth:`signer` per use and call :meth:`raise_for_failure` when c2pa reports a
    signing error, to surface the real cause (a hook exception, an unreachable TSA).
    """

    chain_pem: str
    """Leaf + intermediates, PEM."""
    alg: str
    """es256, es384, es512, ps256 or ed25519."""
    key_pem: bytes | None = field(default=None, repr=False)
    callback: SignCallback | None = None
    callback_name: str | None = None
    tsa_url: str | None = None
    _callback_error: BaseException | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.key_pem is None) == (self.callback is None):
            raise SigningError("a signing identity needs exactly one of a private key or a signing callback")
        if self.alg not in _C2PA_ALGS:
            raise SigningError(f"unsupported signing algorithm {self.alg!r}")

    @property
    def kind(self) -> str:
        return "callback" if self.callback is not None else "file"

    def _wrapped(self, data: bytes) -> bytes:
        try:
            signature = self.callback(data)  # type: ignore[misc]
        except BaseException as exc:  # c2pa swallows it; keep it for the error message
            self._callback_error = exc
            raise
        if not isinstance(signature, (bytes, bytearray)) or not signature:
            self._callback_error = SigningError(
                f"returned {type(signature).__name__}, expected non-empty signature bytes"
            )
            raise self._callback_error
        return bytes(signature)

    def signer(self) -> c2pa.Signer:
        """A new c2pa ``Signer`` (file or callback); the caller closes it."""
        self._callback_error = None
        try:
            if self.callback is not None:
                return c2pa.Signer.from_callback(self._wrapped, _C2PA_ALGS[self.alg], self.chain_pem, self.tsa_url)
            info = c2pa.C2paSignerInfo(
                self.alg.encode(),
                self.chain_pem.encode(),
                self.key_pem,
                self.tsa_url.encode() if self.tsa_url else None,
            )
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise SigningError(f"cannot create the C2PA signer: {exc}") from exc

    def raise_for_failure(self, exc: BaseException, *, path: str | Path | None = None) -> None:
        """Translate a c2pa signing exception into a :class:`SigningError` naming the cause.

        ``path``, the file being signed, is named only when the fault may be the file's: a failing
        hook, timestamp authority or certificate is not (a script reading the error's file would
        flag a good input)."""
        text = str(exc)
        if self.callback is not None and "does not match" in text.lower():
            raise SigningError(
                f"the signing callback {self.callback_name or '(hook)'} returned a signature that does not "
                "verify with the signing certificate's public key: it signs with another key than the "
                f"certificate's (the wrong HSM or KMS key?) ({text})",
            ) from exc
        if self._callback_error is not None:
            cause = self._callback_error
            raise SigningError(
                f"signing callback {self.callback_name or '(hook)'} failed: "
                f"{type(cause).__name__}: {cause}",
            ) from exc
        if self.tsa_url and ("http" in text.lower() or "timestamp" in text.lower() or "tsa" in text.lower()):
            # about the service, not the file being signed
            raise SigningError(
                f"the timestamp authority {self.tsa_url} could not be reached or refused the request "
                f"(set tsa_url to a working RFC 3161 service, or remove it to sign without a timestamp): {text}",
            ) from exc
        if "certificate" in text.lower():
            # not "run keys import": this is also what keys import itself meets
            raise SigningError(
                f"c2pa refused the signing certificate ({text}): it is outside the certificate profile "
                "C2PA validators demand (an EC P-256/P-384, RSA-PSS or Ed25519 end-entity certificate with "
                "KeyUsage digitalSignature only and ExtendedKeyUsage emailProtection)",
            ) from exc
        raise SigningError(f"C2PA signing failed: {text}", path=path) from exc


def _read_text(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"{what} not found; run `foleyseal keys init` (development chain) or `foleyseal keys import`",
            path=path,
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what}: {exc.strerror}", path=path) from exc


def load_identity(settings: Settings) -> SigningIdentity:
    """The signing identity the settings describe: callback hook if configured, else key file."""
    chain_bytes = _read_text(settings.cert_chain_path, "signing certificate chain")
    # The checks of `keys import` (profile, order, validity): c2pa's own refusal of a certificate
    # names no file, and a chain placed in the home by hand has not been through them.
    validated = validate_chain(chain_bytes, source=settings.cert_chain_path)
    certs, alg = validated.certificates, validated.alg
    chain_pem = chain_bytes.decode("ascii", errors="replace")
    if settings.signer_callback:
        return SigningIdentity(
            chain_pem=chain_pem,
            alg=alg,
            callback=resolve_callback(settings.signer_callback),
            callback_name=settings.signer_callback,
            tsa_url=settings.tsa_url,
        )
    key_pem = _read_text(settings.signing_key_path, "signing key")
    check_owner_only(settings.signing_key_path, "signing key file")
    key = load_private_key(key_pem, source=settings.signing_key_path)  # a clear error beats c2pa's
    if not same_public_key(key.public_key(), certs[0].public_key()):
        raise SigningError(
            f"the signing key does not belong to the signing certificate in {settings.cert_chain_path}",
            path=settings.signing_key_path,
        )
    # c2pa reads PKCS#8 only; a SEC1 or PKCS#1 key placed in the home by hand is converted here
    return SigningIdentity(chain_pem=chain_pem, alg=alg, key_pem=private_key_pem(key), tsa_url=settings.tsa_url)


def _tiny_wav() -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(4800, dtype=np.float32), 48_000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def probe_signing(
    chain_pem: str,
    key_pem: bytes | None = None,
    *,
    root_pem: str | None = None,
    callback: SignCallback | None = None,
    source: str | Path | None = None,
    callback_name: str | None = None,
) -> str:
    """Sign a 0.1 s WAV with this chain and read it back; return the validation state.

    With ``root_pem`` the result must be ``Trusted``; without, ``Valid`` (untrusted is then
    the only allowed failure). Raises :class:`SigningError` with c2pa's failure codes if not.
    """
    certs = load_certificates(chain_pem, source=source)
    identity = SigningIdentity(
        chain_pem=chain_pem, alg=signing_alg(certs[0].public_key()), key_pem=key_pem, callback=callback,
        callback_name=callback_name
    )
    manifest = {
        "claim_generator_info": [{"name": "FoleySeal key check", "version": "1"}],
        "title": "probe.wav",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"}]}}
        ],
    }
    settings_dict: dict[str, Any] = {"verify": {"verify_trust": True}}
    if root_pem:
        settings_dict["trust"] = {"user_anchors": root_pem}
    out = io.BytesIO()
    signer = identity.signer()
    try:
        # stop signals wait until c2pa returns: a KeyboardInterrupt raised in one of its stream
        # callbacks aborts the process (provenance.c2pa.sign._sign)
        with stop_signals_deferred(), c2pa.Context.from_dict(settings_dict) as ctx, \
                c2pa.Builder(manifest, context=ctx) as builder:
            builder.sign(signer, "audio/wav", io.BytesIO(_tiny_wav()), out)
            reader = c2pa.Reader("audio/wav", io.BytesIO(out.getvalue()), context=ctx)
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            reader.close()
    except c2pa.C2paError as exc:
        identity.raise_for_failure(exc, path=source)
        raise  # unreachable: raise_for_failure always raises
    finally:
        signer.close()
    failures = [f.get("code", "?") for f in (results.get("activeManifest") or {}).get("failure", [])]
    allowed = set() if root_pem else {"signingCredential.untrusted"}
    bad = [c for c in failures if c not in allowed]
    if bad or state not in ({"Trusted"} if root_pem else {"Trusted", "Valid"}):
        raise SigningError(
            f"c2pa does not accept this certificate chain: state {state}, failures {json.dumps(bad or failures)}",
            path=source,
        )
    return state
