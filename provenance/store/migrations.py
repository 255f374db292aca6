"""Versioned schema migrations of the manifest store.

Each migration is a numbered step applied once, in order, inside one transaction that also
records it in ``foleyseal_schema``. Opening a store applies the missing steps; a database
whose version is newer than this FoleySeal knows is refused (an old program must not write
into a newer schema). Concurrent openers (several ``mark`` processes on a fresh store) are
serialised: PostgreSQL by a transaction-scoped advisory lock, SQLite by ``BEGIN IMMEDIATE``
(the write lock), and each re-reads the version after taking the lock.

A migration's DDL is written out in the step itself (a snapshot), never derived from
:mod:`.models`, so that the model can change later without rewriting history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from provenance.core.errors import StoreError

_ADVISORY_LOCK_KEY = 0x466F6C6579  # "Foley": one lock id for FoleySeal migrations


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _v1_initial(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "foleyseal_manifests",
        md,
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
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "manifests table: unique (algorithm, payload), indexes on asset hash and status", _v1_initial),
)


def _schema_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "foleyseal_schema",
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def current_version(conn: sa.Connection) -> int:
    """Highest applied migration (0 for an empty database)."""
    if not sa.inspect(conn).has_table("foleyseal_schema"):
        return 0
    table = _schema_table(sa.MetaData())
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.version), 0))).scalar_one())


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


def migrate(engine: sa.Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database up to the newest migration; return the resulting version."""
    steps = sorted(migrations, key=lambda m: m.version)
    if [m.version for m in steps] != list(range(1, len(steps) + 1)):
        raise StoreError("migrations must be numbered 1, 2, 3 ... without gaps")
    latest = latest_version(steps)
    # Fast path without the write lock: nothing to do.
    with engine.connect() as conn:
        version = current_version(conn)
        conn.rollback()
    if version > latest:
        raise StoreError(
            f"the manifest store has schema version {version}, newer than this FoleySeal supports "
            f"({latest}); upgrade FoleySeal"
        )
    if version == latest:
        return version
    with engine.connect().execution_options(foleyseal_write=True) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            table = _schema_table(sa.MetaData())
            table.create(conn, checkfirst=True)
            version = current_version(conn)
            for step in steps:
                if step.version <= version:
                    continue
                step.apply(conn)
                conn.execute(
                    table.insert().values(
                        version=step.version,
                        description=step.description,
                        applied_at=dt.datetime.now(dt.timezone.utc),
                    )
                )
                version = step.version
    return version
