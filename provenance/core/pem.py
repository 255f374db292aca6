"""Certificate text for people: what a file given where PEM was wanted is instead (DER, PKCS#12:
operators' CAs hand these out as often as PEM, with the ``openssl`` command that converts it), and
a certificate name written one way in every message."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


def describe_name(name: x509.Name) -> str:
    """A certificate name in reading order, ``CN=..., O=...`` (RFC 4514 escaping per attribute)."""
    return ", ".join(attr.rfc4514_string() for attr in name)


def binary_format_hint(data: bytes) -> str | None:
    """What to do with ``data``, a DER certificate or key or a PKCS#12 bundle given where PEM was
    wanted; None for anything else."""
    try:
        pkcs12.load_key_and_certificates(data, None)
        is_p12 = True
    except TypeError:  # a password-protected bundle is still a bundle
        is_p12 = True
    except ValueError:
        # with a passphrase it fails like garbage; a PFX still opens with SEQUENCE { INTEGER 3, ...
        is_p12 = data[:1] == b"\x30" and b"\x02\x01\x03\x30" in data[2:10]
    if is_p12:
        return ("is a PKCS#12 bundle (.p12/.pfx), not PEM; split it: `openssl pkcs12 -in FILE -nokeys "
                "-out chain.pem` and `openssl pkcs12 -in FILE -nocerts -nodes -out key.pem`")
    try:
        x509.load_der_x509_certificate(data)
        return "is a DER (binary) certificate, not PEM; convert it: `openssl x509 -inform der -in FILE -out cert.pem`"
    except ValueError:
        pass
    try:
        serialization.load_der_private_key(data, None)
        is_der_key = True
    except TypeError:
        is_der_key = True
    except ValueError:
        is_der_key = False
    if is_der_key:
        return "is a DER (binary) private key, not PEM; convert it: `openssl pkey -inform der -in FILE -out key.pem`"
    return None
