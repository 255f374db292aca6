"""Tables of the manifest store (the current schema, SQLAlchemy Core).

``foleyseal_manifests``: one row per published asset (or per reservation in flight).

=============  ==============================================================================
column         meaning
=============  ==============================================================================
id             manifest label ``urn:c2pa:<uuid4>`` (primary key; URL-safe)
algorithm      soft-binding algorithm, e.g. ``org.foleyseal.audio-wm.1``
payload        soft-binding value: the watermark payload, lower-case hex
status         ``reserved`` (payload allocated, file not yet published) or ``published``
manifest       C2PA manifest store bytes (``application/c2pa``); NULL while reserved
asset_sha256   SHA-256 (hex) of the published file's bytes
mime_type      MIME type of the published file
duration_s     audio length, seconds
created_at     when the row was made (UTC)
title          asset title, if any
=============  ==============================================================================

``UNIQUE (algorithm, payload)`` is what makes payloads unique across concurrent writers: a
reservation that collides fails to insert and ``mark`` draws a new payload.
``foleyseal_schema`` holds the applied migration versions (see :mod:`.migrations`).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

manifests = sa.Table(
    "foleyseal_manifests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(128), nullable=False),
    sa.Column("payload", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("manifest", sa.LargeBinary, nullable=True),
    sa.Column("asset_sha256", sa.String(64), nullable=True),
    sa.Column("mime_type", sa.String(64), nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.UniqueConstraint("algorithm", "payload", name="uq_foleyseal_manifests_alg_payload"),
    sa.Index("ix_foleyseal_manifests_asset_sha256", "asset_sha256"),
    sa.Index("ix_foleyseal_manifests_status_created", "status", "created_at"),
)

schema_versions = sa.Table(
    "foleyseal_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

STATUS_RESERVED = "reserved"
STATUS_PUBLISHED = "published"
