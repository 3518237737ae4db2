"""The audit chain on SQLite: appends verify, edits and deletions are named, workers share it."""

import multiprocessing
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.store import ChainOrderError, _engine, _insert_at_head
from decisioning.adapters.audit.writer import PendingAppend
from decisioning.core.errors import AuditUnavailable


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield audit
    audit.close()


def fill(store: AuditStore, n: int = 5) -> None:
    for i in range(n):
        store.append("decision", f"d{i}", {"risk_score": i / 10, "action": "approve"})


def test_appended_records_form_a_valid_chain(store: AuditStore) -> None:
    fill(store)

    report = store.verify()

    assert report.ok and report.checked == 5
    records = list(store.records())
    assert [r.prev_hash for r in records[1:]] == [r.row_hash for r in records[:-1]]
    assert store.get("d3") is not None and store.get("d3").body["risk_score"] == 0.3


def test_the_database_refuses_updates_and_deletes(store: AuditStore) -> None:
    fill(store, 2)

    with pytest.raises(DBAPIError, match="append-only"), store._engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET body = '{}' WHERE record_id = 'd1'"))
    with pytest.raises(DBAPIError, match="append-only"), store._engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_records WHERE record_id = 'd1'"))


def tamper(store: AuditStore, statement: str) -> None:
    """What someone with database rights could do: lift the guard, then edit."""
    with store._engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_records_no_update"))
        connection.execute(text("DROP TRIGGER audit_records_no_delete"))
        connection.execute(text(statement))


def test_an_edited_row_is_named(store: AuditStore) -> None:
    fill(store)
    tamper(
        store, """UPDATE audit_records SET body = '{"action":"decline"}' WHERE record_id = 'd2'"""
    )

    report = store.verify()

    assert not report.ok
    assert report.first_broken_id == "d2" and "hash" in (report.reason or "")


def test_a_deleted_row_breaks_the_link_of_the_next(store: AuditStore) -> None:
    fill(store)
    tamper(store, "DELETE FROM audit_records WHERE record_id = 'd1'")

    report = store.verify()

    assert report.first_broken_id == "d2", "the row after the gap must be named"


def test_two_rows_swapped_are_caught(store: AuditStore) -> None:
    fill(store)
    tamper(store, "UPDATE audit_records SET seq = 100 WHERE seq = 2")
    with store._engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET seq = 2 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_records SET seq = 3 WHERE seq = 100"))

    report = store.verify()

    assert not report.ok and report.first_broken_seq == 2


def test_a_forged_row_in_the_middle_is_caught(store: AuditStore) -> None:
    fill(store)
    tamper(store, "UPDATE audit_records SET seq = seq + 100 WHERE seq >= 3")
    first = store.get("d1")
    assert first is not None
    with store._engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_records (seq, record_id, kind, recorded_at, body, prev_hash, "
                "row_hash) VALUES (3, 'forged', 'decision', :at, '{}', :prev, :hash)"
            ),
            {"at": first.recorded_at, "prev": first.row_hash, "hash": "f" * 64},
        )

    report = store.verify()

    assert not report.ok and report.first_broken_id == "forged"


def _append_many(url: str, worker: int, count: int) -> None:
    store = AuditStore(AuditStore.open(url)._engine)
    for i in range(count):
        store.append("decision", f"w{worker}-{i}", {"worker": worker, "i": i})


@pytest.mark.slow
def test_concurrent_workers_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    AuditStore.open(url).close()
    workers = [
        multiprocessing.get_context("spawn").Process(target=_append_many, args=(url, w, 25))
        for w in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0

    report = AuditStore.open(url).verify()

    assert report.ok and report.checked == 100, report


def test_an_append_while_the_database_is_unreachable_is_refused_then_resumes(
    tmp_path: Path,
) -> None:
    # given a chain of two records whose database then becomes unreachable
    folder = tmp_path / "audit"
    url = f"sqlite:///{folder / 'audit.db'}"
    AuditStore.open(url).close()
    store = AuditStore(create_engine(url, poolclass=NullPool))  # each append connects afresh
    fill(store, 2)
    folder.rename(tmp_path / "away")
    # when a record is appended
    with pytest.raises(AuditUnavailable, match="lost-1"):
        store.append("decision", "lost-1", {"action": "approve"})
    # then nothing was written, and once the database is back the chain carries on unbroken
    (tmp_path / "away").rename(folder)
    store.append("decision", "after", {"action": "review"})
    assert [r.record_id for r in store.records()] == ["d0", "d1", "after"]
    assert store.verify().ok


def test_a_postgresql_server_that_refuses_connections_is_audit_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = AuditStore(_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/risk_audit"))

    with pytest.raises(AuditUnavailable, match="OperationalError"):
        store.append("decision", "d1", {"action": "approve"})


class _ScriptedConnection:
    """Answers the head query with no head and the insert with the given (seq, record_id)."""

    class dialect:
        name = "sqlite"
        paramstyle = "qmark"

    def __init__(self, numbered: list[tuple[int, str]]) -> None:
        self._numbered = numbered

    def exec_driver_sql(self, statement: str, parameters: tuple = ()) -> object:
        if statement.startswith("INSERT"):
            return iter(self._numbered)
        return type("Head", (), {"scalar": staticmethod(lambda: None)})()


@pytest.mark.parametrize(
    ("numbered", "in_order"),
    [([(1, "a"), (2, "b")], True), ([(2, "a"), (1, "b")], False)],
)
def test_a_batch_numbered_out_of_chain_order_is_refused(
    numbered: list[tuple[int, str]], in_order: bool
) -> None:
    # given a batch of two appends, and a database that numbers them as given
    batch = [PendingAppend("decision", rid, "2026-01-01T00:00:00+00:00", {}, "{}") for rid in "ab"]
    connection = _ScriptedConnection(numbered)

    # when / then: rows numbered against the chain order never commit
    if in_order:
        records = _insert_at_head(connection, batch)  # type: ignore[arg-type]
        assert [r.seq for r in records] == [1, 2]
        assert records[1].prev_hash == records[0].row_hash
    else:
        with pytest.raises(ChainOrderError):
            _insert_at_head(connection, batch)  # type: ignore[arg-type]
