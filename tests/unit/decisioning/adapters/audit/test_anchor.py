"""Signed checkpoints: the anchor's own faults, keys, the background checkpointer, the CLI."""

from __future__ import annotations

import json
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit import checkpointer as checkpointer_module
from decisioning.adapters.audit.anchor import FileAnchor
from decisioning.adapters.audit.anchoring import verify_against_anchor, write_checkpoint
from decisioning.adapters.audit.checkpoint import ChainHead, Checkpoint, key_id, sign_checkpoint
from decisioning.adapters.audit.checkpointer import BackgroundCheckpointer
from decisioning.adapters.audit.keys import load_signing_key, public_key_pem, trusted_public_keys
from decisioning.core.errors import AuditChainBroken, SigningKeyUnavailable
from decisioning.settings import AuditAnchorSettings, load_settings
from pipelines.cli import main


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield audit
    audit.close()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def trusting(*keys: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {key_id(k.public_key()): k.public_key() for k in keys}


def fill(store: AuditStore, start: int, n: int) -> None:
    for i in range(start, start + n):
        store.append("decision", f"d{i}", {"i": i})


def rewrite_anchor(anchor: FileAnchor, lines: list[str]) -> None:
    anchor.path.write_text("".join(f"{line}\n" for line in lines))


def test_records_after_the_last_checkpoint_are_counted_as_unanchored(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 5)
    write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    fill(store, 5, 3)

    outcome = verify_against_anchor(store, anchor, trusting(key))

    assert not outcome.broken
    assert outcome.report.unanchored == 3 and outcome.report.anchored_seq == 5


def test_no_new_checkpoint_when_nothing_was_appended(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 2)

    first = write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    second = write_checkpoint(store, anchor, key, trusting(key), genesis=True)

    assert first is not None and second is None
    assert len(anchor.read()) == 1


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda lines: [lines[0], lines[2]], "does not follow"),
        (lambda lines: [*lines[:2], _field(lines[2], signature="")], "has no signature"),
        (lambda lines: [*lines[:2], _field(lines[2], records=99)], "did not make"),
        (lambda lines: [*lines[:2], "not json"], "is not a checkpoint"),
    ],
    ids=["removed", "unsigned", "altered", "garbled"],
)
def test_a_damaged_anchor_is_named(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path, damage, named: str
) -> None:
    # given three checkpoints, then the anchor damaged
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    for start in (0, 2, 4):
        fill(store, start, 2)
        write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    rewrite_anchor(anchor, damage(anchor.path.read_text().splitlines()))

    outcome = verify_against_anchor(store, anchor, trusting(key))

    assert outcome.broken and any(named in problem for problem in outcome.problems), outcome


def _field(line: str, **changes: object) -> str:
    return json.dumps({**json.loads(line), **changes})


def test_a_head_going_backwards_is_named(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    # given a signed checkpoint whose head is behind the one before it (a signer fooled once)
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 4)
    first = write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    assert first is not None
    behind = ChainHead(seq=2, row_hash=first.row_hash, records=2)
    anchor.append(sign_checkpoint(behind, first, key, "2026-01-01T00:00:00+00:00"))

    outcome = verify_against_anchor(store, anchor, trusting(key))

    assert outcome.broken and any("backwards" in p for p in outcome.problems), outcome.problems


def test_a_checkpoint_by_an_unknown_key_is_refused(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 2)
    write_checkpoint(store, anchor, key, trusting(key), genesis=True)

    outcome = verify_against_anchor(store, anchor, trusting(Ed25519PrivateKey.generate()))

    assert outcome.broken and "not among the trusted" in outcome.problems[0]


def test_a_rotated_key_keeps_old_checkpoints_verifiable(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    # given checkpoints by the old key, then by a new one that trusts the old public key
    anchor, new_key = FileAnchor(tmp_path / "anchor.jsonl"), Ed25519PrivateKey.generate()
    fill(store, 0, 2)
    write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    fill(store, 2, 2)
    write_checkpoint(store, anchor, new_key, trusting(key, new_key), genesis=True)

    outcome = verify_against_anchor(store, anchor, trusting(key, new_key))

    assert not outcome.broken and outcome.report.unanchored == 0
    assert {c.key_id for c in anchor.read() if isinstance(c, Checkpoint)} == set(
        trusting(key, new_key)
    )


def test_no_checkpoint_is_signed_over_a_tail_cut_since_the_last_one(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 3)
    write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    with store._engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER audit_records_no_delete")
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq = 3")
    fill(store, 3, 2)  # the head moves on past the checkpoint with a different row 3

    with pytest.raises(AuditChainBroken, match="seq 3"):
        write_checkpoint(store, anchor, key, trusting(key), genesis=True)


def test_verifying_from_the_latest_checkpoint_reads_only_what_follows_it(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    fill(store, 0, 10)
    write_checkpoint(store, anchor, key, trusting(key), genesis=True)
    fill(store, 10, 4)

    outcome = verify_against_anchor(store, anchor, trusting(key), incremental=True)

    assert outcome.started_at is not None and outcome.started_at.seq == 10
    assert outcome.report.chain.checked == 4 and outcome.report.unanchored == 4


def anchor_settings(tmp_path: Path, **values: object) -> AuditAnchorSettings:
    return AuditAnchorSettings(
        kind="file", location=str(tmp_path / "anchor" / "checkpoints.jsonl"), **values
    )


def test_local_makes_a_private_signing_key_on_first_use_and_keeps_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = anchor_settings(tmp_path, generated_key_dir=str(tmp_path / "keys"))

    with caplog.at_level(logging.WARNING):
        first = load_signing_key(settings)
    second = load_signing_key(settings)

    private = tmp_path / "keys" / "audit-signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600, "the private key must be owner-only"
    assert (tmp_path / "keys" / f"{key_id(first.public_key())}.pub").is_file()
    assert key_id(first.public_key()) == key_id(second.public_key()), "made once, then reused"
    assert "generated a new audit signing key" in caplog.text


def test_services_and_aws_refuse_to_checkpoint_without_a_key(tmp_path: Path) -> None:
    settings = load_settings(
        {"RISK_ENV": "services", "RISK_HOME": str(tmp_path), "RISK_AUDIT_URL": "sqlite://"}
    )

    with pytest.raises(SigningKeyUnavailable, match="RISK_AUDIT_SIGNING_KEY"):
        load_signing_key(settings.audit.anchor)


def test_the_service_still_appends_without_a_key_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = load_settings(
        {"RISK_ENV": "services", "RISK_HOME": str(tmp_path), "RISK_AUDIT_URL": url}
    )

    with caplog.at_level(logging.WARNING):
        store = AuditStore.from_settings(settings.audit)
        fill(store, 0, 3)
    store.close()

    assert "audit checkpoints are off" in caplog.text
    assert caplog.text.count("audit checkpoints are off") == 1


def test_the_background_checkpointer_runs_every_n_records_off_the_appending_thread() -> None:
    taken, thread_names = threading.Event(), []

    def take() -> None:
        thread_names.append(threading.current_thread().name)
        taken.set()

    checkpointer = BackgroundCheckpointer(take, every_records=3, every_seconds=3600)
    checkpointer.start()
    checkpointer.appended(1)
    assert taken.wait(5), "a process's first record is anchored at once"
    taken.clear()
    checkpointer.appended(2)
    assert not taken.wait(0.2), "two records are fewer than a checkpoint's worth"
    checkpointer.appended(1)

    assert taken.wait(5), "the third record must trigger a checkpoint"
    checkpointer.close()
    assert thread_names[0] == "audit-checkpointer"


def test_the_first_record_after_a_quiet_spell_is_anchored_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = threading.Event()
    clock = [1000.0]
    monkeypatch.setattr(checkpointer_module.time, "monotonic", lambda: clock[0])
    checkpointer = BackgroundCheckpointer(taken.set, every_records=100, every_seconds=60)
    checkpointer.start()
    checkpointer.appended(1)  # the process's first record
    assert taken.wait(5)
    taken.clear()

    clock[0] += 30  # half the interval later: waits for the cadence
    checkpointer.appended(1)
    assert not taken.wait(0.2)
    clock[0] += 61  # a quiet spell longer than the interval since the last checkpoint
    checkpointer.appended(1)

    assert taken.wait(5), "the first record after a quiet spell must be anchored at once"
    checkpointer.close()


def test_records_appended_during_the_last_checkpoint_are_anchored_on_close() -> None:
    taken: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def take() -> None:
        taken.append(len(taken))
        if len(taken) == 1:
            inside.set()
            release.wait(5)  # the first checkpoint is slow: records land meanwhile

    checkpointer = BackgroundCheckpointer(take, every_records=100, every_seconds=3600)
    checkpointer.start()
    checkpointer.appended(1)  # the process's first record: anchored at once
    assert inside.wait(5)
    checkpointer.appended(2)  # appended while that checkpoint is being written
    threading.Timer(0.2, release.set).start()
    checkpointer.close()

    assert len(taken) == 2, "close must anchor what the running checkpoint did not cover"


def test_a_served_store_checkpoints_in_the_background(tmp_path: Path) -> None:
    settings = load_settings({"RISK_HOME": str(tmp_path)})
    anchor = settings.audit.anchor.model_copy(update={"every_records": 5, "every_seconds": 0.1})
    audit = settings.audit.model_copy(update={"anchor": anchor})
    store = AuditStore.from_settings(audit)
    fill(store, 0, 7)
    store.close()  # the last checkpoint is taken on close

    checkpoints = FileAnchor(Path(audit.anchor.location)).read()
    assert checkpoints and isinstance(checkpoints[-1], Checkpoint)
    assert checkpoints[-1].records == 7


def test_verify_exits_0_when_anchored_3_when_unanchored_4_unvouched_and_1_when_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the local profile over a chain of 3 records
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.delenv("RISK_ENV", raising=False)
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    fill(store, 0, 3)

    # then: records no checkpoint vouches for exit 4, a first checkpoint over them must be asked
    # for, and once taken verification passes, --strict too
    assert main(["audit", "verify", "--strict"]) == 4
    assert main(["audit", "checkpoint"]) == 1, "a genesis over written records is refused"
    assert main(["audit", "checkpoint", "--genesis"]) == 0
    assert main(["audit", "verify", "--strict"]) == 0
    fill(store, 3, 1)
    assert main(["audit", "verify", "--strict"]) == 3, "one unanchored record fails --strict"
    assert main(["audit", "checkpoint"]) == 0
    # and an auditor with only the public key and the anchor gets the same answer
    public = next((tmp_path / "keys").glob("*.pub"))
    anchor = tmp_path / "anchor" / "audit-checkpoints.jsonl"
    auditor = ["--anchor", str(anchor), "--public-key", str(public)]
    assert main(["audit", "verify", "--strict", *auditor]) == 0
    # when the last record is cut off
    with store._engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER audit_records_no_delete")
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq = 4")
    store.close()
    # then verification fails as broken
    assert main(["audit", "verify"]) == 1
    assert main(["audit", "verify", "--from-checkpoint"]) == 1


def test_public_keys_load_from_pem_text(key: Ed25519PrivateKey) -> None:
    pem = public_key_pem(key.public_key()).decode()

    assert set(trusted_public_keys(pem)) == {key_id(key.public_key())}
