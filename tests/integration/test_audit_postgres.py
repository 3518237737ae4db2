"""The audit chain on a real PostgreSQL: one database and pair of roles per test, dropped after."""

import multiprocessing
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from decisioning.adapters.audit import AuditStore, postgres_append
from decisioning.adapters.audit.chain import GENESIS, row_hash
from decisioning.adapters.audit.postgres_append import CHAIN_LOCK, NewRow, PostgresAppender
from decisioning.adapters.audit.roles import AuditRoles
from decisioning.adapters.audit.store import _MIGRATIONS, AuditRecord, _engine
from decisioning.core.decision import canonical_json
from decisioning.core.errors import AuditError, AuditUnavailable
from tests.support.clock import NOW
from tests.unit.decisioning.adapters.audit.test_store import _append_many

pytestmark = pytest.mark.integration
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def audit_url() -> Iterator[str]:
    name = f"risk_audit_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{SERVER}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


WORKERS, PER_WORKER = 8, 500  # 4,000 appends in all, from eight processes at once


@pytest.mark.slow
def test_postgres_chain_survives_concurrent_workers_and_refuses_edits(audit_url: str) -> None:
    AuditStore.open(audit_url).close()
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=_append_many, args=(audit_url, w, PER_WORKER)
        )
        for w in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=600)
        assert process.exitcode == 0

    store = AuditStore.open(audit_url)
    report = store.verify()
    assert report.ok and report.checked == WORKERS * PER_WORKER, report

    with pytest.raises(Exception, match="append-only"), store._engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET body = '{}' WHERE seq = 3"))
    store.close()


def test_verification_during_appends_never_sees_rows_outside_the_chain(audit_url: str) -> None:
    # given appends committing from four threads all the while
    store = AuditStore.open(audit_url)
    store.append("decision", "first", {"n": 0})
    stop = threading.Event()

    def append_until_stopped(worker: int) -> None:
        n = 0
        while not stop.is_set():
            store.append("decision", f"w{worker}-{n}", {"n": n})
            n += 1

    threads = [threading.Thread(target=append_until_stopped, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    # when the chain is verified again and again meanwhile
    try:
        reports = [store.verify_anchored(()) for _ in range(40)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    store.close()

    # then no verification took a record committed mid-walk for one written around the store
    # (the head's seq and its count were once read in two statements, two snapshots)
    problems = [problem for report in reports for problem in report.problems]
    assert not problems, problems[:3]
    assert all(not report.broken for report in reports)


@pytest.fixture
def audit_roles(audit_url: str) -> Iterator[AuditRoles]:
    """Roles of this test only (roles are server-wide), dropped once its database is gone."""
    suffix = uuid.uuid4().hex[:8]
    roles = AuditRoles(owner=f"audit_owner_{suffix}", service=f"audit_service_{suffix}")
    yield roles
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS "{audit_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        )
        for role in (roles.service, roles.owner):
            connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
    admin.dispose()


def as_role(url: str, role: str) -> str:
    return url.replace("postgres@", f"{role}@", 1)


# What an attacker holding the service's credentials would try first.
FORBIDDEN_TO_THE_SERVICE = {
    "update": "UPDATE audit_records SET body = '{}' WHERE seq = 1",
    "delete": "DELETE FROM audit_records WHERE seq = 1",
    "truncate": "TRUNCATE audit_records",
    "drop trigger": "DROP TRIGGER audit_records_append_only ON audit_records",
    "disable trigger": "ALTER TABLE audit_records DISABLE TRIGGER ALL",
    "alter table": "ALTER TABLE audit_records ADD COLUMN note text",
    "drop table": "DROP TABLE audit_records",
    "create table": "CREATE TABLE audit_records_shadow (seq int)",
    "rewrite version": "UPDATE alembic_version SET version_num = '0001'",
}


@pytest.mark.parametrize("attempt", sorted(FORBIDDEN_TO_THE_SERVICE))
def test_the_service_role_may_only_append_and_read(
    audit_url: str, audit_roles: AuditRoles, attempt: str
) -> None:
    # given the schema migrated by the superuser, and the service connected as its own role
    AuditStore.open(audit_url, roles=audit_roles).close()
    service = AuditStore.open(as_role(audit_url, audit_roles.service))
    service.append("decision", "d1", {"action": "approve"})
    assert service.verify().ok and service.get("d1") is not None, "appending and reading work"

    # when it tries to change what is there, then the database refuses before any trigger runs
    with pytest.raises(DBAPIError) as refused, service._engine.begin() as connection:
        connection.execute(text(FORBIDDEN_TO_THE_SERVICE[attempt]))
    sqlstate = getattr(refused.value.orig, "sqlstate", None)
    assert sqlstate == "42501", f"{attempt} must fail for lack of privilege, not {refused.value}"
    service.close()


def test_truncate_is_refused_even_for_the_owner(audit_url: str, audit_roles: AuditRoles) -> None:
    store = AuditStore.open(audit_url, roles=audit_roles)
    store.append("decision", "d1", {"action": "approve"})
    store.close()
    owner = AuditStore.open(as_role(audit_url, audit_roles.owner))

    with pytest.raises(DBAPIError, match="append-only"), owner._engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_records"))
    assert owner.verify().checked == 1
    owner.close()


def test_the_tables_belong_to_the_owner_role(audit_url: str, audit_roles: AuditRoles) -> None:
    AuditStore.open(audit_url, roles=audit_roles).close()
    engine = create_engine(audit_url)

    with engine.connect() as connection:
        owners = dict(
            connection.execute(
                text(
                    "SELECT tablename, tableowner FROM pg_tables "
                    "WHERE tablename IN ('audit_records', 'alembic_version')"
                )
            ).all()
        )
    engine.dispose()

    assert owners == {"audit_records": audit_roles.owner, "alembic_version": audit_roles.owner}


def raw_insert(store: AuditStore, columns: str, values: dict[str, object]) -> None:
    """An INSERT written by hand, around the store: what a holder of a role's password can do."""
    placeholders = ", ".join(f":{name}" for name in values)
    with store._engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO audit_records ({columns}) VALUES ({placeholders})"),
            values,
        )


def test_the_service_role_cannot_choose_a_sequence_number(
    audit_url: str, audit_roles: AuditRoles
) -> None:
    # given the service connected as its own role over a migrated chain
    AuditStore.open(audit_url, roles=audit_roles).close()
    service = AuditStore.open(as_role(audit_url, audit_roles.service))
    head = service.append("decision", "d1", {"action": "review"})
    at = head.recorded_at
    values = {"seq": 10**15, "record_id": "big", "kind": "decision", "recorded_at": at}
    values |= {"body": "{}", "prev_hash": head.row_hash}
    values["row_hash"] = row_hash("decision", "big", at, "{}", head.row_hash)

    # when it inserts a row naming its own seq, then the database refuses for lack of privilege
    with pytest.raises(DBAPIError) as refused:
        raw_insert(service, ", ".join(values), values)
    assert getattr(refused.value.orig, "sqlstate", None) == "42501", refused.value
    # and later appends still chain on
    service.append("decision", "d2", {"action": "review"})
    assert service.verify().ok and service.head().records == 2
    service.close()


def test_a_non_positive_seq_is_refused_even_for_the_owner(
    audit_url: str, audit_roles: AuditRoles
) -> None:
    store = AuditStore.open(audit_url, roles=audit_roles)
    at = NOW.isoformat()
    values = {"seq": -1, "record_id": "neg", "kind": "decision", "recorded_at": at}
    values |= {"body": "{}", "prev_hash": GENESIS}
    values["row_hash"] = row_hash("decision", "neg", at, "{}", GENESIS)

    with pytest.raises(DBAPIError) as refused:
        raw_insert(store, ", ".join(values), values)
    assert getattr(refused.value.orig, "sqlstate", None) == "23514", "a CHECK must refuse it"
    store.close()


def test_a_row_that_does_not_link_onto_the_head_is_refused(
    audit_url: str, audit_roles: AuditRoles
) -> None:
    # given the service role and a chain of one record
    AuditStore.open(audit_url, roles=audit_roles).close()
    service = AuditStore.open(as_role(audit_url, audit_roles.service))
    head = service.append("decision", "d1", {"action": "review"})
    at = head.recorded_at
    columns = "record_id, kind, recorded_at, body, prev_hash, row_hash"

    # when a raw insert names another prev_hash, then the trigger refuses it
    forged = {"record_id": "x", "kind": "decision", "recorded_at": at, "body": "{}"}
    forged |= {"prev_hash": GENESIS, "row_hash": row_hash("decision", "x", at, "{}", GENESIS)}
    with pytest.raises(DBAPIError, match="prev_hash must be the head"):
        raw_insert(service, columns, forged)
    # and one on the head goes in, and the chain still verifies whole
    linked = {**forged, "prev_hash": head.row_hash}
    linked["row_hash"] = row_hash("decision", "x", at, "{}", head.row_hash)
    raw_insert(service, columns, linked)
    service.append("decision", "d2", {"action": "review"})
    assert service.verify_anchored([]).chain.ok and service.head().records == 3
    service.close()


def test_migration_0003_names_the_role_it_needs(audit_url: str, audit_roles: AuditRoles) -> None:
    # given a database the administrator brought to 0002, as deployed before the review
    engine = _engine(audit_url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = connection
        config.attributes["audit_roles"] = audit_roles
        command.upgrade(config, "0002")
    engine.dispose()

    # when the owner role migrates, then it is told to run 0003 as the administrator
    with pytest.raises(AuditError, match="run it once as the database administrator"):
        AuditStore.open(as_role(audit_url, audit_roles.owner), roles=audit_roles)
    # and the administrator can
    AuditStore.open(audit_url, roles=audit_roles).close()
    owner = AuditStore.open(as_role(audit_url, audit_roles.owner), roles=audit_roles)
    owner.append("decision", "d1", {"action": "review"})
    assert owner.verify().ok
    owner.close()


# The one-round-trip append (postgres_append.py): the database finishes each row's hash.

NASTY = [
    "",
    '"',
    "\\",
    '\\"prev_hash\\":\\"',
    "\u2028\u2029",
    "\x01\x1f\x7f",
    "\n\r\t\b\f",
    "ünïcødé ✓ 𝄞 中文",
    "0" * 64,
    '{"body":"x"}',
]


def _random_texts(count: int) -> list[str]:
    rng = random.Random(19)
    alphabet = [chr(c) for c in [*range(1, 0x80), *range(0xA0, 0x800), 0x2028, 0x1F600, 0x10FFFF]]
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(count)]


def test_the_database_hashes_every_row_as_verification_recomputes_it(audit_url: str) -> None:
    # given texts with every kind of character JSON escapes, or does not
    store = AuditStore.open(audit_url)
    texts = NASTY + _random_texts(40)
    appender = PostgresAppender(store._engine)
    body, at = canonical_json, NOW.isoformat()
    # when they are appended one by one through the store and as batches through the appender
    for i, value in enumerate(texts):
        store.append(value[:32] or "k", f"one-{i}-{value}"[:128], {"value": value})
    for start in range(0, len(texts), 7):
        batch = [
            NewRow(f"many-{start + i}-{value}"[:128], value[:32] or "k", at, body(value))
            for i, value in enumerate(texts[start : start + 7])
        ]
        appended = appender.append(batch)
        assert [row.record_id for row in appended] == [row.record_id for row in batch]
    appender.close()
    # then every hash is the one Python computes over the stored text
    report = store.verify()
    assert report.ok and report.checked == 2 * len(texts), report
    store.close()


def test_an_append_waiting_for_the_chain_lock_chains_onto_the_row_committed_meanwhile(
    audit_url: str,
) -> None:
    # given a chain of one record, and another writer holding the chain lock
    store = AuditStore.open(audit_url)
    first = store.append("decision", "first", {"n": 1})
    other = psycopg.connect(_conninfo(audit_url))
    other.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
    # when an append starts meanwhile
    done: list[AuditRecord] = []
    appending = threading.Thread(target=lambda: done.append(store.append("decision", "late", {})))
    appending.start()
    _wait_for_a_lock_waiter(other)
    # and the other writer puts a row on the head and commits
    at = first.recorded_at
    linked = row_hash("decision", "between", at, "{}", first.row_hash)
    other.execute(
        "INSERT INTO audit_records (record_id, kind, recorded_at, body, prev_hash, row_hash) "
        "VALUES ('between', 'decision', %s, '{}', %s, %s)",
        (at, first.row_hash, linked),
    )
    other.commit()
    appending.join(timeout=30)
    other.close()
    # then the append read the head after the lock, and chains on the row committed meanwhile
    assert [r.record_id for r in store.records()] == ["first", "between", "late"]
    assert [late.prev_hash for late in done] == [linked]
    assert store.verify().ok
    store.close()


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wait_for_a_lock_waiter(connection: psycopg.Connection) -> None:
    for _ in range(200):
        waiting = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.05)
    raise AssertionError("no append waited for the chain lock")


@pytest.fixture
def store_of_one(audit_url: str) -> Iterator[AuditStore]:
    """A PostgreSQL store whose chain holds one record, ``d1``; closed after the test."""
    store = AuditStore.open(audit_url)
    store.append("decision", "d1", {})
    yield store
    store.close()


def test_a_connection_the_server_dropped_is_replaced_and_appends_go_on(
    audit_url: str, store_of_one: AuditStore, caplog: pytest.LogCaptureFixture
) -> None:
    # given a store that appended, and its connection then ended by the server
    store = store_of_one
    with psycopg.connect(_conninfo(audit_url), autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert ended, "the store's connections were not found"
    # when the next decision is appended, then it is recorded once, on the chain
    store.append("decision", "d2", {})
    assert [r.record_id for r in store.records()] == ["d1", "d2"]
    assert store.verify().ok
    assert "audit connection lost" in caplog.text


def test_an_append_whose_answer_was_lost_after_its_commit_is_not_written_twice(
    store_of_one: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a store whose first transaction commits but whose connection then breaks
    store = store_of_one
    send = postgres_append._send
    lost: list[bool] = []

    def lose_the_first_answer(connection: Any, query: Any) -> Any:
        appended = send(connection, query)
        if not lost:
            lost.append(True)
            connection.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return appended

    monkeypatch.setattr(postgres_append, "_send", lose_the_first_answer)
    # when a decision is appended, then it is answered with the row that committed, stored once
    record = store.append("decision", "d2", {"n": 2})
    assert lost and record.record_id == "d2" and record.body == {"n": 2}
    assert [r.record_id for r in store.records()] == ["d1", "d2"]
    assert store.verify().ok


def test_a_refusal_from_the_server_is_unavailable_at_once_and_the_connection_kept(
    audit_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given the chain lock held elsewhere for longer than an append waits for it (LOCK_WAIT,
    # 10 s: the append sets its own lock_timeout, whatever the database's default)
    store = AuditStore.open(audit_url)
    store.append("decision", "d1", {})
    other = psycopg.connect(_conninfo(audit_url))
    other.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
    # when an append times out on the lock, then it is refused as unavailable, nothing written
    with pytest.raises(AuditUnavailable, match="d2"):
        store.append("decision", "d2", {})
    other.rollback()
    other.close()
    # and the same connection appends the next one: it was not taken for lost
    store.append("decision", "d3", {})
    assert [r.record_id for r in store.records()] == ["d1", "d3"]
    assert "audit connection lost" not in caplog.text
    store.close()


def test_a_record_id_appended_twice_is_refused_by_the_database_and_the_connection_goes_on(
    store_of_one: AuditStore, caplog: pytest.LogCaptureFixture
) -> None:
    # given a chain holding d1; when d1 is appended again (a repeat the engine answers from the
    # stored record), then the database's unique violation is what the caller sees
    store = store_of_one
    with pytest.raises(psycopg.errors.UniqueViolation, match="d1"):
        store.append("decision", "d1", {"again": True})

    # and the transaction was rolled back on the same connection, which appends the next record
    store.append("decision", "d2", {})
    assert [r.record_id for r in store.records()] == ["d1", "d2"]
    assert store.verify().ok, "the refused row left no trace in the chain (its seq is skipped)"
    assert "audit connection lost" not in caplog.text


def test_a_record_id_longer_than_its_column_is_refused_before_anything_is_written(
    audit_url: str,
) -> None:
    store = AuditStore.open(audit_url)

    with pytest.raises(ValueError, match="at most 128 characters"):
        store.append("decision", "r" * 120 + " " * 10, {})  # PostgreSQL would cut the spaces

    assert store.head() is None
    store.close()


@pytest.mark.parametrize(
    "setting",
    [
        "session_replication_role = replica",  # the trigger never fires
        "default_transaction_isolation = 'repeatable read'",  # the trigger would see stale heads
    ],
)
def test_two_writers_keep_one_chain_whatever_the_trigger_and_the_defaults(
    audit_url: str, setting: str
) -> None:
    # given two stores connected, then the trigger disabled and the database's defaults changed
    AuditStore.open(audit_url).close()
    stores = [AuditStore.open(audit_url) for _ in range(2)]
    for number, store in enumerate(stores):
        store.append("decision", f"start-{number}", {})
    with psycopg.connect(_conninfo(audit_url), autocommit=True) as admin:
        admin.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_on_the_head")
        admin.execute(f'ALTER DATABASE "{make_url(audit_url).database}" SET {setting}')
    for store in stores:  # new sessions take the database's settings
        store._postgres.close()  # type: ignore[union-attr]
    # when both append from two threads each
    threads = [
        threading.Thread(
            target=lambda s=s, w=w: [
                s.append("decision", f"s{id(s)}-{w}-{n}", {}) for n in range(40)
            ]
        )
        for s in stores
        for w in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then the chain is one: every append took the lock before it read the head
    report = stores[0].verify()
    assert report.ok and report.checked == 2 + 4 * 40, report
    for store in stores:
        store.close()


def test_an_append_interrupted_mid_query_leaves_no_connection_stuck_in_it(
    store_of_one: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an append interrupted after its query was sent, before the answer was read
    store = store_of_one
    send = postgres_append._send

    def interrupted(connection: Any, query: Any) -> Any:
        connection.pgconn.send_query(b"SELECT pg_sleep(0.2)")  # the server is busy with it
        raise KeyboardInterrupt

    monkeypatch.setattr(postgres_append, "_send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.append("decision", "lost", {})
    monkeypatch.setattr(postgres_append, "_send", send)
    # when the next decisions are appended and read, then they are, on a fresh connection
    store.append("decision", "d2", {})
    assert store.get("d2") is not None
    assert [r.record_id for r in store.records()] == ["d1", "d2"]


def test_a_read_does_not_wait_for_an_append_waiting_for_the_chain_lock(audit_url: str) -> None:
    # given an append waiting for the chain lock another writer holds
    store = AuditStore.open(audit_url)
    store.append("decision", "d1", {})
    other = psycopg.connect(_conninfo(audit_url))
    other.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
    appending = threading.Thread(target=lambda: store.append("decision", "d2", {}))
    appending.start()
    _wait_for_a_lock_waiter(other)
    # when a record is read meanwhile, then it is answered without waiting for the lock
    answered: list[object] = []
    reading = threading.Thread(target=lambda: answered.append(store.get("d1")))
    reading.start()
    reading.join(timeout=5)
    other.rollback()
    other.close()
    appending.join(timeout=30)
    assert answered and answered[0] is not None, "the read waited behind the append"
    store.close()


def test_a_forked_process_appends_on_a_connection_of_its_own(audit_url: str) -> None:
    # given a store that appended, then a fork (as a server forking its workers would)
    store = AuditStore.open(audit_url)
    store.append("decision", "parent-0", {})
    child = os.fork()
    if child == 0:  # the child appends and leaves at once, whatever happens
        try:
            for n in range(30):
                store.append("decision", f"child-{n}", {})
            os._exit(0)
        except BaseException:
            os._exit(1)
    # when the parent appends meanwhile
    for n in range(1, 31):
        store.append("decision", f"parent-{n}", {})
    _, status = os.waitpid(child, 0)
    # then both processes were answered (none read the other's answers on a shared socket)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(list(store.records())) == 61
    assert store.verify().ok
    store.close()


def test_quoted_values_survive_a_server_that_reads_backslashes_as_escapes(audit_url: str) -> None:
    # given a database where '...' literals take backslash escapes (the old default)
    with psycopg.connect(_conninfo(audit_url), autocommit=True) as admin:
        name = make_url(audit_url).database
        admin.execute(f'ALTER DATABASE "{name}" SET standard_conforming_strings = off')
    store = AuditStore.open(audit_url)
    # when records full of quotes and backslashes are appended
    for i, value in enumerate(NASTY):
        store.append("decision", f"q{i}-{value}"[:128], {"value": value})
    # then each reads back as written, and the chain verifies
    for i, value in enumerate(NASTY):
        stored = store.get(f"q{i}-{value}"[:128])
        assert stored is not None and stored.body == {"value": value}, value
    assert store.verify().ok
    store.close()


def test_a_nul_in_a_record_id_is_refused_with_nothing_written(audit_url: str) -> None:
    store = AuditStore.open(audit_url)

    with pytest.raises(psycopg.DataError, match="NUL"):
        store.append("decision", "before\x00after", {})

    assert store.head() is None
    store.close()


# An insider's functions in public, found before pg_catalog's through the search path: each
# would make the append's check or its raise a no-op if the append did not name pg_catalog's.
SHADOWS = (
    "CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT 'on' $$",
    "CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE sql"
    " AS $$ SELECT 'on' $$",
    "CREATE FUNCTION public.never(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$",
    "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.never)",
)


@pytest.mark.parametrize(
    ("default", "expected", "shadowed"),
    [
        ("off", "on", False),
        ("remote_apply", "remote_apply", False),
        ("local", "local", False),
        ("off", "on", True),
    ],
)
def test_an_append_commits_durably_whatever_the_database_default(
    audit_url: str, default: str, expected: str, shadowed: bool
) -> None:
    # given a database default for synchronous_commit (off: a commit may return before it is on
    # disk), maybe an insider's shadows of the functions and operator the append uses, and a
    # trigger that notes the setting each inserted record's transaction ran with
    store = AuditStore.open(audit_url)  # the schema, migrated before any shadow exists
    name = make_url(audit_url).database
    with psycopg.connect(_conninfo(audit_url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {default}')
        if shadowed:
            admin.execute(f'ALTER DATABASE "{name}" SET search_path = public, pg_catalog')
            for statement in SHADOWS:
                admin.execute(statement)
        admin.execute("CREATE TABLE seen (setting text)")
        admin.execute(
            "CREATE FUNCTION note_setting() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT"
            " INTO seen VALUES (pg_catalog.current_setting('synchronous_commit')); RETURN NULL;"
            " END $$"
        )
        admin.execute(
            "CREATE TRIGGER note_setting AFTER INSERT ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION note_setting()"
        )
    # when a record is appended in a session that began with that default (and those shadows)
    store._postgres.close()  # type: ignore[union-attr]
    store._engine.dispose()
    store.append("decision", "durable", {"n": 1})
    # then its transaction flushed its commit to disk: off was raised, a stricter level kept
    with psycopg.connect(_conninfo(audit_url)) as reader:
        assert reader.execute("SHOW synchronous_commit").fetchone() == (default,)
        assert reader.execute("SELECT setting FROM seen").fetchall() == [(expected,)]
    store.close()
