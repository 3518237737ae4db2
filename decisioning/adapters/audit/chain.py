"""What makes the chain valid, as pure functions over rows and checkpoints (no database here).

A row's hash covers its content and the previous row's hash, so an edit or a deletion anywhere
breaks every link after it, unless the tail is recomputed, or cut off. Checkpoints signed outside
the database (``checkpoint.py``) catch those two: each names the row hash and record count the
chain had at its sequence number, and a chain that no longer has them was rewritten or cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from decisioning.adapters.audit.checkpoint import (
    NO_CHECKPOINT,
    ChainHead,
    Checkpoint,
    signature_problem,
)
from decisioning.core.decision import canonical_json, sha256_hex

GENESIS = "0" * 64
# How far past the verifier's clock a record's time may be (clocks of workers drift a little).
FUTURE_TOLERANCE = timedelta(minutes=5)


class ChainRow(NamedTuple):
    """A row as stored: the body is the exact text the hash covers."""

    seq: int
    record_id: str
    kind: str
    recorded_at: str
    body: str
    prev_hash: str
    row_hash: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_seq: int | None = None
    first_broken_id: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


@dataclass(frozen=True)
class AnchoredReport:
    """The chain checked on its own and against the anchor's checkpoints.

    ``problems`` are what the anchor shows to be wrong (a cut or rewritten tail, a checkpoint
    missing, unsigned or going backwards); ``unanchored`` counts the records after the latest
    valid checkpoint, which nothing outside the database vouches for yet; ``latest`` is that
    checkpoint, whose signed time says how long the tail has gone unanchored.
    """

    chain: ChainReport
    problems: tuple[str, ...] = ()
    checkpoints: int = 0
    anchored_seq: int | None = None
    unanchored: int = 0
    oldest_unanchored_at: str | None = None
    head: ChainHead | None = None
    latest: Checkpoint | None = None

    @property
    def broken(self) -> bool:
        return not self.chain.ok or bool(self.problems)


def row_hash(kind: str, record_id: str, recorded_at: str, body: str, prev_hash: str) -> str:
    """The hash a row must carry: over its content and the hash of the row before it.

    The hashed text is the canonical JSON of the five fields; verification computes it so.
    """
    material = canonical_json(
        {
            "kind": kind,
            "record_id": record_id,
            "recorded_at": recorded_at,
            "body": body,
            "prev_hash": prev_hash,
        }
    )
    return sha256_hex(material)


def row_material(kind: str, record_id: str, recorded_at: str, body: str) -> tuple[str, str]:
    """The text :func:`row_hash` hashes, as the parts before and after the JSON of ``prev_hash``.

    ``prefix + json(prev_hash) + suffix`` is that canonical JSON for any ``prev_hash`` (keys sorted:
    body, kind, prev_hash, record_id, recorded_at), so a database that knows the head but not the
    row can finish the hash (PostgreSQL's ``to_json(text)`` escapes as ``json.dumps`` does;
    ``postgres_append.py``, a test holds the two equal).
    """

    def text(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    prefix = f'{{"body":{text(body)},"kind":{text(kind)},"prev_hash":'
    suffix = f',"record_id":{text(record_id)},"recorded_at":{text(recorded_at)}}}'
    return prefix, suffix


def trusted_checkpoints(
    entries: Sequence[Checkpoint | str],
    trusted: Mapping[str, Ed25519PublicKey],
    verified: set[str] | None = None,
) -> tuple[list[Checkpoint], list[str]]:
    """The anchor's checkpoints whose signatures hold, and what is wrong with the anchor itself.

    Checkpoints name the digest of the one before them, so one removed, reordered or altered in
    the middle of the anchor shows; the head they name may only move forward. A digest in
    ``verified`` (the whole checkpoint, signature included) skips the signature check, and each
    valid checkpoint's digest is added to it.
    """
    valid: list[Checkpoint] = []
    problems: list[str] = []
    known = set() if verified is None else verified
    previous: Checkpoint | None = None
    previous_digest = NO_CHECKPOINT
    for number, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            problems.append(entry)
            continue
        where = f"checkpoint {number} (seq {entry.seq})"
        digest = entry.digest()
        signature = None if digest in known else signature_problem(entry, trusted)
        if signature is not None:
            problems.append(f"{where} {signature}")
            continue
        known.add(digest)
        if entry.previous != previous_digest:
            problems.append(
                f"{where} does not follow the checkpoint before it: "
                "a checkpoint was removed, reordered or altered"
            )
        if previous is not None and (entry.seq < previous.seq or entry.records < previous.records):
            problems.append(
                f"{where} has the head going backwards: {entry.records} records at seq "
                f"{entry.seq} after {previous.records} at seq {previous.seq}"
            )
        valid.append(entry)
        previous, previous_digest = entry, digest
    return valid, problems


def verify_rows(
    rows: Iterable[ChainRow],
    checkpoints: Sequence[Checkpoint] = (),
    start: Checkpoint | None = None,
    now: datetime | None = None,
) -> AnchoredReport:
    """Recompute every hash in order and hold the chain to each checkpoint it passes.

    ``rows`` are in sequence order; from ``start`` (a checkpoint), they begin at its row, and the
    rows before it are taken as the checkpoint vouches for them. A row the store could never have
    written (a body that is not its canonical JSON, a time that is not a UTC instant, or one
    later than ``now``) breaks the chain as an edited one does.
    """
    latest = max(checkpoints, key=lambda c: c.seq, default=None)
    walk = _Walk(pending=sorted(checkpoints, key=lambda c: c.seq), latest=latest, now=now)
    iterator = iter(rows)
    if start is not None and not walk.begin_at(start, next(iterator, None)):
        return walk.report(checkpoints)
    for row in iterator:
        if not walk.step(row):
            break
    return walk.report(checkpoints)


@dataclass
class _Walk:
    """Where a walk along the chain has got to, and what it found."""

    pending: list[Checkpoint]
    latest: Checkpoint | None = None
    now: datetime | None = None
    expected_prev: str = GENESIS
    records: int = 0
    checked: int = 0
    last: ChainRow | None = None
    broken: ChainReport | None = None
    problems: list[str] = field(default_factory=list)
    anchored_records: int = 0
    anchored_seq: int | None = None
    oldest_unanchored_at: str | None = None

    def begin_at(self, start: Checkpoint, first: ChainRow | None) -> bool:
        """Take the walk up at the start checkpoint's row, or say why it cannot be."""
        self.pending = [c for c in self.pending if c.seq > start.seq]
        if first is None or first.seq != start.seq:
            self.problems.append(
                f"the row at seq {start.seq}, which the checkpoint anchors, is gone: "
                "the chain was cut back or renumbered"
            )
            return False
        if first.row_hash != start.row_hash:
            self.problems.append(_rewritten(start, first))
            return False
        problem = _row_problem(first, self.now)
        if problem is not None:
            self.broken = ChainReport(0, first.seq, first.record_id, problem)
            return False
        self.expected_prev, self.records, self.last = first.row_hash, start.records, first
        self.anchored_records, self.anchored_seq = start.records, start.seq
        return True

    def step(self, row: ChainRow) -> bool:
        """Check one row; False once the chain is broken and the walk must stop."""
        if row.prev_hash != self.expected_prev:
            self.broken = ChainReport(self.checked, row.seq, row.record_id, _LINK)
            return False
        problem = _row_problem(row, self.now)
        if problem is not None:
            self.broken = ChainReport(self.checked, row.seq, row.record_id, problem)
            return False
        while self.pending and self.pending[0].seq < row.seq:
            # The walk went past a checkpoint's row without meeting it: that row was removed.
            self.problems.append(_missing(self.pending.pop(0)))
        if self.pending and self.pending[0].seq == row.seq:
            self._hold_to(self.pending.pop(0), row)
        self.expected_prev, self.last = row.row_hash, row
        self.records += 1
        self.checked += 1
        if self.oldest_unanchored_at is None and (
            self.anchored_seq is None or row.seq > self.anchored_seq
        ):
            self.oldest_unanchored_at = row.recorded_at
        return True

    def _hold_to(self, checkpoint: Checkpoint, row: ChainRow) -> None:
        records = self.records + 1
        if row.row_hash != checkpoint.row_hash:
            self.problems.append(_rewritten(checkpoint, row))
        elif records != checkpoint.records:
            self.problems.append(
                f"checkpoint at seq {checkpoint.seq} anchors {checkpoint.records} records up to "
                f"it, the chain holds {records}: records before it were removed or inserted"
            )
        self.anchored_records, self.anchored_seq = records, row.seq
        self.oldest_unanchored_at = None

    def report(self, checkpoints: Sequence[Checkpoint]) -> AnchoredReport:
        chain = self.broken or ChainReport(self.checked)
        if chain.ok and not self.problems:
            for checkpoint in self.pending:  # checkpoints beyond the chain's end
                self.problems.append(_cut(checkpoint, self))
        head = None
        if self.last is not None:
            head = ChainHead(self.last.seq, self.last.row_hash, self.records)
        return AnchoredReport(
            chain=chain,
            problems=tuple(self.problems),
            checkpoints=len(checkpoints),
            anchored_seq=self.anchored_seq,
            unanchored=self.records - self.anchored_records,
            oldest_unanchored_at=self.oldest_unanchored_at,
            head=head,
            latest=self.latest,
        )


def _rewritten(checkpoint: Checkpoint, row: ChainRow) -> str:
    return (
        f"checkpoint at seq {checkpoint.seq} anchors row hash {checkpoint.row_hash[:12]}…, the "
        f"chain holds {row.row_hash[:12]}… there: the chain up to it was forged or rewritten"
    )


def _missing(checkpoint: Checkpoint) -> str:
    return (
        f"checkpoint at seq {checkpoint.seq} anchors a row the chain no longer holds: "
        "it was removed and the chain re-linked around it"
    )


def _cut(checkpoint: Checkpoint, walk: _Walk) -> str:
    if walk.last is None:
        return (
            f"the chain is empty, but checkpoint at seq {checkpoint.seq} anchors "
            f"{checkpoint.records} records: the table was emptied (TRUNCATE or DELETE)"
        )
    return (
        f"the chain ends at seq {walk.last.seq} after {walk.records} records, but checkpoint at "
        f"seq {checkpoint.seq} anchors {checkpoint.records}: its tail was cut off"
    )


_LINK = "previous-hash link broken: a row before it was removed or altered"
_CONTENT = "content does not match its hash"
_NOT_CANONICAL = "body is not the canonical JSON the store writes: it was written around the store"


def _row_problem(row: ChainRow, now: datetime | None) -> str | None:
    """Why the store could not have written this row as it stands, or None."""
    if _content_hash(row) != row.row_hash:
        return _CONTENT
    try:
        if canonical_json(json.loads(row.body)) != row.body:
            return _NOT_CANONICAL
    except ValueError:
        return _NOT_CANONICAL
    return _time_problem(row.recorded_at, now)


def _time_problem(recorded_at: str, now: datetime | None) -> str | None:
    try:
        at = datetime.fromisoformat(recorded_at)
    except ValueError:
        return f"recorded_at {recorded_at!r} is not a time: the store never wrote it"
    if at.utcoffset() is None:
        return f"recorded_at {recorded_at!r} has no time zone: the store never wrote it"
    if now is not None and at > now + FUTURE_TOLERANCE:
        return f"recorded_at {recorded_at} is in the future: the store never wrote it"
    return None


def _content_hash(row: ChainRow) -> str:
    return row_hash(row.kind, row.record_id, row.recorded_at, row.body, row.prev_hash)
