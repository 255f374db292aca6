"""The manifest store: detached C2PA manifests, found again by watermark payload or asset hash.

Any SQLAlchemy URL works. The default is SQLite in the FoleySeal home (WAL journal and a
30 s busy timeout, so several ``mark`` processes can write at once); for a shared,
multi-writer deployment use PostgreSQL (``postgresql+psycopg://user:pass@host/db``; install
the ``postgres`` extra). A plain ``postgresql://`` URL is taken to mean psycopg 3.

Writing protocol used by :func:`provenance.mark.mark` (so that no file is ever published
without its record, and no record survives a failed ``mark``):

1. :meth:`ManifestStore.reserve_payload` inserts a ``reserved`` row holding a fresh random
   payload; the UNIQUE constraint on (algorithm, payload) makes the payload unique even
   across processes (a collision simply draws again);
2. the file is watermarked and signed into a temporary path;
3. :meth:`ManifestStore.publish` fills the row (manifest bytes, hash ...) and marks it
   ``published``; only then is the file renamed into place;
4. on any failure :meth:`ManifestStore.discard` deletes the row.

Lookups only ever see ``published`` rows.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from provenance.core.c2pa_types import StoreRecord
from provenance.core.config import Settings
from provenance.core.errors import StoreError
from provenance.store.migrations import migrate
from provenance.store.models import STATUS_PUBLISHED, STATUS_RESERVED, manifests

SQLITE_BUSY_TIMEOUT_S = 30.0
PAYLOAD_BYTES = 8
_LOW_DISK_BYTES = 16 << 20
"""Free bytes under which a SQLite store's I/O error is put down to a full disk."""


class PayloadCollision(StoreError):
    """The (algorithm, payload) pair is already taken."""


def normalise_url(url: str) -> sa.URL:
    """Parse an SQLAlchemy URL; ``postgresql://`` selects the psycopg 3 driver."""
    try:
        u = make_url(url)
    except ValueError as exc:  # int() of the port: keep the URL out of it (password)
        raise StoreError("not a valid database URL: its port is not a number (a password holding ':', '/' or '@' "
                         "must be percent-encoded, '@' as %40)") from exc
    except Exception as exc:  # sqlalchemy raises ArgumentError; keep the URL out of it (password)
        raise StoreError(f"not a valid database URL: {exc}") from exc
    if u.host and "@" in u.host:
        # user:p@ss@host splits at the first '@': part of the password would be taken for the host
        raise StoreError("not a valid database URL: its host name holds '@'; a password holding '@' must be "
                         "percent-encoded (%40)")
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


_SECRET_PARAMETERS = frozenset({"password", "passwd", "sslpassword"})
"""Query parameters of a database URL that hold a secret (libpq takes ``?password=``)."""


def display_url(url: sa.URL) -> str:
    """``url`` as messages and reports show it: the password, in the user part or in the query,
    as ``***``."""
    hidden = "HIDDEN-SECRET"  # rendering percent-encodes '*'
    query = {k: (hidden if k.lower() in _SECRET_PARAMETERS else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace(hidden, "***")


def _set_wal(cur: Any) -> None:
    """Switch a SQLite database to WAL (a persistent setting) unless it already is.

    The switch needs an exclusive lock, and SQLite answers "database is locked" at once, without
    its busy handler, when several connections open a new database together: retry until the
    busy timeout instead of failing the open.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _install_sqlite_pragmas(engine: sa.Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE can be issued.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if not read_only:  # the journal mode is a setting of the file: only a writer changes it
            _set_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # Writers take the lock up front: a deferred transaction that upgrades to a write
        # lock later can fail with SQLITE_BUSY without waiting for the busy timeout.
        write = conn.get_execution_options().get("foleyseal_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _record(row: Any) -> StoreRecord:
    return StoreRecord(
        id=row.id,
        payload=row.payload,
        algorithm=row.algorithm,
        manifest=bytes(row.manifest or b""),
        asset_sha256=row.asset_sha256 or "",
        mime_type=row.mime_type or "",
        duration_s=float(row.duration_s or 0.0),
        created_at=_aware(row.created_at),
        title=row.title,
    )


def _content_columns(record: StoreRecord) -> dict:
    """The columns a published record fills beyond its id, algorithm and payload."""
    return {
        "manifest": record.manifest,
        "asset_sha256": record.asset_sha256.lower(),
        "mime_type": record.mime_type,
        "duration_s": record.duration_s,
        "created_at": record.created_at,
        "title": record.title,
    }


class ManifestStore:
    """A manifest store at an SQLAlchemy URL; migrates the schema when opened."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """Open (and migrate) the store at ``url``. ``read_only`` (SQLite): open an existing file
        for reading only, as a verifier may on a read-only medium; nothing is created, switched
        or migrated, and a write raises :class:`StoreError`."""
        self.url = normalise_url(url)
        self._safe_url = display_url(self.url)
        kwargs: dict[str, Any] = {}
        connect_url = self.url
        self._read_only = read_only
        self._file: Path | None = None
        """The SQLite database file, followed by its identity (see :meth:`_follow_file`)."""
        self._file_id: tuple[int, int] | None = None
        if self.url.get_backend_name() == "sqlite":
            db = self.url.database
            if not db or db == ":memory:" or "mode=memory" in db or self.url.query.get("mode") == "memory":
                # a published file whose record dies with this process could never be traced back
                raise StoreError(
                    f"manifest store {self._safe_url} keeps its records in this process's memory: they "
                    "would be lost when it exits, and no other process could read them; give a database "
                    "file (sqlite:////path/to/manifests.sqlite3) or a server"
                )
            plain_file = not db.startswith("file:")
            if plain_file:
                self._file = Path(db).expanduser().resolve()
            if read_only and plain_file:
                connect_url = _read_only_sqlite_url(Path(db).expanduser())
            elif plain_file:
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(connect_url, **kwargs)
        except ModuleNotFoundError as exc:
            hint = " (install the extra: pip install 'foleyseal[postgres]')" if "psycopg" in str(exc) else ""
            raise StoreError(f"cannot open manifest store {self._safe_url}: {exc}{hint}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open manifest store {self._safe_url}: {exc}") from exc
        if self.url.get_backend_name() == "sqlite":
            _install_sqlite_pragmas(self.engine, read_only=read_only)
        with self._errors("open"):
            self.schema_version = migrate(self.engine)
        if self._file is not None:
            self._file_id = _identity(self._file)

    # -- plumbing ----------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except sa.exc.IntegrityError as exc:
            raise PayloadCollision(f"manifest store {self._safe_url}: {what}: duplicate entry") from exc
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"manifest store {self._safe_url}: {what} failed: {self._full_disk(detail)}") from exc

    def _full_disk(self, detail: str) -> str:
        """``detail`` of a SQLite failure, led by the cause where it is a full disk: SQLite says
        "disk I/O error" when its journal cannot grow, which hides it."""
        if self._file is None or not any(s in detail for s in ("disk I/O error", "disk is full")):
            return detail
        try:
            free = shutil.disk_usage(self._file.parent).free
        except OSError:
            return detail
        if free >= _LOW_DISK_BYTES:
            return detail
        return f"no space left on the device holding {self._file.parent} ({free} bytes free; SQLite: {detail})"

    def _follow_file(self, what: str) -> None:
        """Keep to the SQLite file that the store's path names now. A long-lived process (the
        service and its workers) held pooled connections to the file it opened: a store deleted
        and made again, or restored from a backup over the old one, was never seen (every record
        written since unknown, health "ok"). A new file is reopened (and migrated); a missing
        one is a :class:`StoreError`, not an empty store."""
        if self._file is None:
            return
        try:
            now = _identity(self._file)
        except FileNotFoundError:
            raise StoreError(f"manifest store {self._safe_url}: {what} failed: its file is gone "
                             "(deleted or moved since it was opened)") from None
        if now != self._file_id:
            self.engine.dispose()  # connections to the old file close as they come back
            self._file_id = now
            if not self._read_only:
                with self._errors("open"):
                    self.schema_version = migrate(self.engine)

    @contextmanager
    def _write(self, what: str) -> Iterator[sa.Connection]:
        self._follow_file(what)
        with self._errors(what), self.engine.connect().execution_options(foleyseal_write=True) as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self, what: str) -> Iterator[sa.Connection]:
        self._follow_file(what)
        with self._errors(what), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ManifestStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ManifestStore({self._safe_url!r})"

    # -- writing -----------------------------------------------------------------------

    def reserve(self, record_id: str, algorithm: str, payload: str) -> None:
        """Insert a ``reserved`` row; :class:`PayloadCollision` if the payload is taken."""
        with self._write("reserve payload") as conn:
            conn.execute(
                manifests.insert().values(
                    id=record_id,
                    algorithm=algorithm,
                    payload=payload.lower(),
                    status=STATUS_RESERVED,
                    created_at=dt.datetime.now(dt.timezone.utc),
                )
            )

    def reserve_payload(self, record_id: str, algorithm: str, *, attempts: int = 16) -> str:
        """Reserve a fresh random 64-bit payload (16 hex digits) under ``record_id``; return it.

        Payloads come from the operating system's CSPRNG (unpredictable); uniqueness is
        enforced by the database, so concurrent processes never share one.
        """
        for _ in range(attempts):
            payload = secrets.token_bytes(PAYLOAD_BYTES).hex()
            try:
                self.reserve(record_id, algorithm, payload)
                return payload
            except PayloadCollision:
                if self._exists(record_id):
                    raise StoreError(f"manifest id {record_id} is already in the store") from None
        raise StoreError(f"could not allocate a unique payload in {attempts} attempts")

    def _exists(self, record_id: str) -> bool:
        with self._read("look up id") as conn:
            return conn.execute(sa.select(manifests.c.id).where(manifests.c.id == record_id)).first() is not None

    def publish(self, record: StoreRecord) -> None:
        """Complete the reservation ``record.id`` with the record's manifest and metadata."""
        with self._write("publish record") as conn:
            result = conn.execute(
                manifests.update()
                .where(
                    manifests.c.id == record.id,
                    manifests.c.status == STATUS_RESERVED,
                    manifests.c.algorithm == record.algorithm,
                    manifests.c.payload == record.payload.lower(),
                )
                .values(status=STATUS_PUBLISHED, **_content_columns(record))
            )
            if result.rowcount != 1:
                raise StoreError(f"no reservation {record.id} for payload {record.payload} to publish")

    def add(self, record: StoreRecord) -> None:
        """Insert a complete, published record in one step (:class:`PayloadCollision` if taken)."""
        with self._write("add record") as conn:
            conn.execute(
                manifests.insert().values(
                    id=record.id,
                    algorithm=record.algorithm,
                    payload=record.payload.lower(),
                    status=STATUS_PUBLISHED,
                    **_content_columns(record),
                )
            )

    def discard(self, record_id: str) -> bool:
        """Delete a row (reserved or published); True if there was one."""
        with self._write("discard record") as conn:
            return conn.execute(manifests.delete().where(manifests.c.id == record_id)).rowcount > 0

    def purge_reservations(self, older_than_s: float = 3600.0) -> int:
        """Delete reservations older than ``older_than_s`` seconds (left by killed processes)."""
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=older_than_s)
        with self._write("purge reservations") as conn:
            return conn.execute(
                manifests.delete().where(manifests.c.status == STATUS_RESERVED, manifests.c.created_at < cutoff)
            ).rowcount

    # -- reading -----------------------------------------------------------------------

    def get(self, record_id: str) -> StoreRecord | None:
        with self._read("get record") as conn:
            row = conn.execute(
                sa.select(manifests).where(manifests.c.id == record_id, manifests.c.status == STATUS_PUBLISHED)
            ).first()
        return _record(row) if row is not None else None

    def iter_records(self, batch: int = 200) -> Iterator[StoreRecord]:
        """Every published record, by id, read ``batch`` at a time (a store may not fit in memory)."""
        rows = self._pages("list records", manifests, manifests.c.status == STATUS_PUBLISHED, manifests.c.id, batch)
        return (_record(r) for r in rows)

    def find_by_payload(self, algorithm: str, payload: str) -> StoreRecord | None:
        with self._read("find by payload") as conn:
            row = conn.execute(
                sa.select(manifests).where(
                    manifests.c.algorithm == algorithm,
                    manifests.c.payload == payload.lower(),
                    manifests.c.status == STATUS_PUBLISHED,
                )
            ).first()
        return _record(row) if row is not None else None

    def find_by_asset_hash(self, sha256: str) -> list[StoreRecord]:
        with self._read("find by asset hash") as conn:
            rows = conn.execute(
                sa.select(manifests)
                .where(manifests.c.asset_sha256 == sha256.lower(), manifests.c.status == STATUS_PUBLISHED)
                .order_by(manifests.c.created_at, manifests.c.id)
            ).all()
        return [_record(r) for r in rows]

    def issued_payloads(self, algorithm: str) -> "IssuedPayloads":
        """The payloads this store has issued under ``algorithm``, as the watermark detector's
        :class:`~provenance.watermark.known.KnownPayloads`."""
        return IssuedPayloads(self, algorithm)

    def find_payloads(self, algorithm: str, payloads: Sequence[str]) -> set[str]:
        """Which of ``payloads`` (hex) the store has issued under ``algorithm``, reserved or published."""
        wanted = sorted({p.lower() for p in payloads})
        found: set[str] = set()
        with self._read("find payloads") as conn:
            for i in range(0, len(wanted), 500):  # well under every backend's bound on parameters
                rows = conn.execute(
                    sa.select(manifests.c.payload).where(
                        manifests.c.algorithm == algorithm, manifests.c.payload.in_(wanted[i : i + 500])
                    )
                ).all()
                found.update(r.payload for r in rows)
        return found

    def iter_payloads(self, algorithm: str, batch: int = 10_000) -> Iterator[str]:
        """Every payload (hex) issued under ``algorithm``, reserved or published, in batches of
        ``batch`` rows (the connection is not held between batches)."""
        rows = self._pages("list payloads", manifests.c.payload, manifests.c.algorithm == algorithm,
                           manifests.c.payload, batch)
        return (r.payload for r in rows)

    def _pages(self, what: str, columns: Any, condition: Any, key: Any, batch: int) -> Iterator[Any]:
        """The rows of ``columns`` where ``condition`` holds, in ``key`` order, read ``batch`` rows
        at a time from where the last page ended (the connection is not held between pages)."""
        after = ""
        while True:
            with self._read(what) as conn:
                rows = conn.execute(
                    sa.select(columns).where(condition, key > after).order_by(key).limit(batch)
                ).all()
            if not rows:
                return
            yield from rows
            after = getattr(rows[-1], key.name)

    def count_issued(self, algorithm: str) -> int:
        """Number of payloads issued under ``algorithm``, reserved or published."""
        return self._count(manifests.c.algorithm == algorithm)

    def count(self) -> int:
        """Number of published records."""
        return self._count(manifests.c.status == STATUS_PUBLISHED)

    def ping(self) -> None:
        """Read one row, as a health check: raises :class:`StoreError` when the store cannot be
        read now (server down, file damaged or gone). Cheap on any size of store, unlike a count."""
        with self._read("health check") as conn:
            conn.execute(sa.select(manifests.c.id).limit(1)).first()

    def count_reserved(self) -> int:
        return self._count(manifests.c.status == STATUS_RESERVED)

    def _count(self, condition: Any) -> int:
        """Number of rows that satisfy ``condition``."""
        with self._read("count") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(manifests).where(condition)).scalar_one())


class IssuedPayloads:
    """A store's issued payloads under one algorithm, for matching a damaged watermark against
    them (:mod:`provenance.watermark.known`). Every payload the store issues is a fresh random
    64-bit number (:meth:`ManifestStore.reserve_payload`), which the false-match bound needs.
    The count is read once: a verification does not need it to the record."""

    def __init__(self, store: ManifestStore, algorithm: str) -> None:
        self._store = store
        self._algorithm = algorithm
        self._count: int | None = None
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            if self._count is None:
                self._count = self._store.count_issued(self._algorithm)
            return self._count

    def find(self, payloads: Sequence[str]) -> set[str]:
        with self._lock:
            return self._store.find_payloads(self._algorithm, payloads)

    def payloads(self) -> Iterator[str]:
        """Every payload issued under the algorithm (for correlation with their codewords)."""
        return self._store.iter_payloads(self._algorithm)


def _identity(path: Path) -> tuple[int, int]:
    """(device, inode) of the file at ``path``: which file it is, whatever its name."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def open_store(settings: Settings, *, read_only: bool = False) -> ManifestStore:
    """The manifest store the settings name (SQLite in the home by default)."""
    return ManifestStore(settings.store_url, read_only=read_only)


def _read_only_sqlite_url(path: Path) -> sa.URL:
    """An SQLite URI opening ``path`` read-only. In a folder this process cannot write to, SQLite
    cannot make the shared-memory file a WAL database needs to be read: the file is then opened
    as immutable, which is sound there, since no process can change it either."""
    if not path.is_file():
        raise StoreError(f"manifest store {path} does not exist")
    query = {"mode": "ro", "uri": "true"}
    if not os.access(path.parent, os.W_OK):
        query["immutable"] = "1"
    return sa.URL.create("sqlite", database=f"file:{urllib.parse.quote(str(path.resolve()))}", query=query)
