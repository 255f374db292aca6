"""Manifest store: records, uniqueness, reservations, migrations, concurrency.

Runs against SQLite always, and against PostgreSQL too when ``FOLEYSEAL_TEST_DATABASE_URL``
is set (``.ci/run`` starts a local server): each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from provenance.core.c2pa_types import StoreRecord
from provenance.core.config import load_settings
from provenance.core.errors import StoreError
from provenance.store import MIGRATIONS, ManifestStore, Migration, PayloadCollision, current_version, migrate
from provenance.store.repository import normalise_url

PG_URL = os.environ.get("FOLEYSEAL_TEST_DATABASE_URL")
ALG = "org.foleyseal.audio-wm.1"


@pytest.fixture
def store_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a new schema on the PostgreSQL server."""
    yield from _fresh_url(request.param, tmp_path)


def _fresh_url(backend: str, tmp_path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("FOLEYSEAL_TEST_DATABASE_URL not set")

    base = normalise_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    query = dict(base.query)
    query["options"] = f"-csearch_path={schema}"
    try:
        yield base.set(query=query).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(not PG_URL, reason="no PostgreSQL URL"))]
backends = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)


def make_record(record_id: str, payload: str, *, sha: str = "ab" * 32, title: str | None = "t") -> StoreRecord:
    return StoreRecord(
        id=record_id,
        payload=payload,
        algorithm=ALG,
        manifest=b"\x00c2pa-manifest-bytes\xff" * 10,
        asset_sha256=sha,
        mime_type="audio/wav",
        duration_s=6.5,
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        title=title,
    )


def test_a_database_password_is_never_shown(monkeypatch):
    """A password given as libpq's ?password= was printed in clear in every message and by `keys
    show`; one holding an unencoded '@' was half shown, with a DNS error for advice."""
    with pytest.raises(StoreError) as err:
        ManifestStore("postgresql://foleyseal@127.0.0.1:1/db?password=S3cr3tPW&sslmode=disable")
    assert "S3cr3tPW" not in str(err.value) and "password=***" in str(err.value), err.value
    for url, said in [("postgresql://foleyseal:S3cr@tPW@127.0.0.1:5432/db", "percent-encoded (%40)"),
                      ("postgresql://foleyseal:S3cr3tPW@127.0.0.1:notaport/db", "port is not a number")]:
        with pytest.raises(StoreError, match=re.escape(said)) as err:
            ManifestStore(url)
        assert "S3cr" not in str(err.value) and "tPW" not in str(err.value), err.value


@backends
def test_another_tools_table_of_the_same_name_is_refused_not_adopted(store_url):
    """create_all skips a table that exists: another tool's foleyseal_manifests was stamped as
    schema version 1 and every lookup on it then failed ("column ... status does not exist")."""
    engine = sa.create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE foleyseal_manifests (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("INSERT INTO foleyseal_manifests VALUES (1, 'theirs')")
    with pytest.raises(StoreError, match="already holds a table foleyseal_manifests that FoleySeal did not make "
                                         r"\(it lacks the columns algorithm, asset_sha256,"):
        ManifestStore(store_url)
    with engine.connect() as conn:  # nothing written into the other tool's database
        assert not sa.inspect(conn).has_table("foleyseal_schema")
        assert conn.exec_driver_sql("SELECT name FROM foleyseal_manifests").scalars().all() == ["theirs"]
    engine.dispose()


@backends
def test_a_store_whose_table_was_dropped_is_refused_at_open(store_url):
    """The schema table said version 1 with the manifests table gone (dropped by hand, a partial
    restore): the store opened, and a service on it called itself healthy while every lookup failed."""
    ManifestStore(store_url).close()
    engine = sa.create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE foleyseal_manifests")
    with pytest.raises(StoreError, match="schema is at version 1, but its table foleyseal_manifests is missing"):
        ManifestStore(store_url)
    engine.dispose()


@backends
def test_reserve_publish_lookup_roundtrip(store_url):
    with ManifestStore(store_url) as store:
        payload = store.reserve_payload("urn:c2pa:one", ALG)
        assert len(payload) == 16 and int(payload, 16) >= 0
        # A reservation is invisible to lookups until published.
        assert store.count() == 0 and store.count_reserved() == 1
        assert store.get("urn:c2pa:one") is None and store.find_by_payload(ALG, payload) is None
        rec = make_record("urn:c2pa:one", payload)
        store.publish(rec)
        assert store.count() == 1 and store.count_reserved() == 0
        got = store.get("urn:c2pa:one")
        assert got == rec and got.manifest == rec.manifest and got.created_at.tzinfo is not None
        assert store.find_by_payload(ALG, payload.upper()) == rec
        assert store.find_by_payload("other.alg", payload) is None
        assert store.find_by_asset_hash("AB" * 32) == [rec]
        assert store.find_by_asset_hash("cd" * 32) == []
    # Persisted: a new connection sees it.
    with ManifestStore(store_url) as store:
        assert store.get("urn:c2pa:one") == rec
        assert rec.to_dict()["manifest_size"] == len(rec.manifest) and "manifest_base64" not in rec.to_dict()


@backends
def test_iter_records_pages_through_the_published_records_only(store_url):
    """``store push`` reads every published record, a page at a time, never a reservation."""
    with ManifestStore(store_url) as store:
        for n in range(7):
            store.add(make_record(f"urn:c2pa:{n:02d}", f"{n:016x}"))
        store.reserve("urn:c2pa:99", ALG, "ff" * 8)
        assert [r.id for r in store.iter_records(batch=3)] == [f"urn:c2pa:{n:02d}" for n in range(7)]
        assert next(store.iter_records()) == make_record("urn:c2pa:00", f"{0:016x}")


@backends
def test_issued_payloads_for_matching_a_damaged_watermark(store_url):
    """The store as the watermark detector's set of issued payloads (provenance.watermark.known):
    reserved and published payloads of one algorithm count and are found, others are not."""
    from provenance.watermark.known import IssuedList, KnownPayloads

    with ManifestStore(store_url) as store:
        issued = store.issued_payloads(ALG)
        assert isinstance(issued, KnownPayloads)
        assert issued.count() == 0
        reserved = store.reserve_payload("urn:c2pa:reserved", ALG)
        store.add(make_record("urn:c2pa:pub", "1032547698BADCFE"))
        store.reserve("urn:c2pa:other", "other.alg", "ffffffffffffffff")
        assert store.issued_payloads(ALG).count() == 2 and store.count_issued("other.alg") == 1
        many = [f"{i:016x}" for i in range(1200)]  # more than one IN batch
        assert issued.find([*many, reserved, "1032547698badcfe", "ffffffffffffffff"]) == {
            reserved, "1032547698badcfe"}
        assert issued.find([]) == set()
        # Listed in full for correlation with their codewords, in batches, one algorithm only.
        assert isinstance(issued, IssuedList)
        assert sorted(issued.payloads()) == sorted([reserved, "1032547698badcfe"])
        assert sorted(store.iter_payloads(ALG, batch=1)) == sorted([reserved, "1032547698badcfe"])
        assert list(store.iter_payloads("com.unknown.alg")) == []


@backends
def test_payload_is_unique_per_algorithm(store_url):
    with ManifestStore(store_url) as store:
        store.add(make_record("urn:c2pa:a", "00112233445566aa"))
        with pytest.raises(PayloadCollision):
            store.reserve("urn:c2pa:b", ALG, "00112233445566AA")
        with pytest.raises(PayloadCollision):
            store.add(make_record("urn:c2pa:c", "00112233445566aa"))
        store.reserve("urn:c2pa:d", "com.other.wm.1", "00112233445566aa")  # another algorithm: fine
        assert store.count() == 1 and store.count_reserved() == 1


@backends
def test_reserve_payload_draws_again_on_collision(store_url, monkeypatch):
    import provenance.store.repository as repo

    draws = iter([bytes.fromhex("00000000000000ff")] * 2 + [bytes.fromhex("0000000000000001")])
    monkeypatch.setattr(repo.secrets, "token_bytes", lambda n: next(draws))
    with ManifestStore(store_url) as store:
        assert store.reserve_payload("urn:c2pa:x", ALG) == "00000000000000ff"
        assert store.reserve_payload("urn:c2pa:y", ALG) == "0000000000000001"
        with pytest.raises(StoreError, match="already in the store"):
            monkeypatch.setattr(repo.secrets, "token_bytes", lambda n: bytes(8))
            store.reserve_payload("urn:c2pa:x", ALG)


@backends
def test_discard_and_purge_leave_no_dangling_rows(store_url):
    with ManifestStore(store_url) as store:
        p = store.reserve_payload("urn:c2pa:gone", ALG)
        assert store.discard("urn:c2pa:gone") is True
        assert store.discard("urn:c2pa:gone") is False
        assert store.count_reserved() == 0
        # The payload is free again.
        store.reserve("urn:c2pa:again", ALG, p)
        assert store.purge_reservations(older_than_s=3600) == 0
        assert store.purge_reservations(older_than_s=-1) == 1
        assert store.count_reserved() == 0
        with pytest.raises(StoreError, match="no reservation"):
            store.publish(make_record("urn:c2pa:again", p))


@backends
def test_schema_migrations_are_versioned(store_url):
    store = ManifestStore(store_url)
    assert store.schema_version == len(MIGRATIONS) == 1
    with store.engine.connect() as conn:
        assert current_version(conn) == 1
    # Re-running is a no-op; a later migration is applied once, data intact.
    assert migrate(store.engine) == 1
    store.add(make_record("urn:c2pa:kept", "0102030405060708"))

    def add_column(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE foleyseal_manifests ADD COLUMN note VARCHAR(20)")

    v2 = (*MIGRATIONS, Migration(2, "add a note column", add_column))
    assert migrate(store.engine, v2) == 2
    assert migrate(store.engine, v2) == 2
    with store.engine.connect() as conn:
        cols = {c["name"] for c in sa.inspect(conn).get_columns("foleyseal_manifests")}
    assert "note" in cols
    assert store.get("urn:c2pa:kept") is not None
    store.close()
    # This FoleySeal knows version 1 only: a version-2 database is refused.
    with pytest.raises(StoreError, match="schema version 2, newer than this FoleySeal supports"):
        ManifestStore(store_url)


@backends
def test_concurrent_writers_get_distinct_payloads(store_url):
    """Threads each with their own store object (own connections) reserve and publish."""
    n_threads, per_thread = 8, 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        try:
            try:
                store = ManifestStore(store_url)  # concurrent first open also races the migration
            except BaseException:
                barrier.abort()  # the others fail with BrokenBarrierError instead of waiting forever
                raise
            barrier.wait(timeout=120)
            for j in range(per_thread):
                rid = f"urn:c2pa:{i}-{j}"
                p = store.reserve_payload(rid, ALG)
                store.publish(make_record(rid, p, sha=f"{i:02x}" * 32))
            store.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with ManifestStore(store_url) as store:
        assert store.count() == n_threads * per_thread
        payloads = {store.get(f"urn:c2pa:{i}-{j}").payload for i in range(n_threads) for j in range(per_thread)}
        assert len(payloads) == n_threads * per_thread
        assert len(store.find_by_asset_hash("03" * 32)) == per_thread


def test_bad_url_and_unreachable_server_are_store_errors():
    with pytest.raises(StoreError, match="not a valid database URL"):
        ManifestStore("not a url")
    with pytest.raises(StoreError, match="cannot open|failed"):
        ManifestStore("postgresql://nobody:secret@127.0.0.1:1/none")
    try:
        ManifestStore("postgresql://nobody:secret@127.0.0.1:1/none")
    except StoreError as exc:
        assert "secret" not in str(exc)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_store_is_refused(url):
    """`mark` with FOLEYSEAL_STORE_URL=sqlite:// published its file, exit 0, and the record
    died with the process: the file could never be traced back through its watermark."""
    with pytest.raises(StoreError, match="keeps its records in this process's memory"):
        ManifestStore(url)


def test_a_relative_sqlite_file_is_in_the_home_not_the_working_folder(tmp_path, monkeypatch):
    """The config template's own line, store_url = "sqlite:///manifests.sqlite3", made each run
    from another folder keep its own store there."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('store_url = "sqlite:///db/manifests.sqlite3"\n')
    monkeypatch.delenv("FOLEYSEAL_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings(home).store_url == f"sqlite:///{home / 'db' / 'manifests.sqlite3'}"
    monkeypatch.setenv("FOLEYSEAL_STORE_URL", "sqlite:////srv/x.db")
    assert load_settings(home).store_url == "sqlite:////srv/x.db"


def test_a_long_lived_store_follows_its_file_when_it_is_made_again_or_removed(tmp_path):
    """The service kept reading the file it had opened: a store deleted and made again (or
    restored over the old one) was never seen, and its health said "ok" with the file gone."""
    path = tmp_path / "store.sqlite3"
    url = f"sqlite:///{path}"
    served = ManifestStore(url)
    try:
        served.add(make_record("urn:c2pa:old", "00000000000000aa"))
        assert served.find_by_payload(ALG, "00000000000000aa") is not None
        for p in tmp_path.glob("store.sqlite3*"):
            p.unlink()
        with pytest.raises(StoreError, match="its file is gone"):
            served.ping()
        with ManifestStore(url) as other:  # another process makes it again and adds a record
            other.add(make_record("urn:c2pa:new", "00000000000000bb"))
        served.ping()
        assert served.find_by_payload(ALG, "00000000000000bb") is not None
        assert served.find_by_payload(ALG, "00000000000000aa") is None
    finally:
        served.close()


def test_a_store_opened_read_only_answers_lookups_and_refuses_writes(tmp_path, monkeypatch):
    """A verifier only reads: a store on a read-only medium must still answer it."""
    import sqlite3

    import provenance.store.repository as repository

    path = tmp_path / "sub dir" / "manifests.sqlite3"
    url = f"sqlite:///{path}"
    with ManifestStore(url) as store:
        payload = store.reserve_payload("urn:c2pa:ro", ALG)
        store.publish(make_record("urn:c2pa:ro", payload))
    before = path.read_bytes()
    # What a read-only file or folder does to a writer's open: SQLite refuses the WAL switch.
    def readonly(cur):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(repository, "_set_wal", readonly)
    with pytest.raises(StoreError, match="readonly"):
        ManifestStore(url)
    for writable_dir in (True, False):  # a folder it cannot write to: opened immutable
        monkeypatch.setattr(repository.os, "access", lambda p, mode, w=writable_dir: w)
        with ManifestStore(url, read_only=True) as store:
            assert store.find_by_payload(ALG, payload).id == "urn:c2pa:ro"
            with pytest.raises(StoreError):
                store.reserve_payload("urn:c2pa:other", ALG)
    assert path.read_bytes() == before
    with pytest.raises(StoreError, match="does not exist"):
        ManifestStore(f"sqlite:///{tmp_path / 'absent.sqlite3'}", read_only=True)


@pytest.mark.parametrize("free_bytes, said", [(4096, "no space left on the device holding"), (10**10, None)])
def test_a_full_disk_under_a_sqlite_store_is_named(tmp_path, monkeypatch, free_bytes, said):
    """SQLite says "disk I/O error" when its journal cannot grow on a full disk: `mark` with its
    home on a full disk said only "open failed: disk I/O error"."""
    import shutil
    import sqlite3

    from provenance.store import repository

    with ManifestStore(f"sqlite:///{tmp_path / 'm.sqlite3'}") as store:
        def disk_fails(_conn, _cursor, statement, *_):
            raise sa.exc.OperationalError(statement, None, sqlite3.OperationalError("disk I/O error"))

        sa.event.listen(store.engine, "before_cursor_execute", disk_fails)
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(repository.shutil, "disk_usage", lambda _p: usage._replace(free=free_bytes))
        with pytest.raises(StoreError) as exc:
            store.reserve_payload("urn:c2pa:one", ALG)
    message = str(exc.value)
    assert "reserve payload failed:" in message and "disk I/O error" in message
    if said:
        assert f"{said} {tmp_path} ({free_bytes} bytes free; SQLite: disk I/O error)" in message, message
    else:
        assert "no space" not in message
