"""An insider at work: 1,000 random single tamperings of a checkpointed 500-row chain, all caught.

Each tampering runs on a fresh copy of the same SQLite chain, as someone who may drop the
triggers and rewrite rows, hashes included, but cannot sign a checkpoint. Checkpoints were taken
every 100 records, the last at the head, before any tampering.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.anchor import FileAnchor
from decisioning.adapters.audit.anchoring import verify_against_anchor, write_checkpoint
from decisioning.adapters.audit.chain import row_hash
from decisioning.adapters.audit.checkpoint import key_id
from decisioning.adapters.audit.store import _engine
from tests.support.clock import NOW

ROWS, CHECKPOINT_EVERY, TRIALS = 500, 100, 1000
Tampering = Callable[[sqlite3.Connection, random.Random], None]


def _rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(
        "SELECT seq, record_id, kind, recorded_at, body, prev_hash, row_hash "
        "FROM audit_records ORDER BY seq"
    ).fetchall()


def _rehash_from(db: sqlite3.Connection, first_seq: int) -> None:
    """Recompute every hash from ``first_seq`` on, as a forger who knows the hash function."""
    rows = _rows(db)
    prev = next((r[6] for r in reversed(rows) if r[0] < first_seq), "0" * 64)
    for seq, record_id, kind, recorded_at, body, _, _ in (r for r in rows if r[0] >= first_seq):
        digest = row_hash(kind, record_id, recorded_at, body, prev)
        db.execute(
            "UPDATE audit_records SET prev_hash = ?, row_hash = ? WHERE seq = ?",
            (prev, digest, seq),
        )
        prev = digest


def field_edit(db: sqlite3.Connection, rng: random.Random) -> None:
    seq = rng.randint(1, ROWS)
    column = rng.choice(["body", "kind", "record_id", "recorded_at"])
    value = {"body": '{"action":"approve"}', "kind": "promotion"}.get(column, f"x{seq}")
    db.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = ?", (value, seq))


def hash_edit(db: sqlite3.Connection, rng: random.Random) -> None:
    seq, column = rng.randint(1, ROWS), rng.choice(["row_hash", "prev_hash"])
    db.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = ?", ("e" * 64, seq))


def delete(db: sqlite3.Connection, rng: random.Random) -> None:
    db.execute("DELETE FROM audit_records WHERE seq = ?", (rng.randint(1, ROWS - 1),))


def swap(db: sqlite3.Connection, rng: random.Random) -> None:
    first, second = sorted(rng.sample(range(1, ROWS + 1), 2))
    db.execute("UPDATE audit_records SET seq = -1 WHERE seq = ?", (first,))
    db.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (first, second))
    db.execute("UPDATE audit_records SET seq = ? WHERE seq = -1", (second,))


def forged_middle_row(db: sqlite3.Connection, rng: random.Random) -> None:
    after = rng.randint(1, ROWS - 1)
    (prev,) = db.execute("SELECT row_hash FROM audit_records WHERE seq = ?", (after,)).fetchone()
    db.execute("UPDATE audit_records SET seq = seq + 1000 WHERE seq > ?", (after,))
    at, body = "2026-01-01T00:00:00+00:00", '{"action":"approve"}'
    digest = row_hash("decision", "forged", at, body, prev)
    db.execute(
        "INSERT INTO audit_records VALUES (?, 'forged', 'decision', ?, ?, ?, ?)",
        (after + 1, at, body, prev, digest),
    )


def forged_tail(db: sqlite3.Connection, rng: random.Random) -> None:
    """The last 1-5 rows given new content, their hashes recomputed."""
    count = rng.randint(1, 5)
    first = ROWS - count + 1
    db.execute('UPDATE audit_records SET body = \'{"action":"approve"}\' WHERE seq >= ?', (first,))
    _rehash_from(db, first)


def tail_truncation(db: sqlite3.Connection, rng: random.Random) -> None:
    db.execute("DELETE FROM audit_records WHERE seq > ?", (ROWS - rng.randint(1, 50),))


def rewrite_later_hashes(db: sqlite3.Connection, rng: random.Random) -> None:
    """An edit anywhere, then every hash after it rewritten so the chain links again."""
    seq = rng.randint(1, ROWS)
    db.execute('UPDATE audit_records SET body = \'{"action":"approve"}\' WHERE seq = ?', (seq,))
    _rehash_from(db, seq)


def truncate(db: sqlite3.Connection, rng: random.Random) -> None:
    db.execute("DELETE FROM audit_records")  # SQLite's TRUNCATE: a DELETE without WHERE


def row_before_the_chain(db: sqlite3.Connection, rng: random.Random) -> None:
    """A valid-looking first row at a seq the store never gives (0 or below), linked to genesis."""
    seq, at, body = -rng.randint(0, 10**6), "2026-01-01T00:00:00+00:00", '{"action":"approve"}'
    digest = row_hash("decision", "forged", at, body, "0" * 64)
    db.execute(
        "INSERT INTO audit_records VALUES (?, 'forged', 'decision', ?, ?, ?, ?)",
        (seq, at, body, "0" * 64, digest),
    )


# Rows linked onto the head, hashed right, that the store could never have written: past the
# last checkpoint, only their form gives them away.
_NEVER_WRITTEN = [
    ('{"action":"review","action":"approve"}', "2026-01-01T00:00:00+00:00"),
    ('{"action": "approve"}', "2026-01-01T00:00:00+00:00"),
    ("approve", "2026-01-01T00:00:00+00:00"),
    ('{"action":"approve"}', "2026-01-01T00:00:00"),
    ('{"action":"approve"}', "yesterday"),
    ('{"action":"approve"}', "2999-01-01T00:00:00+00:00"),
]


def row_the_store_never_writes(db: sqlite3.Connection, rng: random.Random) -> None:
    body, at = rng.choice(_NEVER_WRITTEN)
    (prev,) = db.execute("SELECT row_hash FROM audit_records WHERE seq = ?", (ROWS,)).fetchone()
    digest = row_hash("decision", "forged", at, body, prev)
    db.execute(
        "INSERT INTO audit_records VALUES (?, 'forged', 'decision', ?, ?, ?, ?)",
        (ROWS + 1, at, body, prev, digest),
    )


TAMPERINGS: dict[str, Tampering] = {
    tampering.__name__: tampering
    for tampering in (
        field_edit,
        hash_edit,
        delete,
        swap,
        forged_middle_row,
        forged_tail,
        tail_truncation,
        rewrite_later_hashes,
        truncate,
        row_before_the_chain,
        row_the_store_never_writes,
    )
}


@pytest.fixture(scope="module")
def checkpointed_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A 500-row chain with a signed checkpoint every 100 records, the last at its head."""
    folder = tmp_path_factory.mktemp("chain")
    store = AuditStore.open(f"sqlite:///{folder / 'audit.db'}")
    anchor, key = FileAnchor(folder / "checkpoints.jsonl"), Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    for i in range(ROWS):
        store.append("decision", f"d{i}", {"risk_score": round(i / ROWS, 4), "action": "review"})
        if (i + 1) % CHECKPOINT_EVERY == 0:
            write_checkpoint(store, anchor, key, trusted, genesis=True)
    store.close()
    return folder / "audit.db", anchor.path, trusted


def test_every_single_tampering_of_a_checkpointed_chain_is_caught(
    checkpointed_chain: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    # given an untouched copy that verifies, fully anchored
    original, anchor_path, trusted = checkpointed_chain
    anchor = FileAnchor(anchor_path)
    untouched = AuditStore(_engine(f"sqlite:///{original}"))
    clean = verify_against_anchor(untouched, anchor, trusted)
    untouched.close()
    assert not clean.broken and clean.report.unanchored == 0, clean.problems
    rng, tried, caught, missed = random.Random(16), Counter[str](), Counter[str](), []
    copy = tmp_path / "audit.db"
    for trial in range(TRIALS):
        # when one tampering is applied to a fresh copy
        kind = rng.choice(sorted(TAMPERINGS))
        shutil.copyfile(original, copy)
        db = sqlite3.connect(copy)
        db.execute("PRAGMA synchronous = OFF")  # a throw-away copy: no flush to disk to wait for
        db.execute("PRAGMA journal_mode = MEMORY")
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{trigger}"')
        TAMPERINGS[kind](db, rng)
        db.commit()
        db.close()
        store = AuditStore(_engine(f"sqlite:///{copy}"))
        outcome = verify_against_anchor(store, anchor, trusted, now=NOW)
        store.close()
        tried[kind] += 1
        if outcome.broken:
            caught[kind] += 1
        else:
            missed.append((trial, kind))
    # then every one of them was caught, whatever its kind
    print("\ntampering kind                caught / tried")
    for kind in sorted(TAMPERINGS):
        print(f"  {kind:<28}{caught[kind]:>6} / {tried[kind]}")
    print(f"  {'all':<28}{sum(caught.values()):>6} / {TRIALS}")
    assert set(tried) == set(TAMPERINGS), "every kind of tampering must be tried"
    assert not missed, f"tamperings the verification missed (trial, kind): {missed[:10]}"
