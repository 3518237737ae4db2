"""Group commit: appends waiting together share a transaction; a bad one fails alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.writer import GroupCommitWriter, PendingAppend
from decisioning.core.errors import AuditUnavailable


def pending(record_id: str) -> PendingAppend[str]:
    return PendingAppend("decision", record_id, "2026-11-27T00:00:00+00:00", {}, "{}")


def test_appends_queued_behind_a_commit_go_in_together() -> None:
    # given a commit that holds the first batch until released
    first_in, release, batches = threading.Event(), threading.Event(), []

    def commit(batch: Sequence[PendingAppend[str]]) -> list[str]:
        batches.append([p.record_id for p in batch])
        first_in.set()
        release.wait(timeout=10)
        return [p.record_id for p in batch]

    writer: GroupCommitWriter[str] = GroupCommitWriter(commit)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(writer.submit, pending("a"))
        assert first_in.wait(timeout=10)
        # when five more arrive while it commits
        rest = [pool.submit(writer.submit, pending(f"b{i}")) for i in range(5)]
        while writer.waiting() < 5:  # all five queued before the first commit returns
            threading.Event().wait(0.01)
        release.set()
        # then each caller gets its own result, and the five shared one transaction
        assert first.result() == "a"
        assert sorted(f.result() for f in rest) == [f"b{i}" for i in range(5)]
    writer.close()
    assert batches[0] == ["a"] and sorted(batches[1]) == [f"b{i}" for i in range(5)]


def test_a_lone_append_commits_on_its_callers_thread_and_a_queued_one_is_led_by_a_caller() -> None:
    # given a writer whose commits say which thread ran them
    threads: list[str] = []
    first_in, release = threading.Event(), threading.Event()

    def commit(batch: Sequence[PendingAppend[str]]) -> list[str]:
        threads.append(threading.current_thread().name)
        if len(threads) == 2:
            first_in.set()
            release.wait(timeout=10)
        return [p.record_id for p in batch]

    writer: GroupCommitWriter[str] = GroupCommitWriter(commit)
    # when one caller appends alone: no hand-off, its own thread commits
    assert writer.submit(pending("alone")) == "alone"
    assert threads == [threading.current_thread().name]

    # and when one arrives while another's commit is in flight
    with ThreadPoolExecutor(2, thread_name_prefix="caller") as pool:
        leading = pool.submit(writer.submit, pending("lead"))
        assert first_in.wait(timeout=10)
        queued = pool.submit(writer.submit, pending("queued"))
        while writer.waiting() < 1:
            threading.Event().wait(0.01)
        release.set()
        assert (leading.result(), queued.result()) == ("lead", "queued")

    # then the queued append was committed by a caller's thread too, never a writer thread
    assert all(name.startswith(("caller", "Main")) for name in threads), threads
    assert len(threads) == 3, "one commit each: alone, lead, then the queued one"
    writer.close()


def test_a_commit_that_raises_something_unexpected_does_not_wedge_the_writer() -> None:
    calls = []

    def commit(batch: Sequence[PendingAppend[str]]) -> list[str]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise KeyboardInterrupt  # not an Exception: escapes the per-record retry
        return [p.record_id for p in batch]

    writer: GroupCommitWriter[str] = GroupCommitWriter(commit)
    with pytest.raises(KeyboardInterrupt):
        writer.submit(pending("x"))

    assert writer.submit(pending("y")) == "y", "the next append must still commit"


def test_a_record_the_database_refuses_fails_alone(tmp_path: Path) -> None:
    # given a store holding record "dup"
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append("decision", "dup", {"n": 0})
    # when eight threads append at once, one of them "dup" again
    ids = ["dup", *[f"ok{i}" for i in range(7)]]
    with ThreadPoolExecutor(8) as pool:
        futures = {i: pool.submit(store.append, "decision", i, {"n": 1}) for i in ids}
    # then only the repeated id failed, and the chain holds every other record
    assert futures["dup"].exception() is not None
    assert all(futures[i].exception() is None for i in ids[1:])
    report = store.verify()
    assert report.ok and report.checked == 8
    store.close()


def test_an_unreachable_database_fails_every_append_of_the_batch() -> None:
    def commit(batch: Sequence[PendingAppend[str]]) -> list[str]:
        raise AuditUnavailable("the audit store did not record them: OperationalError")

    writer: GroupCommitWriter[str] = GroupCommitWriter(commit)

    with pytest.raises(AuditUnavailable):
        writer.submit(pending("x"))
    writer.close()
