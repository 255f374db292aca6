"""Certificates for C2PA signing: the development chain, checks, and import of an operator's chain.

C2PA validators (c2pa-rs, which c2pa-python wraps) accept a signing certificate only with this
profile, and reply to anything else with just "the certificate is invalid"; so FoleySeal checks
every rule itself and names the one that fails:

* chain order: signing (leaf) certificate first, then each issuer; the root is a trust anchor
  and is *not* sent with the signature;
* CA certificates: BasicConstraints CA=true, KeyUsage keyCertSign (+cRLSign), SKI and AKI;
* leaf: not a CA, KeyUsage digitalSignature, ExtendedKeyUsage emailProtection, AKI present;
* every certificate inside its validity period;
* the private key matches the leaf's public key, and is of a C2PA algorithm
  (EC P-256/384/521 -> ES256/384/512, RSA >= 2048 bits -> PS256, Ed25519).

The development chain (``foleyseal keys init``) is root CA -> intermediate CA -> ES256 leaf.
Only the leaf's private key is kept: the CA keys are discarded after issuing, so a stolen home
directory cannot mint more certificates under the development root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance.core.atomic import atomic_path, atomic_write_bytes
from provenance.core.config import Settings
from provenance.core.errors import ConfigError, KeyFileError, SigningError
from provenance.core.pem import binary_format_hint, describe_name

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

DEV_ORGANIZATION = "FoleySeal development (not for production)"
ROOT_VALIDITY_DAYS = 3650
INTERMEDIATE_VALIDITY_DAYS = 1825
LEAF_VALIDITY_DAYS = 730
_BACKDATE = dt.timedelta(hours=1)  # tolerate clock skew between signer and verifier

_EC_ALGS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class CertInfo:
    """What ``keys show`` prints about one certificate."""

    role: str
    """``signing``, ``intermediate`` or ``root``."""
    subject: str
    issuer: str
    sha256_fingerprint: str
    """Colon-separated upper-case hex of the SHA-256 of the DER certificate."""
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    path: str | None
    development: bool
    """Issued by ``keys init`` (organization :data:`DEV_ORGANIZATION`): trusted only where added by hand."""

    def validity(self, now: dt.datetime | None = None) -> str:
        """``valid``, ``expired`` or ``not_yet_valid`` at ``now`` (default: now, UTC)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if now > self.not_after:
            return "expired"
        return "not_yet_valid" if now < self.not_before else "valid"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["not_before"] = self.not_before.isoformat()
        d["not_after"] = self.not_after.isoformat()
        d["validity"] = self.validity()
        return d


@dataclass(frozen=True)
class ValidatedChain:
    """A chain that passed :func:`validate_chain`, split into its parts (PEM text)."""

    chain_pem: str
    """Leaf then intermediates: what the signer sends."""
    root_pem: str | None
    """The self-signed root if one was supplied with the chain, else None."""
    alg: str
    """C2PA signing algorithm name: es256, es384, es512, ps256 or ed25519."""
    certificates: tuple[x509.Certificate, ...]
    """Leaf first, root (if any) last."""


@dataclass(frozen=True)
class DevChain:
    """An in-memory development chain (PEM bytes)."""

    root_pem: bytes
    chain_pem: bytes
    """Leaf then intermediate."""
    key_pem: bytes
    """PKCS#8 private key of the leaf, unencrypted."""


# --------------------------------------------------------------------------- building certificates


def make_certificate(
    subject_cn: str,
    public_key: Any,
    *,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    ca: bool,
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    organization: str = DEV_ORGANIZATION,
    path_length: int | None = None,
) -> x509.Certificate:
    """Issue one X.509 certificate with the C2PA profile (``issuer_cert=None``: self-signed).

    ``eku`` applies to end-entity certificates only (CA certificates carry none); pass another
    tuple (or None) to build certificates that deliberately break the profile, e.g. in tests.
    """
    now = dt.datetime.now(dt.timezone.utc)
    not_before = not_before or now - _BACKDATE
    not_after = not_after or now + dt.timedelta(days=LEAF_VALIDITY_DAYS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer_cert is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    builder = builder.add_extension(aki, critical=False)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not ca and eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def generate_dev_chain(*, name: str = "FoleySeal", now: dt.datetime | None = None) -> DevChain:
    """A fresh root CA -> intermediate CA -> ES256 signing certificate, all P-256 keys."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - _BACKDATE
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_certificate(
        f"{name} Development Root CA",
        root_key.public_key(),
        issuer_cert=None,
        issuer_key=root_key,
        ca=True,
        not_before=start,
        not_after=now + dt.timedelta(days=ROOT_VALIDITY_DAYS),
        path_length=1,
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_certificate(
        f"{name} Development Intermediate CA",
        inter_key.public_key(),
        issuer_cert=root,
        issuer_key=root_key,
        ca=True,
        not_before=start,
        not_after=now + dt.timedelta(days=INTERMEDIATE_VALIDITY_DAYS),
        path_length=0,
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_certificate(
        f"{name} Development Signer",
        leaf_key.public_key(),
        issuer_cert=inter,
        issuer_key=inter_key,
        ca=False,
        not_before=start,
        not_after=now + dt.timedelta(days=LEAF_VALIDITY_DAYS),
    )
    pem = serialization.Encoding.PEM
    return DevChain(
        root_pem=root.public_bytes(pem),
        chain_pem=leaf.public_bytes(pem) + inter.public_bytes(pem),
        key_pem=private_key_pem(leaf_key),
    )


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key (written 0600 by callers)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --------------------------------------------------------------------------- parsing and checks


def load_certificates(pem: bytes | str, *, source: str | Path | None = None) -> list[x509.Certificate]:
    """Every certificate in a PEM text, in file order; :class:`SigningError` if there is none."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        hint = binary_format_hint(data)
        raise SigningError(hint or f"not a PEM certificate chain ({exc})", path=source) from exc
    if not certs:
        raise SigningError("no certificate found in the PEM text", path=source)
    return certs


def load_private_key(pem: bytes, *, source: str | Path | None = None) -> PrivateKey:
    """Parse an unencrypted PEM private key; :class:`KeyFileError` names what is wrong."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:
        raise KeyFileError("private key is encrypted; provide an unencrypted PEM key "
                           "(`openssl pkey -in KEY -out PLAIN.pem` asks for the passphrase once)", path=source) from exc
    except ValueError as exc:
        hint = binary_format_hint(pem)
        raise KeyFileError(hint or f"not a PEM private key ({exc})", path=source) from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise KeyFileError(
            f"unsupported key type {type(key).__name__}; C2PA signs with EC, RSA or Ed25519", path=source
        )
    return key


def signing_alg(public_key: Any, *, source: str | Path | None = None) -> str:
    """C2PA algorithm name for a public key: es256/es384/es512, ps256, ed25519."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGS.get(public_key.curve.name)
        if alg is None:
            raise SigningError(
                f"EC curve {public_key.curve.name} is not allowed by C2PA (use P-256, P-384 or P-521)", path=source
            )
        return alg
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise SigningError(f"RSA key of {public_key.key_size} bits is too short (C2PA needs >= 2048)", path=source)
        return "ps256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise SigningError(f"public key type {type(public_key).__name__} is not a C2PA signing algorithm", path=source)


def fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _ext(cert: x509.Certificate, cls: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    return bool(bc and bc.ca)


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _label(i: int, cert: x509.Certificate) -> str:
    return f"certificate {i + 1} ({describe_name(cert.subject)})"


def _check_order(certs: list[x509.Certificate], source: str | Path | None) -> None:
    leaves = [i for i, c in enumerate(certs) if not _is_ca(c)]
    if leaves and leaves[0] != 0:
        raise SigningError(
            f"chain is in the wrong order: the signing (leaf) certificate must come first, "
            f"but it is {_label(leaves[0], certs[leaves[0]])}; order the PEM leaf -> intermediate(s) -> root",
            path=source,
        )
    for i in range(len(certs) - 1):
        child, parent = certs[i], certs[i + 1]
        if child == parent:
            raise SigningError(f"{_label(i + 1, parent)} is {_label(i, child)} again: remove the copy",
                               path=source)
        if not _issued_by(child, parent):
            # Is the issuer elsewhere in the file? Then only the order is wrong.
            elsewhere = [j for j, c in enumerate(certs) if j != i and j != i + 1 and _issued_by(child, c)]
            if elsewhere or _issued_by(parent, child):
                raise SigningError(
                    f"chain is in the wrong order: {_label(i, child)} is not issued by the next "
                    f"{_label(i + 1, parent)}; order the PEM leaf -> intermediate(s) -> root",
                    path=source,
                )
            raise SigningError(
                f"chain is broken: {_label(i, child)} is not issued by {_label(i + 1, parent)} "
                f"(issuer {describe_name(child.issuer)})",
                path=source,
            )


def _check_validity(certs: list[x509.Certificate], now: dt.datetime, source: str | Path | None) -> None:
    """:class:`SigningError` naming ``source`` if a certificate is expired or not yet valid at ``now``."""
    for i, cert in enumerate(certs):
        role = "signing certificate" if i == 0 else _label(i, cert)
        if now > cert.not_valid_after_utc:
            raise SigningError(
                f"{role} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC "
                f"({describe_name(cert.subject)})",
                path=source,
            )
        if now < cert.not_valid_before_utc:
            raise SigningError(
                f"{role} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                f"({describe_name(cert.subject)})",
                path=source,
            )


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    """``codeSigning (1.3.6.1.5.5.7.3.3)``, or the dotted OID alone for one cryptography cannot name."""
    # cryptography's name for an OID it does not know is the text "Unknown OID"
    name = getattr(oid, "_name", None)
    return f"{name} ({oid.dotted_string})" if name and name != "Unknown OID" else oid.dotted_string


def _check_leaf_profile(leaf: x509.Certificate, source: str | Path | None) -> None:
    subject = describe_name(leaf.subject)
    if _is_ca(leaf):
        raise SigningError(
            f"the signing certificate is a CA certificate (BasicConstraints CA=true, {subject}); "
            "C2PA signs with an end-entity certificate issued by that CA",
            path=source,
        )
    ku = _ext(leaf, x509.KeyUsage)
    if ku is None or not ku.digital_signature:
        raise SigningError(
            f"the signing certificate lacks KeyUsage digitalSignature ({subject})", path=source
        )
    if ku.key_cert_sign or ku.crl_sign:
        raise SigningError(
            f"the signing certificate may sign certificates or CRLs (KeyUsage keyCertSign/cRLSign), which "
            f"C2PA forbids an end-entity signer ({subject})", path=source
        )
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    usages = list(eku) if eku is not None else []
    for forbidden, name in ((x509.ObjectIdentifier("2.5.29.37.0"), "anyExtendedKeyUsage"),
                            (ExtendedKeyUsageOID.OCSP_SIGNING, "OCSPSigning")):
        if forbidden in usages:  # C2PA validators refuse such a signer, whatever else it may do
            raise SigningError(
                f"the signing certificate's extended key usage includes {name}, which C2PA forbids a "
                f"signer; it must be emailProtection (1.3.6.1.5.5.7.3.4) without it ({subject})", path=source
            )
    if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
        names = ", ".join(_oid_name(u) for u in usages) or "none"
        raise SigningError(
            f"the signing certificate has the wrong extended key usage ({names}); "
            f"C2PA validators require emailProtection (1.3.6.1.5.5.7.3.4) ({subject})",
            path=source,
        )
    if _ext(leaf, x509.AuthorityKeyIdentifier) is None:
        raise SigningError(
            f"the signing certificate has no AuthorityKeyIdentifier extension ({subject})", path=source
        )


def _check_ca_profile(i: int, cert: x509.Certificate, source: str | Path | None) -> None:
    if not _is_ca(cert):
        raise SigningError(f"{_label(i, cert)} issues certificates but is not a CA (BasicConstraints)", path=source)
    ku = _ext(cert, x509.KeyUsage)
    if ku is None or not ku.key_cert_sign:
        raise SigningError(f"{_label(i, cert)} is a CA without KeyUsage keyCertSign", path=source)
    if _ext(cert, x509.SubjectKeyIdentifier) is None:
        raise SigningError(f"{_label(i, cert)} has no SubjectKeyIdentifier extension", path=source)
    if not _is_self_signed(cert) and _ext(cert, x509.AuthorityKeyIdentifier) is None:
        raise SigningError(f"{_label(i, cert)} has no AuthorityKeyIdentifier extension", path=source)


def same_public_key(a: Any, b: Any) -> bool:
    """Whether two public keys are the same key."""
    return _public_bytes(a) == _public_bytes(b)


def _public_bytes(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def validate_chain(
    chain_pem: bytes | str,
    key_pem: bytes | None = None,
    *,
    root_pem: bytes | str | None = None,
    now: dt.datetime | None = None,
    source: str | Path | None = None,
    key_source: str | Path | None = None,
    root_source: str | Path | None = None,
) -> ValidatedChain:
    """Check a signing chain (and optionally its private key) against the C2PA profile.

    Raises :class:`SigningError` (certificate faults) or :class:`KeyFileError` (unreadable key)
    with a message naming the fault: wrong order, CA used as the signing certificate, wrong
    EKU, expired or not-yet-valid certificate, key not matching the certificate, unsupported
    algorithm. A self-signed root at the end of ``chain_pem`` is split off into ``root_pem``.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    certs = load_certificates(chain_pem, source=source)
    if root_pem is not None:
        _check_order(certs, source)  # the chain's own faults first: the root's top is then sure
        roots = load_certificates(root_pem, source=root_source)
        for r in roots:
            if not (_is_self_signed(r) and _is_ca(r)):
                raise SigningError(
                    f"the root certificate is not a self-signed CA certificate ({describe_name(r.subject)})",
                    path=root_source,
                )
        # of a bundle of roots, the one that issued the top of the chain is its root; a root that
        # issued nothing here is the --root file's fault, not a break in the chain file
        issuer = [r for r in roots if r in certs or _issued_by(certs[-1], r)]
        if not issuer:
            top = f"{describe_name(certs[-1].subject)}, the top of the chain (issuer {describe_name(certs[-1].issuer)})"
            if len(roots) == 1:
                given = f"the root certificate given ({describe_name(roots[0].subject)}) did not issue"
            else:
                given = (f"none of the {len(roots)} root certificates given "
                         f"({'; '.join(describe_name(r.subject) for r in roots)}) issued")
            raise SigningError(f"{given} {top}", path=root_source)
        roots = issuer[:1]
        certs = certs + [r for r in roots if all(r != c for c in certs)]
    if len(certs) == 1 and _is_self_signed(certs[0]) and not _is_ca(certs[0]):
        raise SigningError(
            f"the signing certificate is self-signed ({describe_name(certs[0].subject)}); "
            "C2PA needs a leaf issued by a CA",
            path=source,
        )
    _check_order(certs, source)
    _check_leaf_profile(certs[0], source)
    for i, cert in enumerate(certs[1:], start=1):
        _check_ca_profile(i, cert, source)
    _check_validity(certs, now, source)
    alg = signing_alg(certs[0].public_key(), source=source)

    if key_pem is not None:
        key = load_private_key(key_pem, source=key_source)
        if not same_public_key(key.public_key(), certs[0].public_key()):
            raise SigningError(
                f"the private key does not match the signing certificate's public key "
                f"({describe_name(certs[0].subject)})",
                path=key_source,
            )

    root = certs[-1] if len(certs) > 1 and _is_self_signed(certs[-1]) else None
    sent = certs[:-1] if root is not None else certs
    pem = serialization.Encoding.PEM
    return ValidatedChain(
        chain_pem="".join(c.public_bytes(pem).decode() for c in sent),
        root_pem=root.public_bytes(pem).decode() if root is not None else None,
        alg=alg,
        certificates=tuple(certs),
    )


# --------------------------------------------------------------------------- home directory


def _ensure_key_dir(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == "keys":
        os.chmod(path.parent, 0o700)


def _refuse_overwrite(paths: list[Path], force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise KeyFileError(
            "already exists; use --force to replace it (files signed with the old key stay valid "
            "only for verifiers that keep trusting the old root)",
            path=existing[0],
        )


@dataclass(frozen=True)
class InstalledFiles:
    """Paths written by ``keys init`` / ``keys import``."""

    cert_chain: Path
    signing_key: Path | None
    """None when a signing callback holds the key."""
    root_cert: Path | None
    watermark_key: Path | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {k: (str(v) if v is not None else None) for k, v in asdict(self).items()}


def install_dev_chain(settings: Settings, *, force: bool = False) -> InstalledFiles:
    """Write a new development chain into the home: chain, root (0644) and key (0600)."""
    targets = [settings.cert_chain_path, settings.signing_key_path, settings.root_cert_path]
    _refuse_overwrite(targets, force)
    chain = generate_dev_chain()
    for p in targets:
        _ensure_key_dir(p)
    # all three are written before any is renamed into place: a full disk leaves the home as it
    # was, not a key without its chain (which `keys init` would then refuse as incomplete)
    with contextlib.ExitStack() as stack:
        for path, data, mode in ((settings.signing_key_path, chain.key_pem, 0o600),
                                 (settings.cert_chain_path, chain.chain_pem, 0o644),
                                 (settings.root_cert_path, chain.root_pem, 0o644)):
            tmp = stack.enter_context(atomic_path(path, mode=mode))
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return InstalledFiles(settings.cert_chain_path, settings.signing_key_path, settings.root_cert_path)


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {what}: {exc.strerror}", path=path) from exc


def make_home(home: Path) -> None:
    """Make the FoleySeal home (mode 0700: it holds the key folder, the store and the settings);
    :class:`ConfigError` naming it when it is a file or cannot be made or written (the system
    said only "File exists", or named a folder inside it)."""
    import tempfile

    if home.exists() and not home.is_dir():
        raise ConfigError("the FoleySeal home is a file, not a folder (set FOLEYSEAL_HOME or --home to a folder)",
                          path=home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        with tempfile.TemporaryFile(dir=home):  # a folder that takes no file (/proc, read-only)
            pass
    except OSError as exc:
        raise ConfigError(f"cannot make or write the FoleySeal home there: {exc.strerror or exc}", path=home) from None


def import_chain(
    settings: Settings,
    cert_chain: Path,
    key: Path | None,
    *,
    root: Path | None = None,
    force: bool = False,
    probe: bool = True,
    callback: Any = None,
    callback_name: str | None = None,
) -> tuple[InstalledFiles, ValidatedChain]:
    """Validate an operator's chain + key and install them in the home.

    Every check of :func:`validate_chain` runs first; then (``probe=True``) a tiny WAV is
    signed and read back with the chain's root as anchor, so a chain that c2pa still refuses
    is caught here and not at the first ``mark``. Nothing is written unless all checks pass.
    ``key`` None: the signing key is held by ``callback`` (an HSM or KMS hook, which the probe
    signs through), and a key file left in the home by an earlier chain is removed with it.
    A key in another PEM form (``BEGIN EC PRIVATE KEY``, ``BEGIN RSA PRIVATE KEY``: what
    ``openssl ecparam -genkey`` and ``openssl genrsa`` write) is installed as PKCS#8, the one
    form c2pa reads.
    """
    chain_bytes = _read(cert_chain, "certificate chain")
    key_bytes = _read(key, "private key") if key is not None else None
    root_bytes = _read(root, "root certificate") if root is not None else None
    validated = validate_chain(
        chain_bytes, key_bytes, root_pem=root_bytes, source=cert_chain, key_source=key, root_source=root
    )
    if key_bytes is not None:
        key_bytes = private_key_pem(load_private_key(key_bytes, source=key))
    if probe:
        from provenance.keys.signers import probe_signing

        probe_signing(validated.chain_pem, key_bytes, root_pem=validated.root_pem, callback=callback,
                      source=cert_chain, callback_name=callback_name)
    # The home's root goes with the chain: a root from an earlier chain that did not issue this
    # one would be listed by `keys show` and trusted by the verifier for nothing.
    targets = [settings.cert_chain_path, settings.signing_key_path, settings.root_cert_path]
    _refuse_overwrite(targets, force)
    make_home(settings.home)
    for p in targets:
        _ensure_key_dir(p)
    if key_bytes is not None:
        atomic_write_bytes(settings.signing_key_path, key_bytes, mode=0o600)
    else:  # an earlier chain's key signs for no certificate of this one
        settings.signing_key_path.unlink(missing_ok=True)
    atomic_write_bytes(settings.cert_chain_path, validated.chain_pem.encode(), mode=0o644)
    if validated.root_pem is not None:
        atomic_write_bytes(settings.root_cert_path, validated.root_pem.encode(), mode=0o644)
    elif not _anchors(settings.root_cert_path, validated.certificates[-1]):
        settings.root_cert_path.unlink(missing_ok=True)
    return (
        InstalledFiles(
            settings.cert_chain_path,
            settings.signing_key_path if key_bytes is not None else None,
            settings.root_cert_path if validated.root_pem is not None else None,
        ),
        validated,
    )


def _anchors(root_path: Path, top: x509.Certificate) -> bool:
    """Whether the root certificate at ``root_path`` issued ``top`` (the chain's last certificate)."""
    try:
        roots = load_certificates(root_path.read_bytes(), source=root_path)
    except (OSError, SigningError):
        return False
    return any(_issued_by(top, r) for r in roots)


def _key_type(cert: x509.Certificate) -> str:
    pk = cert.public_key()
    if isinstance(pk, ec.EllipticCurvePublicKey):
        return f"EC {pk.curve.name}"
    if isinstance(pk, rsa.RSAPublicKey):
        return f"RSA {pk.key_size}"
    return type(pk).__name__.replace("PublicKey", "")


def cert_info(cert: x509.Certificate, role: str, path: Path | None) -> CertInfo:
    return CertInfo(
        role=role,
        subject=describe_name(cert.subject),
        issuer=describe_name(cert.issuer),
        sha256_fingerprint=fingerprint(cert),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=_key_type(cert),
        path=str(path) if path is not None else None,
        development=is_development_certificate(cert),
    )


def is_development_certificate(cert: x509.Certificate) -> bool:
    """Whether ``cert`` is one of the development chain's (``keys init``), by its organization."""
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(o.value == DEV_ORGANIZATION for o in orgs)


def describe_installed(settings: Settings) -> list[CertInfo]:
    """The certificates of the configured chain and root, leaf first (``keys show``)."""
    if not settings.cert_chain_path.exists():
        raise KeyFileError(
            "no signing certificate chain; run `foleyseal keys init` or `foleyseal keys import`",
            path=settings.cert_chain_path,
        )
    certs = load_certificates(_read(settings.cert_chain_path, "certificate chain"), source=settings.cert_chain_path)
    infos = [
        cert_info(c, "signing" if i == 0 else "intermediate", settings.cert_chain_path) for i, c in enumerate(certs)
    ]
    if settings.root_cert_path.exists():
        for c in load_certificates(_read(settings.root_cert_path, "root certificate"), source=settings.root_cert_path):
            infos.append(cert_info(c, "root", settings.root_cert_path))
    return infos
