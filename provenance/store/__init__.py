"""The manifest store: detached C2PA manifests indexed by watermark payload and asset hash."""

from provenance.store.migrations import MIGRATIONS, Migration, current_version, latest_version, migrate
from provenance.store.repository import IssuedPayloads, ManifestStore, PayloadCollision, normalise_url, open_store

__all__ = [
    "IssuedPayloads",
    "MIGRATIONS",
    "ManifestStore",
    "Migration",
    "PayloadCollision",
    "current_version",
    "latest_version",
    "migrate",
    "normalise_url",
    "open_store",
]
