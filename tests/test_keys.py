"""Keys: configuration, the development chain, `keys init/show/import`, certificate checks, signers."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import stat
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from foleyseal.cli import main
from provenance.c2pa.manifest import ManifestSpec, generation_assertion
from provenance.c2pa.read import read_credentials
from provenance.c2pa.sign import sign_file
from provenance.core.config import load_settings, read_trust_pem, trust_anchors_pem
from provenance.core.errors import ConfigError, KeyFileError, SigningError
from provenance.core.pem import describe_name
from provenance.keys.pki import (
    generate_dev_chain,
    install_dev_chain,
    make_certificate,
    private_key_pem,
    validate_chain,
)
from provenance.keys.signers import load_identity, probe_signing

PEM = serialization.Encoding.PEM


REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    for var in list(os.environ):
        if var.startswith("FOLEYSEAL_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(h))
    return h


# --------------------------------------------------------------------------- a CA to issue test certs


class CA:
    """A root -> intermediate CA pair that issues leaves with chosen faults."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = make_certificate("Test Root", self.root_key.public_key(), issuer_cert=None,
                                     issuer_key=self.root_key, ca=True, organization="Test")
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = make_certificate("Test Intermediate", self.inter_key.public_key(), issuer_cert=self.root,
                                      issuer_key=self.root_key, ca=True, organization="Test")

    def leaf(self, **kw):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_certificate("Test Signer", key.public_key(), issuer_cert=self.inter, issuer_key=self.inter_key,
                                organization="Test", **{"ca": False, **kw})
        return cert, key

    def write(self, d: Path, certs, key) -> tuple[Path, Path, Path]:
        d.mkdir(parents=True, exist_ok=True)
        chain = d / "chain.pem"
        chain.write_bytes(b"".join(c.public_bytes(PEM) for c in certs))
        key_path = d / "key.pem"
        key_path.write_bytes(private_key_pem(key))
        root = d / "root.pem"
        root.write_bytes(self.root.public_bytes(PEM))
        return chain, key_path, root


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


# --------------------------------------------------------------------------- configuration


def test_settings_defaults_file_and_env(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("FOLEYSEAL_"):
            monkeypatch.delenv(var)
    h = tmp_path / "h"
    h.mkdir()
    s = load_settings(h)
    assert s.cert_chain_path == h / "keys" / "signing-chain.pem"
    assert s.store_url == f"sqlite:///{h / 'manifests.sqlite3'}"
    assert s.tsa_url is None and s.signer_callback is None and s.trust_anchors == []

    (h / "config.toml").write_text(textwrap.dedent("""
        cert_chain = "certs/chain.pem"
        trust_anchors = ["/etc/ssl/extra.pem", "more.pem"]
        tsa_url = "http://tsa.example"
        signer_callback = "kms.mod:sign"
    """))
    s = load_settings(h)
    assert s.cert_chain_path == h / "certs" / "chain.pem"
    assert s.trust_anchors == [Path("/etc/ssl/extra.pem"), h / "more.pem"]
    assert s.tsa_url == "http://tsa.example" and s.signer_callback == "kms.mod:sign"

    monkeypatch.setenv("FOLEYSEAL_TSA_URL", "")
    monkeypatch.setenv("FOLEYSEAL_STORE_URL", "postgresql://u@db/x")
    s = load_settings(h)
    assert s.tsa_url is None and s.store_url == "postgresql://u@db/x"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("bogus_key = 1", "unknown configuration key"),
        ("tsa_url = 'ftp://x'", "http(s) URL"),
        ("signer_callback = 'no_colon'", "module:function"),
        ("cert_chain = [", "invalid TOML"),
    ],
)
def test_bad_config_names_the_fault(tmp_path, text, fragment):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match="config.toml") as exc:
        load_settings(tmp_path)
    assert fragment in str(exc.value)


def test_trust_anchors_pem_concatenates_root_and_extras(tmp_path, ca):
    s = load_settings(tmp_path)
    assert trust_anchors_pem(s) == ""
    install_dev_chain(s)
    extra = tmp_path / "extra.pem"
    extra.write_bytes(ca.root.public_bytes(PEM))
    (tmp_path / "config.toml").write_text('trust_anchors = ["extra.pem"]\n')
    pem = trust_anchors_pem(load_settings(tmp_path))
    certs = x509.load_pem_x509_certificates(pem.encode())
    assert [c.subject.rfc4514_string() for c in certs][1] == ca.root.subject.rfc4514_string()
    assert len(certs) == 2
    (tmp_path / "config.toml").write_text('trust_anchors = ["missing.pem"]\n')
    with pytest.raises(ConfigError, match="missing.pem"):
        trust_anchors_pem(load_settings(tmp_path))


def test_each_trust_anchor_is_parsed_and_a_damaged_one_is_named(tmp_path, ca):
    """One damaged certificate in a trust bundle is a fault of the configuration, named with its
    place in the file, not something each verified file is blamed for."""
    good = ca.root.public_bytes(PEM).decode()
    damaged = "-----BEGIN CERTIFICATE-----\nMIIBgarbage\n-----END CERTIFICATE-----\n"
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(good + damaged)
    with pytest.raises(ConfigError, match=r"certificate 2 of 2 cannot be parsed") as exc:
        read_trust_pem(bundle)
    assert "bundle.pem" in str(exc.value) and "https://" not in str(exc.value)
    bundle.write_text(good + good[: len(good) // 2])
    with pytest.raises(ConfigError, match="no -----END CERTIFICATE-----"):
        read_trust_pem(bundle)
    # text around the certificates (a published list's comments) is left out
    bundle.write_text("# roots we trust\n" + good + "Bag Attributes: x\n" + ca.inter.public_bytes(PEM).decode())
    anchors = read_trust_pem(bundle)
    assert anchors.count == 2 and not anchors.notes and "#" not in anchors.pem and "Bag" not in anchors.pem
    # a DER root, as CAs publish them, is named as such with the conversion (was "not a PEM text file")
    bundle.write_bytes(ca.root.public_bytes(serialization.Encoding.DER))
    with pytest.raises(ConfigError, match=r"is a DER \(binary\) certificate, not PEM; convert it: `openssl x509"):
        read_trust_pem(bundle)


def test_an_expired_trust_anchor_is_left_out_with_a_note(tmp_path):
    """``keys import`` refuses an expired root; a verifier does not trust one either."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    old = make_certificate("Old Root", key.public_key(), issuer_cert=None, issuer_key=key, ca=True,
                           not_before=now - dt.timedelta(days=800), not_after=now - dt.timedelta(days=1))
    soon = make_certificate("Future Root", key.public_key(), issuer_cert=None, issuer_key=key, ca=True,
                            not_before=now + dt.timedelta(days=2), not_after=now + dt.timedelta(days=900))
    path = tmp_path / "roots.pem"
    path.write_bytes(old.public_bytes(PEM) + soon.public_bytes(PEM))
    anchors = read_trust_pem(path)
    assert anchors.count == 0 and anchors.pem == ""
    assert "CN=Old Root" in anchors.notes[0] and "expired on" in anchors.notes[0] and "roots.pem" in anchors.notes[0]
    assert "CN=Future Root" in anchors.notes[1] and "not valid until" in anchors.notes[1]


# --------------------------------------------------------------------------- development chain


def test_dev_chain_has_the_c2pa_profile():
    chain = generate_dev_chain()
    leaf, inter = x509.load_pem_x509_certificates(chain.chain_pem)
    root = x509.load_pem_x509_certificate(chain.root_pem)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.EMAIL_PROTECTION
    ]
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    for c in (inter, root):
        assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
        c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    v = validate_chain(chain.chain_pem, chain.key_pem, root_pem=chain.root_pem)
    assert v.alg == "es256" and v.root_pem is not None
    # c2pa itself accepts it: signed with the chain, read back Trusted with the root as anchor.
    assert probe_signing(chain.chain_pem.decode(), chain.key_pem, root_pem=chain.root_pem.decode()) == "Trusted"


def test_keys_init_show_and_no_overwrite(home, capsys):
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    s = load_settings()
    for p in (s.signing_key_path, s.watermark_key_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(s.home.stat().st_mode) == 0o700
    secret = s.watermark_key_path.read_text().split()[1]
    key_body = "".join(s.signing_key_path.read_text().splitlines()[1:-1])
    assert "PRIVATE KEY" not in out and secret not in out and key_body[:40] not in out
    assert "FoleySeal Development Signer" in out and "Root CA" in out and "DEVELOPMENT chain" in out

    before = {p: p.read_bytes() for p in (s.signing_key_path, s.watermark_key_path, s.cert_chain_path)}
    rc, out, _ = run_cli(capsys, "keys", "init")
    assert rc == 0 and "kept existing" in out
    assert all(p.read_bytes() == b for p, b in before.items())

    rc, out, _ = run_cli(capsys, "keys", "show", "--json")
    assert rc == 0
    shown = json.loads(out)
    assert [c["role"] for c in shown["certificates"]] == ["signing", "intermediate", "root"]
    assert all(len(c["sha256_fingerprint"].split(":")) == 32 for c in shown["certificates"])
    assert shown["watermark_key"]["key_id"] and "PRIVATE" not in out
    assert all(c["development"] for c in shown["certificates"])

    # A watermark key others may read is unusable, and said so; the chain is still shown (keys
    # show refused altogether, so the chain could not be inspected either)
    s.watermark_key_path.chmod(0o644)
    rc, out, err = run_cli(capsys, "keys", "show")
    assert rc == 0 and "unusable: watermark key file has permissions 0644" in out and "Root CA" in out, err
    s.watermark_key_path.chmod(0o600)

    rc, _, _ = run_cli(capsys, "keys", "init", "--force")
    assert rc == 0
    assert s.signing_key_path.read_bytes() != before[s.signing_key_path]
    assert s.watermark_key_path.read_bytes() != before[s.watermark_key_path]


def test_keys_show_without_init_is_a_clear_error(home, capsys):
    rc, _, err = run_cli(capsys, "keys", "show")
    assert rc == 3 and "keys init" in err


# --------------------------------------------------------------------------- import and its checks


def test_import_good_chain_then_sign(home, tmp_path, capsys, ca):
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                           "--root", str(root))
    assert rc == 0, err
    s = load_settings()
    assert stat.S_IMODE(s.signing_key_path.stat().st_mode) == 0o600
    assert s.root_cert_path.read_bytes() == ca.root.public_bytes(PEM)
    # A second import without --force is refused and changes nothing.
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path))
    assert rc == 3 and "--force" in err


def test_operator_chain_then_init_adds_a_watermark_key_and_is_not_called_development(home, tmp_path, capsys, ca):
    """An operator who imported their chain into a new home was not told that mark needs a
    watermark key too, and `keys init`, which made one and kept the chain, then called the
    operator's chain a DEVELOPMENT chain."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                           "--root", str(root))
    assert rc == 0, err
    assert "no watermark key yet" in out and "keys init" in out
    audio = tmp_path / "a.wav"
    sf.write(audio, np.random.default_rng(5).normal(0, 0.1, 6 * 16000).astype(np.float32), 16000)
    rc, _, err = run_cli(capsys, "mark", str(audio), str(tmp_path / "a_marked.wav"))
    assert rc == 3 and "watermark key file not found; `foleyseal keys init` creates it" in err
    rc, _, err = run_cli(capsys, "generate", str(REPO / "examples" / "ball_bounce.mp4"), "-o", str(tmp_path / "b.mp4"))
    assert rc == 3 and "`foleyseal keys init` creates it" in err and not (tmp_path / "b.mp4").exists()

    chain_before = load_settings().cert_chain_path.read_bytes()
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    assert "created: watermark key" in out and "kept existing: certificate chain" in out
    assert "DEVELOPMENT" not in out and "Test Signer" in out
    assert load_settings().cert_chain_path.read_bytes() == chain_before
    rc, out, _ = run_cli(capsys, "keys", "show", "--json")
    assert not any(c["development"] for c in json.loads(out)["certificates"])
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                           "--root", str(root), "--force")
    assert rc == 0 and "no watermark key yet" not in out, err
    rc, _, err = run_cli(capsys, "mark", str(audio), str(tmp_path / "a_marked.wav"))
    assert rc == 0, err


def test_keys_init_completes_a_home_imported_without_a_root(home, tmp_path, capsys, ca):
    """`keys import` without --root (the operator's CA gave none) said `keys init` would add the
    watermark key and keep the chain; `keys init` then refused the home as an incomplete chain
    and suggested --force, which replaces the operator's chain with a development one."""
    leaf, key = ca.leaf()
    chain, key_path, _ = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path))
    assert rc == 0 and "keys init` creates one and keeps this chain" in " ".join(out.split()), err
    s = load_settings()
    chain_before, key_before = s.cert_chain_path.read_bytes(), s.signing_key_path.read_bytes()
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    assert "created: watermark key, config.toml" in out and "kept existing: certificate chain" in out
    assert s.cert_chain_path.read_bytes() == chain_before and s.signing_key_path.read_bytes() == key_before
    assert not s.root_cert_path.exists()
    audio = tmp_path / "a.wav"
    sf.write(audio, np.random.default_rng(6).normal(0, 0.1, 6 * 16000).astype(np.float32), 16000)
    rc, _, err = run_cli(capsys, "mark", str(audio), str(tmp_path / "a_marked.wav"))
    assert rc == 0, err
    # A home whose chain lacks its key and has no callback to hold it is still incomplete.
    s.signing_key_path.unlink()
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 3 and f"missing {s.signing_key_path}" in err and s.cert_chain_path.read_bytes() == chain_before


def test_keys_init_completes_a_home_whose_key_a_signing_callback_holds(home, tmp_path, capsys, ca, monkeypatch):
    """A home whose key an HSM holds has no signing-key.pem; `keys init` called it incomplete."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    _fake_kms(tmp_path, monkeypatch, key_path)
    monkeypatch.setenv("FOLEYSEAL_SIGNER_CALLBACK", "fake_kms:sign")
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--root", str(root))
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    assert "created: watermark key" in out and "kept existing: certificate chain" in out
    assert "signing key      (held by the callback)" in out
    assert not load_settings().signing_key_path.exists()


def test_import_refuses_a_key_file_when_a_signing_callback_signs(home, tmp_path, capsys, ca, monkeypatch):
    """With signer_callback configured, `keys import --key K` test-signed with K and installed it,
    but every signature came from the callback: a callback using another key failed at the first
    `sign`."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    monkeypatch.setenv("FOLEYSEAL_SIGNER_CALLBACK", "fake_kms:sign")
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(root))
    assert rc == 3 and "signer_callback fake_kms:sign is configured" in err and "leave out --key" in err, err
    assert not (home / "keys").exists()


def test_import_blames_a_root_that_did_not_issue_the_chain_on_the_root_file(home, tmp_path, capsys, ca):
    """A --root from another CA was reported as a break in the chain file ("certificate 3 is not
    issued by ..."), naming chain.pem, which holds no certificate 3."""
    leaf, key = ca.leaf()
    chain, key_path, _ = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    other = tmp_path / "other-root.pem"
    other.write_bytes(CA().root.public_bytes(PEM))
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(other), "--json")
    assert rc == 3, err
    fault = json.loads(err)["error"] if err.lstrip().startswith("{") else None
    text = " ".join(err.split())
    assert "the root certificate given (CN=Test Root, O=Test) did not issue CN=Test Intermediate, O=Test" in text, err
    assert fault is None or fault.get("file") == str(other), err
    assert not (home / "keys").exists()


def _expired(ca):
    now = dt.datetime.now(dt.timezone.utc)
    return ca.leaf(not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))


@pytest.mark.parametrize(
    "fault, make, message",
    [
        ("wrong EKU", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(ca.leaf(eku=(ExtendedKeyUsageOID.CODE_SIGNING,))),
         "wrong extended key usage (codeSigning (1.3.6.1.5.5.7.3.3))"),
        # cryptography names an OID it does not know "Unknown OID", and that was what was said
        ("unnamed EKU", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(ca.leaf(
            eku=(x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),))), "wrong extended key usage (1.3.6.1.5.5.7.3.36)"),
        ("no EKU", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(ca.leaf(eku=None)), "wrong extended key usage"),
        ("CA as leaf", lambda ca: ([ca.inter, ca.root], ca.inter_key), "is a CA certificate"),
        ("expired leaf", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(_expired(ca)), "expired on"),
        ("key mismatch", lambda ca: ([ca.leaf()[0], ca.inter], ec.generate_private_key(ec.SECP256R1())),
         "does not match"),
        ("wrong order", lambda ca: (lambda lk: ([ca.inter, lk[0]], lk[1]))(ca.leaf()), "wrong order"),
        ("any EKU", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(ca.leaf(
            eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("2.5.29.37.0")))), "anyExtendedKeyUsage"),
        ("OCSP EKU", lambda ca: (lambda lk: ([lk[0], ca.inter], lk[1]))(ca.leaf(
            eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.OCSP_SIGNING))), "OCSPSigning"),
    ],
)
def test_import_refuses_bad_chains(home, tmp_path, capsys, ca, fault, make, message):
    certs, key = make(ca)
    chain, key_path, root = ca.write(tmp_path / "in", certs, key)
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                           "--root", str(root))
    assert rc == 3, (fault, out)
    assert message in err, (fault, err)
    assert not (home / "keys").exists(), "nothing may be installed when a check fails"
    # The same checks through the API raise SigningError.
    with pytest.raises(SigningError, match=re.escape(message)):
        validate_chain(chain.read_bytes(), key_path.read_bytes(), root_pem=root.read_bytes())


def _der_and_p12(ca, leaf, key) -> dict[str, bytes]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    enc = serialization.BestAvailableEncryption(b"pw")
    return {
        "der_cert": leaf.public_bytes(serialization.Encoding.DER),
        "der_key": key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()),
        "p12": pkcs12.serialize_key_and_certificates(b"op", key, leaf, [ca.inter], serialization.NoEncryption()),
        "p12_pw": pkcs12.serialize_key_and_certificates(b"op", key, leaf, [ca.inter], enc),
        "pem_key_pw": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
    }


@pytest.mark.parametrize(
    "as_chain, as_key, message",
    [
        ("der_cert", None, "is a DER (binary) certificate, not PEM; convert it: `openssl x509 -inform der"),
        ("p12", None, "is a PKCS#12 bundle (.p12/.pfx), not PEM; split it"),
        ("p12_pw", None, "is a PKCS#12 bundle"),
        (None, "p12", "is a PKCS#12 bundle"),
        (None, "der_key", "is a DER (binary) private key, not PEM; convert it: `openssl pkey -inform der"),
        (None, "pem_key_pw", "private key is encrypted; provide an unencrypted PEM key (`openssl pkey"),
    ],
)
def test_import_says_how_to_convert_der_pkcs12_and_encrypted_files(home, tmp_path, capsys, ca, as_chain, as_key,
                                                                    message):
    """Operators' CAs hand out DER certificates and PKCS#12 bundles as often as PEM: these read
    "not a PEM certificate chain (Unable to load PEM file ... MalformedFraming)"."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    other = _der_and_p12(ca, leaf, key)
    if as_chain:
        chain.write_bytes(other[as_chain])
    if as_key:
        key_path.write_bytes(other[as_key])
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(root))
    assert rc == 3 and message in err, err
    assert (chain.name if as_chain else key_path.name) in err
    assert not (home / "keys").exists()


def test_import_names_an_unreadable_key(home, tmp_path, capsys, ca):
    leaf, key = ca.leaf()
    chain, key_path, _ = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    key_path.write_text("not a key")
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path))
    assert rc == 3 and "not a PEM private key" in err and "key.pem" in err


# --------------------------------------------------------------------------- signers


def _wav(path: Path) -> Path:
    x = np.random.default_rng(1).standard_normal((2400, 1)).astype(np.float32) * 0.1
    sf.write(path, x, 48_000, subtype="PCM_16")
    return path


def _spec():
    return ManifestSpec(mime_type="audio/wav", title="t.wav", generated=True,
                        generation_record=generation_assertion({"generator": "test"}))


CALLBACK_MODULE = '''
import os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CALLS = []

def sign(data: bytes) -> bytes:
    """A stand-in for an HSM/KMS: signs with a key it loads itself."""
    with open(os.environ["TEST_KMS_KEY"], "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), None)
    CALLS.append(len(data))
    return key.sign(data, ec.ECDSA(hashes.SHA256()))

def broken(data: bytes) -> bytes:
    raise RuntimeError("HSM offline")
'''


def _fake_kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_path: Path) -> None:
    """Make ``fake_kms`` (:data:`CALLBACK_MODULE`) importable, signing with ``key_path``."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "fake_kms.py").write_text(CALLBACK_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.setenv("TEST_KMS_KEY", str(key_path))


def test_callback_signer_signs_through_the_hook(tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    install_dev_chain(s)
    kms_key = tmp_path / "kms-key.pem"
    kms_key.write_bytes(s.signing_key_path.read_bytes())
    s.signing_key_path.unlink()  # the key lives only "in the KMS"
    _fake_kms(tmp_path, monkeypatch, kms_key)
    (s.home / "config.toml").write_text('signer_callback = "fake_kms:sign"\n')
    s = load_settings(s.home)
    identity = load_identity(s)
    assert identity.kind == "callback"
    out = sign_file(_wav(tmp_path / "a.wav"), tmp_path / "b.wav", _spec(), identity)
    import fake_kms

    assert fake_kms.CALLS, "the hook was not called"
    rep = read_credentials(out.output, trust_anchors_pem=trust_anchors_pem(s))
    assert rep.state == "Trusted" and rep.failure_codes == ()

    # `keys import` without --key: the chain is checked and test-signed through the hook.
    chain_copy = tmp_path / "chain.pem"
    chain_copy.write_bytes(s.cert_chain_path.read_bytes())
    root_copy = tmp_path / "root.pem"
    root_copy.write_bytes(s.root_cert_path.read_bytes())
    monkeypatch.setenv("FOLEYSEAL_HOME", str(s.home))
    with pytest.raises(SystemExit) as exc:
        main(["keys", "import", "--cert-chain", str(chain_copy), "--root", str(root_copy), "--force"])
    assert exc.value.code == 0
    assert not s.signing_key_path.exists()

    (s.home / "config.toml").write_text('signer_callback = "fake_kms:broken"\n')
    identity = load_identity(load_settings(s.home))
    with pytest.raises(SigningError, match="fake_kms:broken failed: RuntimeError: HSM offline") as failed:
        sign_file(tmp_path / "a.wav", tmp_path / "c.wav", _spec(), identity)
    assert failed.value.path is None  # the hook failed, not the file being signed
    assert not (tmp_path / "c.wav").exists()

    (s.home / "config.toml").write_text('signer_callback = "fake_kms:nope"\n')
    with pytest.raises(ConfigError, match="no attribute"):
        load_identity(load_settings(s.home))


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: connections are refused


def test_unreachable_tsa_is_a_clear_error(tmp_path):
    home = tmp_path / "home"
    s = load_settings(home)
    install_dev_chain(s)
    port = _refused_port()
    (home / "config.toml").write_text(f'tsa_url = "http://127.0.0.1:{port}/tsa"\n')
    identity = load_identity(load_settings(home))
    with pytest.raises(SigningError, match=f"timestamp authority http://127.0.0.1:{port}/tsa could not be reached") as exc:
        sign_file(_wav(tmp_path / "a.wav"), tmp_path / "b.wav", _spec(), identity)
    assert exc.value.path is None  # the service's fault, not the file's
    assert not (tmp_path / "b.wav").exists()


def test_a_bad_tsa_url_from_the_environment_is_not_blamed_on_config_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYSEAL_TSA_URL", "ftp://x")
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path)
    assert str(exc.value) == "FOLEYSEAL_TSA_URL must be an http(s) URL, got 'ftp://x'"
    monkeypatch.delenv("FOLEYSEAL_TSA_URL")
    (tmp_path / "config.toml").write_text("tsa_url = 'ftp://x'\n")
    with pytest.raises(ConfigError, match="config.toml: 'tsa_url' must be an http"):
        load_settings(tmp_path)


def test_a_chain_listing_a_certificate_twice_is_named_as_such(ca):
    leaf, key = ca.leaf()
    chain = b"".join(c.public_bytes(PEM) for c in (leaf, ca.inter, ca.inter))
    with pytest.raises(SigningError, match=r"certificate 3 \(.*\) is certificate 2 \(.*\) again: remove the copy"):
        validate_chain(chain, private_key_pem(key))


def test_a_callback_signing_with_another_key_is_named(tmp_path, ca, monkeypatch):
    """It read "C2PA signing failed: ... does not match", blamed on chain.pem, the hook unnamed."""
    leaf, _ = ca.leaf()
    _, other_key = ca.leaf()
    chain = (leaf.public_bytes(PEM) + ca.inter.public_bytes(PEM)).decode()
    kms = tmp_path / "kms.pem"
    kms.write_bytes(private_key_pem(other_key))
    _fake_kms(tmp_path, monkeypatch, kms)
    import fake_kms

    with pytest.raises(SigningError, match="signing callback fake_kms:sign returned a signature that does not verify"):
        probe_signing(chain, callback=fake_kms.sign, callback_name="fake_kms:sign",
                      root_pem=ca.root.public_bytes(PEM).decode())


def test_missing_keys_name_the_file_and_the_fix(tmp_path):
    s = load_settings(tmp_path / "nohome")
    with pytest.raises(KeyFileError, match="keys init") as exc:
        load_identity(s)
    assert "signing-chain.pem" in str(exc.value)


def test_a_file_whose_certificate_expired_since_signing_reads_untrusted_not_tampered(home, tmp_path, capsys, ca):
    """Without a timestamp authority, c2pa validates at the current time: once the signing
    certificate expires it reports signingCredential.expired. The file did not change."""
    import time

    from detectors.verify import verify

    not_after = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=4)).replace(microsecond=0)
    leaf, key = ca.leaf(not_after=not_after)
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(root))
    assert rc == 0, err
    src = _wav(tmp_path / "in.wav")
    rc, _, err = run_cli(capsys, "sign", str(src), str(tmp_path / "signed.wav"))
    assert rc == 0, err
    assert verify(tmp_path / "signed.wav", keyring=[]).verdict.value == "credentials_valid"
    time.sleep(max(0.0, (not_after - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 1.5)

    report = verify(tmp_path / "signed.wav", keyring=[])
    assert "signingCredential.expired" in report.credentials.failure_codes
    assert report.verdict.value == "credentials_untrusted", (report.credentials.failure_codes, report.credentials.state, report.credentials.error)
    assert "expired" in report.explanation and "changed" in report.explanation
    assert "altered" not in report.explanation and "edited" not in report.explanation
    # Signing with it now fails naming the file to renew, not the input or a working file.
    rc, _, err = run_cli(capsys, "sign", str(src), str(tmp_path / "again.wav"))
    settings = load_settings()
    assert rc == 3 and f"{settings.cert_chain_path}: signing certificate expired on" in err, err
    assert not (tmp_path / "again.wav").exists()
    rc, out, _ = run_cli(capsys, "keys", "show")
    assert rc == 0 and out.count("EXPIRED") == 1, out  # the leaf, not its CAs
    # --json said only not_after: a script could not tell that signing fails
    rc, out, _ = run_cli(capsys, "keys", "show", "--json")
    shown = json.loads(out)
    assert [c["validity"] for c in shown["certificates"]] == ["expired", "valid", "valid"]
    assert shown["can_sign"] is False and "signing certificate expired on" in shown["signing_problem"]


def test_a_chain_placed_in_the_home_by_hand_is_checked_like_an_import(home, tmp_path, capsys, ca):
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    settings = load_settings()
    leaf, key = ca.leaf(eku=None)
    settings.cert_chain_path.write_bytes(leaf.public_bytes(PEM) + ca.inter.public_bytes(PEM))
    settings.signing_key_path.write_bytes(private_key_pem(key))
    src = _wav(tmp_path / "in.wav")
    for cmd in ("sign", "mark"):
        rc, _, err = run_cli(capsys, cmd, str(src), str(tmp_path / f"{cmd}.wav"))
        assert rc == 3 and f"{settings.cert_chain_path}:" in err and "extended key usage" in err, (cmd, err)


def test_a_signing_key_that_does_not_match_the_chain_names_the_key_file(home, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    settings = load_settings()
    settings.signing_key_path.write_bytes(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    src = _wav(tmp_path / "in.wav")
    for cmd in ("sign", "mark"):
        rc, _, err = run_cli(capsys, cmd, str(src), str(tmp_path / f"{cmd}.wav"))
        assert rc == 3 and f"{settings.signing_key_path}: the signing key does not belong" in err, (cmd, err)
    # keys show listed the key as if usable (signing_key_problem null)
    rc, out, _ = run_cli(capsys, "keys", "show", "--json")
    shown = json.loads(out)
    assert rc == 0 and shown["can_sign"] is False and "does not belong" in shown["signing_problem"]
    rc, out, _ = run_cli(capsys, "keys", "show")
    assert "CANNOT SIGN" in out and "does not belong" in out
    rc, out, _ = run_cli(capsys, "keys", "init", "--force")
    shown = json.loads(run_cli(capsys, "keys", "show", "--json")[1])
    assert shown["can_sign"] is True and shown["signing_problem"] is None


def test_a_home_that_cannot_be_created_is_named_not_an_internal_error(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home's parent should be")
    monkeypatch.setenv("FOLEYSEAL_HOME", str(blocker / "home"))
    for args in (["keys", "init"], ["keys", "new-watermark-key", str(blocker / "wm.key")]):
        rc, _, err = run_cli(capsys, *args)
        assert rc == 3 and str(blocker) in err and "internal error" not in err, (args, err)
    # the home itself a file ("File exists"), or a folder that takes no file (a folder inside it named)
    for where, message in ((blocker, "the FoleySeal home is a file, not a folder"),
                           (Path("/sys/kernel"), "cannot make or write the FoleySeal home there")):
        monkeypatch.setenv("FOLEYSEAL_HOME", str(where))
        rc, _, err = run_cli(capsys, "keys", "init")
        assert rc == 3 and f"{where}: {message}" in err, err


def test_import_names_a_bad_root_file_and_replaces_a_root_that_does_not_anchor_the_chain(home, tmp_path, capsys, ca):
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    dev_root = load_settings().root_cert_path.read_bytes()
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for bad_root, fragment in ((garbage, "not a PEM certificate chain"), (chain, "not a self-signed CA")):
        rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                             "--root", str(bad_root), "--force")
        assert rc == 3 and f"{bad_root}:" in err and fragment in err, err
    assert load_settings().root_cert_path.read_bytes() == dev_root  # nothing changed
    # Without --root, the development root (which did not issue this chain) does not stay behind.
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path), "--force")
    assert rc == 0, err
    assert not load_settings().root_cert_path.exists()
    assert "no root certificate given" in out
    # A chain of the signing certificate alone: the note names the CA it stops at, which may be
    # an intermediate (it said only that verifiers must trust the root, and every signature then
    # read as untrusted)
    leaf_only, _, _ = ca.write(tmp_path / "leaf-only", [leaf], key)
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(leaf_only), "--key", str(key_path), "--force")
    assert rc == 0, err
    issuer = describe_name(leaf.issuer)
    assert f"issued by {issuer}" in " ".join(out.split()) and "if it is an intermediate CA" in " ".join(out.split()), out
    # A renewed leaf from the same CA, imported without --root, keeps the root that anchors it.
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(root), "--force")
    assert rc == 0, err
    leaf2, key2 = ca.leaf()
    chain2, key2_path, _ = ca.write(tmp_path / "in2", [leaf2, ca.inter], key2)
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain2), "--key", str(key2_path), "--force")
    assert rc == 0, err
    assert load_settings().root_cert_path.read_bytes() == ca.root.public_bytes(PEM)


# --------------------------------------------------------------------------- trust, as a verifier sees it


CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _signed_by(ca: CA, tmp_path: Path, eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.EMAIL_PROTECTION) -> Path:
    """A WAV signed by another tool (c2pa's Builder) with a leaf of ``ca`` whose EKU is ``eku``,
    as a signer whose own c2pa configuration accepts that EKU would make it."""
    import c2pa

    leaf, key = ca.leaf(eku=(eku,))
    chain = leaf.public_bytes(PEM) + ca.inter.public_bytes(PEM)
    manifest = {"claim_generator_info": [{"name": "OtherTool", "version": "1"}],
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": CAPTURE}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private_key_pem(key), None))
    out = tmp_path / "signed.wav"
    with c2pa.Context.from_dict({"trust": {"trust_config": eku.dotted_string + "\n"}}) as ctx, \
            c2pa.Builder(manifest, context=ctx) as builder, open(_wav(tmp_path / "in.wav"), "rb") as src, \
            open(out, "w+b") as dst:
        builder.sign(signer, "audio/wav", src, dst)
    return out


def test_a_signer_outside_the_accepted_profile_is_untrusted_not_tampered(tmp_path, ca):
    """A leaf with the C2PA claim-signing EKU (valid C2PA, but not one this verifier is
    configured for): c2pa says ``signingCredential.invalid``, a statement about the certificate;
    the file's bytes are intact, so the verdict is untrusted and the explanation says why."""
    from detectors.report import Verdict
    from detectors.verify import verify

    signed = _signed_by(ca, tmp_path, eku=x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1"))
    root = tmp_path / "root.pem"
    root.write_bytes(ca.root.public_bytes(PEM))
    r = verify(signed, settings=load_settings(tmp_path / "home"), keyring=[], trust_anchors=[root])
    assert "signingCredential.invalid" in r.credentials.failure_codes
    assert r.verdict is Verdict.CREDENTIALS_UNTRUSTED
    assert "extended key usage" in r.explanation and "Nothing indicates" in r.explanation


def test_a_damaged_or_expired_anchor_is_no_fault_of_the_file_verified(tmp_path, ca, capsys, monkeypatch):
    """A damaged anchor stops verification as a configuration error (exit 3) instead of calling
    every intact file tampered; an expired one is left out, and each report with credentials
    says so."""
    from detectors.report import Verdict
    from detectors.verify import verify

    signed = _signed_by(ca, tmp_path)
    home = tmp_path / "home"
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIBgarbage\n-----END CERTIFICATE-----\n"
                      + ca.root.public_bytes(PEM).decode())
    with pytest.raises(ConfigError, match="certificate 1 of 2"):
        verify(signed, settings=load_settings(home), keyring=[], trust_anchors=[bundle])
    monkeypatch.setenv("FOLEYSEAL_HOME", str(home))
    rc, out, err = run_cli(capsys, "verify", "--no-store", "--trust-anchors", str(bundle), str(signed))
    assert rc == 3 and "certificate 1 of 2 cannot be parsed" in err and "tampered" not in out
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    old = make_certificate("Old Root", key.public_key(), issuer_cert=None, issuer_key=key, ca=True,
                           not_before=now - dt.timedelta(days=800), not_after=now - dt.timedelta(days=1))
    expired = tmp_path / "expired.pem"
    expired.write_bytes(old.public_bytes(PEM))
    root = tmp_path / "root.pem"
    root.write_bytes(ca.root.public_bytes(PEM))
    r = verify(signed, settings=load_settings(home), keyring=[], trust_anchors=[root, expired])
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.trust_anchors == 1
    assert any("CN=Old Root" in n and "expired on" in n for n in r.notes)
    # untrusted for want of that anchor: the explanation points at the note, not only "add the root"
    r = verify(signed, settings=load_settings(home), keyring=[], trust_anchors=[expired])
    assert r.verdict is Verdict.CREDENTIALS_UNTRUSTED
    assert "if the signer's root is one of them, that is why" in r.explanation


def test_an_empty_sidecar_is_named_not_taken_for_tampered_credentials(tmp_path, capsys, monkeypatch):
    from detectors.report import Verdict
    from detectors.verify import verify

    ogg = tmp_path / "x.ogg"
    sf.write(ogg, np.random.default_rng(2).standard_normal((48_000, 1)).astype(np.float32) * 0.1, 48_000)
    (tmp_path / "x.ogg.c2pa").write_bytes(b"")
    r = verify(ogg, settings=load_settings(tmp_path / "home"), keyring=[])
    assert r.verdict is Verdict.NO_EVIDENCE
    assert any("x.ogg.c2pa is empty (0 bytes)" in n for n in r.notes)

    # a sidecar of garbage: tampered, and the signer it could not read is said so, not "None"
    (tmp_path / "x.ogg.c2pa").write_bytes(b"not a manifest" * 10)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "home"))
    rc, out, _ = run_cli(capsys, "verify", str(ogg))
    assert rc == 5 and "signer (unreadable)" in out and "signer None" not in out, out


def test_a_signing_key_others_can_read_is_refused_like_a_watermark_key(home, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    s = load_settings()
    s.signing_key_path.chmod(0o644)
    rc, out, err = run_cli(capsys, "sign", str(_wav(tmp_path / "a.wav")), str(tmp_path / "b.wav"))
    assert rc == 3 and "signing key file has permissions 0644" in err and "chmod 600" in err
    assert not (tmp_path / "b.wav").exists()
    rc, out, err = run_cli(capsys, "keys", "show")
    assert rc == 0 and "signing-key.pem (unusable: signing key file has permissions 0644" in out
    s.signing_key_path.chmod(0o600)
    rc, out, err = run_cli(capsys, "sign", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"))
    assert rc == 0, err


def test_import_takes_an_openssl_sec1_key_and_makes_the_home_private(home, tmp_path, capsys, ca):
    """`openssl ecparam -genkey` writes "BEGIN EC PRIVATE KEY" (SEC1), which c2pa refused with a
    message naming no file; the key is installed as PKCS#8. A home that `keys import` makes is
    0700, as `keys init` makes it (it holds the store and the settings)."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    assert b"BEGIN EC PRIVATE KEY" in key_path.read_bytes()
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                           "--root", str(root))
    assert rc == 0, err
    s = load_settings()
    assert s.signing_key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    rc, out, err = run_cli(capsys, "sign", str(_wav(tmp_path / "a.wav")), str(tmp_path / "b.wav"))
    assert rc == 0, err
    # one placed in the home by hand is read too
    s.signing_key_path.write_bytes(key_path.read_bytes())
    rc, out, err = run_cli(capsys, "sign", str(tmp_path / "a.wav"), str(tmp_path / "c.wav"))
    assert rc == 0, err


def test_import_for_a_signing_callback_leaves_no_earlier_key_or_root(home, tmp_path, capsys, ca, monkeypatch):
    """After `keys init`, importing a chain whose key an HSM holds (no --key, no --root) kept the
    development signing key and root: `keys show` listed that unrelated root, and verifiers of
    this home went on trusting it."""
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    s = load_settings()
    leaf, key = ca.leaf()
    chain, key_path, _ = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    _fake_kms(tmp_path, monkeypatch, key_path)
    monkeypatch.setenv("FOLEYSEAL_SIGNER_CALLBACK", "fake_kms:sign")
    rc, out, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--force")
    assert rc == 0, err
    assert not s.signing_key_path.exists() and not s.root_cert_path.exists()
    rc, out, err = run_cli(capsys, "keys", "show")
    assert rc == 0 and "Development Root" not in out and "Test Signer" in out


def test_a_keys_init_that_fails_midway_leaves_a_home_a_retry_can_use(home, capsys, monkeypatch):
    """On a full disk, `keys init` left a signing key without its chain (or a chain without its
    watermark key); the next `keys init` refused that home as incomplete, and `sign` said to run
    `keys init`."""
    import errno

    import provenance.keys.pki as pki
    import provenance.watermark.keys as wkeys

    s = load_settings()
    calls = {"n": 0}
    real_fsync = pki.os.fsync

    def third_write_fails(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(pki.os, "fsync", third_write_fails)
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 3 and "space" in err
    assert not any(p.exists() for p in (s.signing_key_path, s.cert_chain_path, s.root_cert_path))
    monkeypatch.setattr(pki.os, "fsync", real_fsync)

    def no_room(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wkeys, "save_key", no_room)
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 3
    assert not any(p.exists() for p in (s.signing_key_path, s.cert_chain_path, s.root_cert_path, s.watermark_key_path))
    monkeypatch.undo()
    monkeypatch.setenv("FOLEYSEAL_HOME", str(home))
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0 and "created: certificate chain, watermark key" in out, err


def test_a_signing_certificate_that_may_sign_certificates_is_refused_with_a_reason(home, tmp_path, capsys, ca):
    """c2pa refused such a leaf with "run `foleyseal keys import` to get the exact fault", from
    inside `keys import` itself."""
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Signs Certs")]))
            .issuer_name(ca.inter.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.inter_key.public_key()), critical=False)
            .sign(ca.inter_key, hashes.SHA256()))
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path), "--root", str(root))
    assert rc == 3 and "keyCertSign" in err and "run `foleyseal keys import`" not in err
    assert not (home / "keys").exists()


def test_a_root_bundle_given_as_root_picks_the_chains_own(home, tmp_path, capsys, ca):
    """`--root` with a bundle of roots (a company's trust bundle) was blamed on chain.pem as
    "the wrong order"."""
    leaf, key = ca.leaf()
    chain, key_path, root = ca.write(tmp_path / "in", [leaf, ca.inter], key)
    other = CA()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other.root.public_bytes(PEM) + ca.root.public_bytes(PEM))
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(bundle))
    assert rc == 0, err
    assert load_settings().root_cert_path.read_bytes() == ca.root.public_bytes(PEM)
    bundle.write_bytes(other.root.public_bytes(PEM) + CA().root.public_bytes(PEM))
    rc, _, err = run_cli(capsys, "keys", "import", "--cert-chain", str(chain), "--key", str(key_path),
                         "--root", str(bundle), "--force")
    assert rc == 3 and "none of the 2 root certificates given" in err and "wrong order" not in err


def test_keys_init_keeps_a_complete_home_it_cannot_write_to(home, capsys, monkeypatch):
    """On a read-only disk, `keys init` of a complete home failed ("cannot make or write the
    FoleySeal home") although --help says existing files are kept, exit 0."""
    rc, _, err = run_cli(capsys, "keys", "init")
    assert rc == 0, err
    import provenance.keys.pki as pki

    def read_only(*_a, **_k):
        raise AssertionError("a complete home needs no write")

    monkeypatch.setattr(pki, "make_home", read_only)
    rc, out, err = run_cli(capsys, "keys", "init")
    assert rc == 0 and "kept existing: certificate chain, watermark key" in out, err
