"""C2PA Content Credentials: the manifest FoleySeal signs, signing, reading, sidecars.

``manifest`` builds the assertions (AI disclosure, soft binding, generation record);
``sign`` embeds them (or writes a sidecar) and makes the detached manifest for the store;
``read`` validates what a file carries; ``sidecar`` names ``.c2pa`` files.
"""

from provenance.c2pa.manifest import (
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    Ingredient,
    ManifestSpec,
    build_definition,
    generation_assertion,
    new_manifest_label,
)
from provenance.c2pa.read import read_credentials, reader_context
from provenance.c2pa.sidecar import find_sidecar, sidecar_path
from provenance.c2pa.sign import EMBEDDABLE, MIME_BY_SUFFIX, SignResult, can_embed, mime_for, sign_file

__all__ = [
    "EMBEDDABLE",
    "GENERATION_LABEL",
    "MIME_BY_SUFFIX",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Ingredient",
    "ManifestSpec",
    "SignResult",
    "build_definition",
    "can_embed",
    "find_sidecar",
    "generation_assertion",
    "mime_for",
    "new_manifest_label",
    "read_credentials",
    "reader_context",
    "sidecar_path",
    "sign_file",
]
