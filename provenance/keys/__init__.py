"""Signing keys and certificates: the development chain, checks and import, and signers.

``pki`` builds and validates certificate chains with the profile C2PA validators accept;
``signers`` turns the configuration into a c2pa signer (a key file, or an HSM/KMS callback).
"""

from provenance.keys.pki import (
    CertInfo,
    DevChain,
    InstalledFiles,
    ValidatedChain,
    describe_installed,
    generate_dev_chain,
    import_chain,
    install_dev_chain,
    make_certificate,
    validate_chain,
)
from provenance.keys.signers import SigningIdentity, load_identity, probe_signing, resolve_callback

__all__ = [
    "CertInfo",
    "DevChain",
    "InstalledFiles",
    "SigningIdentity",
    "ValidatedChain",
    "describe_installed",
    "generate_dev_chain",
    "import_chain",
    "install_dev_chain",
    "load_identity",
    "make_certificate",
    "probe_signing",
    "resolve_callback",
    "validate_chain",
]
