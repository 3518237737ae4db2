"""Checkpoints taken by a child process: signed over the walked chain, outside the service's
interpreter, and a child that died or failed never stops the next checkpoint."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.anchor import FileAnchor
from decisioning.adapters.audit.checkpoint import Checkpoint
from decisioning.adapters.audit.checkpoint_process import CheckpointFailed, CheckpointProcess
from decisioning.adapters.audit.keys import load_signing_key
from decisioning.settings import AuditSettings, load_settings


@pytest.fixture
def audit(tmp_path: Path) -> AuditSettings:
    settings = load_settings({"RISK_HOME": str(tmp_path)})
    load_signing_key(settings.audit.anchor)  # the local profile makes its key on first use
    return settings.audit


@pytest.fixture
def store(audit: AuditSettings) -> Iterator[AuditStore]:
    store = AuditStore.open(audit.url)
    yield store
    store.close()


def append(store: AuditStore, start: int, n: int) -> None:
    for i in range(start, start + n):
        store.append("decision", f"r{i}", {"i": i})


def anchored(audit: AuditSettings) -> list[Checkpoint]:
    entries = FileAnchor(Path(audit.anchor.location)).read()
    assert all(isinstance(entry, Checkpoint) for entry in entries), entries
    return [entry for entry in entries if isinstance(entry, Checkpoint)]


def test_the_child_signs_the_head_and_only_the_first_checkpoint_may_begin_the_anchor(
    audit: AuditSettings, store: AuditStore
) -> None:
    # given a chain the parent saw empty, with 3 records since
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 3)

    # when the child takes a checkpoint, then nothing new, then after 2 more records
    first = process.take()
    again = process.take()
    append(store, 3, 2)
    second = process.take()
    pid = process._child.pid if process._child else None
    process.close()

    # then the anchor holds both, each at the head the chain had, taken by another process
    assert (first, again, second) == (3, None, 5)
    assert [(c.seq, c.records) for c in anchored(audit)] == [(3, 3), (5, 5)]
    assert pid is not None and pid != os.getpid()


def test_a_child_refuses_to_begin_an_anchor_over_records_its_parent_did_not_see(
    audit: AuditSettings, store: AuditStore
) -> None:
    append(store, 0, 2)
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=False)

    with pytest.raises(CheckpointFailed, match="2 records") as failure:
        process.take()
    process.close()

    assert failure.value.kind == "GenesisRefused", "the parent logs the child's own kind"
    assert anchored(audit) == []


def test_a_child_that_died_is_replaced_at_the_next_checkpoint(
    audit: AuditSettings, store: AuditStore
) -> None:
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 1)
    assert process.take() == 1
    assert process._child is not None
    process._child.kill()
    process._child.wait()

    append(store, 1, 1)
    assert process.take() == 2, "a new child takes the checkpoint the dead one cannot"
    process.close()
    assert [c.seq for c in anchored(audit)] == [1, 2]


@pytest.mark.parametrize("when", ["while it starts", "once it answered"])
def test_a_supervisors_stop_signal_leaves_the_child_for_the_last_checkpoint(
    audit: AuditSettings, store: AuditStore, when: str
) -> None:
    # given a child just started (its package still importing) or one that took a checkpoint
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 1)
    if when == "while it starts":
        child = process._start()
        time.sleep(0.2)
    else:
        assert process.take() == 1
        assert process._child is not None
        child = process._child

    # when a supervisor stopping the service sends SIGTERM and SIGINT to the worker's children
    child.send_signal(signal.SIGTERM)
    child.send_signal(signal.SIGINT)
    append(store, 1, 1)

    # then the same child takes the worker's last checkpoint, and end of input still stops it
    assert process.take() == 2
    assert process._child is child and child.poll() is None
    process.close()
    assert child.poll() == 0


def test_starting_a_child_leaves_the_callers_signal_mask_as_it_was(
    audit: AuditSettings, store: AuditStore
) -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 1)

    assert process.take() == 1
    process.close()

    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_a_child_whose_parent_was_killed_mid_checkpoint_exits_with_it(
    audit: AuditSettings, store: AuditStore, tmp_path: Path
) -> None:
    # given a parent whose child is stuck in a checkpoint: the anchor's lock is held here
    append(store, 0, 1)
    lock_path = Path(audit.anchor.location).with_name(Path(audit.anchor.location).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        "from decisioning.adapters.audit.checkpoint_process import CheckpointProcess\n"
        "from decisioning.settings import load_settings\n"
        f"audit = load_settings({{'RISK_HOME': {str(tmp_path)!r}}}).audit\n"
        "process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)\n"
        "child = process._start()\n"
        "print(child.pid, flush=True)\n"
        "process.take()\n"
    )
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(2)  # the child imports, then waits for the lock
        assert _running(child)

        # when the parent is killed outright (no end of input from it, no signal to the child)
        parent.kill()
        parent.wait()

        # then the child follows it within a second or so, lock or no lock
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "an orphaned checkpoint child outlived its parent"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_stuck_past_its_timeout_is_stopped_and_the_failure_reported(
    audit: AuditSettings, store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a child that never answers (its settings line is withheld, so it waits to read it)
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True, timeout=0.5)
    monkeypatch.setattr(process, "_start", lambda: _silent_child(process))

    with pytest.raises(CheckpointFailed, match="no answer"):
        process.take()

    assert process._child is None, "a stuck child is stopped, not left to pile up"


def _silent_child(process: CheckpointProcess) -> object:
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(30)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    process._child = child
    return child


def test_a_child_exits_when_its_parent_goes_away(audit: AuditSettings, store: AuditStore) -> None:
    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 1)
    process.take()
    child = process._child
    assert child is not None and child.stdin is not None

    child.stdin.close()  # what the operating system does to the pipe when the parent dies

    assert child.wait(timeout=10) == 0


def test_signatures_checked_once_are_not_checked_again_but_an_altered_checkpoint_is(
    audit: AuditSettings, store: AuditStore
) -> None:
    from dataclasses import replace

    from decisioning.adapters.audit.chain import trusted_checkpoints
    from decisioning.adapters.audit.checkpoint import key_id

    process = CheckpointProcess(audit.url, audit.anchor, may_begin=True)
    append(store, 0, 1)
    process.take()
    process.close()
    public = load_signing_key(audit.anchor).public_key()
    trusted = {key_id(public): public}
    verified: set[str] = set()
    [checkpoint] = anchored(audit)

    assert trusted_checkpoints([checkpoint], trusted, verified) == ([checkpoint], [])
    assert verified == {checkpoint.digest()}
    # a key no longer trusted does not matter for a digest already checked...
    assert trusted_checkpoints([checkpoint], {}, verified) == ([checkpoint], [])
    # ...but any change to the checkpoint is a new digest, and its signature is checked
    forged = replace(checkpoint, records=checkpoint.records + 1)
    valid, problems = trusted_checkpoints([forged], trusted, verified)
    assert valid == [] and "did not make over its fields" in problems[0]
