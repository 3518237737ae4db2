"""What verification and checkpointing refuse: rows the store never wrote, an anchor lost or
emptied, keys missing or untrusted, and everything `riskctl audit verify` cannot check."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.anchor import FileAnchor
from decisioning.adapters.audit.anchoring import (
    unanchored_overdue,
    verifying_keys,
    write_checkpoint,
)
from decisioning.adapters.audit.chain import (
    GENESIS,
    AnchoredReport,
    ChainReport,
    ChainRow,
    row_hash,
    verify_rows,
)
from decisioning.adapters.audit.checkpoint import ChainHead, key_id, sign_checkpoint
from decisioning.adapters.audit.keys import (
    PRIVATE_KEY_FILE,
    load_signing_key,
    private_key_pem,
    trusted_public_keys,
)
from decisioning.core.errors import GenesisRefused, TrustedKeysUnavailable
from decisioning.settings import AuditAnchorSettings, load_settings
from pipelines.cli import main
from tests.support.clock import NOW


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``local`` RISK_HOME with a 5-record chain its first checkpoint (a genesis) anchors."""
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.delenv("RISK_ENV", raising=False)
    for name in ("RISK_AUDIT_ANCHOR", "RISK_AUDIT_SIGNING_KEY", "RISK_AUDIT_PUBLIC_KEYS"):
        monkeypatch.delenv(name, raising=False)
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    append(store, 0, 5)
    store.close()
    assert main(["audit", "checkpoint", "--genesis"]) == 0
    yield tmp_path


def append(store: AuditStore, start: int, n: int) -> None:
    for i in range(start, start + n):
        store.append("decision", f"d{i}", {"action": "review", "i": i})


def anchor_of(home: Path) -> Path:
    return home / "anchor" / "audit-checkpoints.jsonl"


def raw(home: Path) -> sqlite3.Connection:
    """The database as its administrator sees it: triggers dropped, any statement allowed."""
    db = sqlite3.connect(home / "audit.db", isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    return db


def forge_row(db: sqlite3.Connection, seq: int, prev: str, body: str, at: str) -> str:
    digest = row_hash("decision", f"forged{seq}", at, body, prev)
    db.execute(
        "INSERT INTO audit_records VALUES (?, ?, 'decision', ?, ?, ?, ?)",
        (seq, f"forged{seq}", at, body, prev, digest),
    )
    return digest


def head_hash(db: sqlite3.Connection) -> str:
    return db.execute("SELECT row_hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()[0]


# 1. A sequence number the store never gave.


def test_sqlite_refuses_a_row_with_a_non_positive_seq(home: Path) -> None:
    db = sqlite3.connect(home / "audit.db")

    with pytest.raises(sqlite3.IntegrityError, match="seq must be positive"):
        db.execute(
            "INSERT INTO audit_records VALUES (-1, 'x', 'decision', ?, '{}', ?, ?)",
            (NOW.isoformat(), GENESIS, GENESIS),
        )


def test_a_row_before_the_first_is_read_and_breaks_the_chain(home: Path) -> None:
    # given a valid-looking row slipped in before the chain, at a negative seq
    db = raw(home)
    forge_row(db, -5, GENESIS, '{"action":"approve"}', NOW.isoformat())
    db.close()

    # then the whole walk meets it: the chain's real first row no longer links to genesis
    assert main(["audit", "verify"]) == 1


def test_the_walk_meets_as_many_rows_as_the_table_holds(home: Path) -> None:
    store = AuditStore.open_existing(f"sqlite:///{home / 'audit.db'}")
    real_rows = store.rows

    def rows_missing_one(*args: object, **kwargs: object) -> Iterator:
        return (row for row in real_rows(*args, **kwargs) if row.seq != 5)  # type: ignore[arg-type]

    store.rows = rows_missing_one  # type: ignore[method-assign]
    report = store.verify_anchored([])
    store.close()

    assert any("rows outside the chain" in problem for problem in report.problems), report


# 2. An anchor deleted or emptied.


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_rewritten_chain_with_its_anchor_lost_is_neither_intact_nor_signed(
    home: Path, loss: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the chain rewritten from row 2 (re-hashed) and its anchor deleted or emptied
    db = raw(home)
    rows = db.execute("SELECT seq, row_hash FROM audit_records ORDER BY seq").fetchall()
    db.execute("DELETE FROM audit_records WHERE seq >= 2")
    prev = rows[0][1]
    for seq in range(2, 6):
        prev = forge_row(db, seq, prev, '{"action":"approve"}', NOW.isoformat())
    db.close()
    if loss == "deleted":
        anchor_of(home).unlink()
    else:
        anchor_of(home).write_text("")
    capsys.readouterr()

    # then verify says nothing vouches for the records, and a checkpoint will not sign them
    assert main(["audit", "verify"]) == 4
    assert "no anchor: nothing outside the database vouches for these 5 records" in (
        capsys.readouterr().err
    )
    assert main(["audit", "checkpoint"]) == 1, "a genesis over the forgery must be refused"
    assert not anchor_of(home).exists() or anchor_of(home).read_text() == ""


def test_the_background_checkpointer_does_not_begin_an_anchor_over_records_it_did_not_see(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anchor_of(home).unlink()
    settings = load_settings()
    fast = settings.audit.anchor.model_copy(update={"every_records": 1, "every_seconds": 0.05})

    with caplog.at_level(logging.ERROR):
        store = AuditStore.from_settings(settings.audit.model_copy(update={"anchor": fast}))
        append(store, 5, 2)
        store.close()

    assert not anchor_of(home).exists() or not anchor_of(home).read_text().strip()
    assert "GenesisRefused" in caplog.text, "the refusal must be in the service's log"


def test_a_genesis_is_refused_by_the_library_unless_asked_for(tmp_path: Path) -> None:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    append(store, 0, 2)
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    anchor = FileAnchor(tmp_path / "anchor.jsonl")

    with pytest.raises(GenesisRefused, match="2 records"):
        write_checkpoint(store, anchor, key, trusted)
    assert write_checkpoint(store, anchor, key, trusted, genesis=True) is not None
    store.close()


def test_an_anchor_cut_back_is_caught_by_the_digest_the_auditor_noted(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an auditor who noted the latest checkpoint's digest
    store = AuditStore.open(f"sqlite:///{home / 'audit.db'}")
    append(store, 5, 3)
    store.close()
    assert main(["audit", "checkpoint"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    printed = capsys.readouterr().out.splitlines()
    digest = next(line for line in printed if line.startswith("digest ")).split()[1]
    assert main(["audit", "verify", "--expect-checkpoint", digest]) == 0

    # when the anchor is cut back to its first checkpoint (still a valid anchor on its own)
    first_line = anchor_of(home).read_text().splitlines()[0]
    anchor_of(home).write_text(first_line + "\n")

    # then only the noted digest catches it
    assert main(["audit", "verify", "--expect-checkpoint", digest]) == 1
    assert "is not in the anchor" in capsys.readouterr().err


# 3. Nothing to verify.


def test_an_empty_chain_with_nothing_anchored_is_not_called_anchored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.delenv("RISK_ENV", raising=False)
    AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}").close()

    assert main(["audit", "verify", "--strict"]) == 3
    assert "every record is anchored" not in capsys.readouterr().out


def test_verify_never_creates_the_database_it_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("RISK_HOME", str(missing))
    monkeypatch.delenv("RISK_ENV", raising=False)

    assert main(["audit", "verify"]) == 2
    assert "no audit database" in capsys.readouterr().err
    assert not (missing / "audit.db").exists(), "verify must not create what it checks"


def test_verify_says_so_when_the_table_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.delenv("RISK_ENV", raising=False)
    sqlite3.connect(tmp_path / "audit.db").close()

    assert main(["audit", "verify"]) == 2
    assert "has no audit_records table" in capsys.readouterr().err


# 4. The root of trust.


def test_the_services_profile_trusts_no_folder_on_the_host(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    settings = load_settings(
        {
            "RISK_ENV": "services",
            "RISK_HOME": str(tmp_path),
            "RISK_AUDIT_SIGNING_KEY": private_key_pem(key).decode(),
        }
    )
    planted = Ed25519PrivateKey.generate()  # whoever can write RISK_HOME/keys
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / f"{key_id(planted.public_key())}.pub").write_text("planted")

    assert settings.audit.anchor.public_keys == ""
    assert set(verifying_keys(settings.audit.anchor)) == {key_id(key.public_key())}


# 5. Staleness and the times rows carry.


def test_overdue_is_measured_from_the_latest_signed_checkpoint_not_the_rows_own_time() -> None:
    key = Ed25519PrivateKey.generate()
    old = (NOW - timedelta(hours=1)).isoformat()
    latest = sign_checkpoint(ChainHead(5, "a" * 64, 5), None, key, old)
    # rows a writer dated "now" after a checkpoint an hour old
    report = AnchoredReport(
        ChainReport(6),
        checkpoints=1,
        unanchored=1,
        oldest_unanchored_at=NOW.isoformat(),
        latest=latest,
    )
    settings = AuditAnchorSettings(kind="file", location="unused", every_seconds=60)

    assert unanchored_overdue(report, settings, NOW), "an hour since the last checkpoint is late"


@pytest.mark.parametrize(
    ("at", "named"),
    [
        ("yesterday", "is not a time"),
        ("2026-09-01T11:59:00", "no time zone"),
        ("2099-01-01T00:00:00+00:00", "in the future"),
    ],
)
def test_a_row_time_the_store_never_writes_breaks_the_chain_without_a_crash(
    home: Path, at: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = raw(home)
    forge_row(db, 6, head_hash(db), '{"action":"approve"}', at)
    db.close()

    assert main(["audit", "verify"]) == 1
    assert named in capsys.readouterr().err


# 6. Key rotation.


def test_a_key_outside_the_trusted_set_signs_nothing(tmp_path: Path) -> None:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    append(store, 0, 1)
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    with pytest.raises(TrustedKeysUnavailable, match="not among the trusted"):
        write_checkpoint(
            store,
            FileAnchor(tmp_path / "a.jsonl"),
            key,
            {key_id(other.public_key()): other.public_key()},
            genesis=True,
        )
    store.close()


def test_a_local_key_replaced_by_hand_gets_its_public_key_written(home: Path) -> None:
    # given the runbook's rotation in local: a new private key where the old one was
    new = Ed25519PrivateKey.generate()
    (home / "keys" / PRIVATE_KEY_FILE).write_bytes(private_key_pem(new))
    store = AuditStore.open(f"sqlite:///{home / 'audit.db'}")
    append(store, 5, 2)
    store.close()

    # then the next checkpoint is signed with it, and verify accepts old and new
    assert main(["audit", "checkpoint"]) == 0
    assert (home / "keys" / f"{key_id(new.public_key())}.pub").is_file()
    assert main(["audit", "verify", "--strict"]) == 0
    assert load_signing_key(load_settings().audit.anchor) is not None


# 7 and 8. Could not verify: exit 2, not "broken".


def test_an_unreadable_anchor_could_not_be_verified(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor_of(home).unlink()
    anchor_of(home).mkdir()

    assert main(["audit", "verify"]) == 2
    assert "could not verify" in capsys.readouterr().err


@pytest.mark.parametrize("wrong", ["--anchor", "--public-key"])
def test_a_mistyped_path_could_not_be_verified(home: Path, wrong: str) -> None:
    assert main(["audit", "verify", wrong, str(home / "typo")]) == 2


def test_checkpoints_with_no_trusted_key_could_not_be_verified(home: Path) -> None:
    empty = home / "no-keys"
    empty.mkdir()

    assert main(["audit", "verify", "--public-key", str(empty)]) == 2
    assert trusted_public_keys(str(empty)) == {}


# 9. From a checkpoint.


def test_from_a_checkpoint_says_what_it_did_not_check(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = raw(home)
    db.execute("""UPDATE audit_records SET body = '{"action":"approve"}' WHERE seq = 2""")
    db.close()
    capsys.readouterr()

    assert main(["audit", "verify", "--from-checkpoint"]) == 0
    assert "intact from seq 5 on (earlier rows not checked)" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 1


# 10. Bodies the store never writes.


@pytest.mark.parametrize(
    "body", ['{"action":"review","action":"approve"}', "not json", '{"b": 1, "a": 2}']
)
def test_a_body_that_is_not_canonical_json_breaks_the_chain(home: Path, body: str) -> None:
    db = raw(home)
    forge_row(db, 6, head_hash(db), body, NOW.isoformat())
    rows = [tuple(row) for row in db.execute("SELECT * FROM audit_records ORDER BY seq")]
    db.close()

    report = verify_rows(ChainRow(*row) for row in rows)
    assert not report.chain.ok and report.chain.first_broken_seq == 6, report
    assert report.chain.reason and "canonical JSON" in report.chain.reason
