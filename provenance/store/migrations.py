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


MANIFESTS_TABLE = "foleyseal_manifests"
_V1_COLUMNS = frozenset({"id", "algorithm", "payload", "status", "manifest", "asset_sha256", "mime_type",
                         "duration_s", "created_at", "title"})
"""The manifests table's columns as migration 1 makes them (every later version keeps them)."""


def _missing_columns(conn: sa.Connection) -> set[str] | None:
    """The columns of migration 1 that the database's manifests table lacks; None when it has
    no such table."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(MANIFESTS_TABLE):
        return None
    return set(_V1_COLUMNS) - {c["name"] for c in inspector.get_columns(MANIFESTS_TABLE)}


def _v1_initial(conn: sa.Connection) -> None:
    # create_all skips a table that exists: another tool's table of this name would be taken for
    # the store and recorded as migrated, and every later read of it would fail
    missing = _missing_columns(conn)
    if missing:
        raise StoreError(
            f"the database already holds a table {MANIFESTS_TABLE} that FoleySeal did not make (it lacks the "
            f"columns {', '.join(sorted(missing))}); give the manifest store a database or schema of its own"
        )
    md = sa.MetaData()
    sa.Table(
        MANIFESTS_TABLE,
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
        _check_tables(engine, version)
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
    _check_tables(engine, version)
    return version


def _check_tables(engine: sa.Engine, version: int) -> None:
    """:class:`StoreError` when the tables that schema ``version`` records are not there as it
    made them: a table dropped by hand, a partial restore. A store that opened could then not
    answer a single lookup, and a service on it would call itself healthy."""
    if version < 1:
        return
    with engine.connect() as conn:
        missing = _missing_columns(conn)
        conn.rollback()
    if missing is None:
        raise StoreError(f"the manifest store's schema is at version {version}, but its table {MANIFESTS_TABLE} is "
                         "missing (dropped, or a partial restore); restore it from a backup")
    if missing:
        raise StoreError(f"the manifest store's table {MANIFESTS_TABLE} lacks the columns "
                         f"{', '.join(sorted(missing))} that schema version {version} has (altered by hand, or "
                         "another tool's table); restore it from a backup")
