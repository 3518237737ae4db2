"""Append to and verify the hash chain. SQLite in the embedded default, PostgreSQL otherwise.

Appends serialise on a database lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL transaction-level
advisory lock), so several worker processes appending at once still build one chain; within a
process, appends waiting at the same time share one transaction (group commit, ``writer.py``).
An append the database did not confirm raises :class:`AuditUnavailable`, so its decision is
never returned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from decisioning.audit.schema import AuditRow
from decisioning.audit.writer import GroupCommitWriter, PendingAppend
from decisioning.decision import canonical_json, sha256_hex
from decisioning.errors import AuditUnavailable

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_CHAIN_LOCK = 0x5249534B  # "RISK": one advisory lock id for the chain
_PG_CONNECT_TIMEOUT_S = 5  # an unreachable server fails the decision fast instead of hanging it
# The server could not be reached, the connection broke, or no pooled connection came free.
_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)
_TABLE = AuditRow.__tablename__
_INSERTED = ("record_id", "kind", "recorded_at", "body", "prev_hash", "row_hash")
_HEAD_SQL = f"SELECT row_hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1"


class ChainOrderError(RuntimeError):
    """A batch's rows were numbered out of chain order: the transaction must not commit."""


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    record_id: str
    kind: str
    recorded_at: str
    body: dict[str, Any]
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


def row_hash(kind: str, record_id: str, recorded_at: str, body: str, prev_hash: str) -> str:
    """The hash a row must carry: over its content and the hash of the row before it."""
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


class AuditStore:
    """The one way to write and read the audit trail."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer: GroupCommitWriter[AuditRecord] = GroupCommitWriter(self._commit_batch)

    @classmethod
    def open(cls, url: str) -> AuditStore:
        """Connect and bring the schema to the latest migration."""
        engine = _engine(url)
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return cls(engine)

    def close(self) -> None:
        self._writer.close()
        self._engine.dispose()

    def append(self, kind: str, record_id: str, body: dict[str, Any]) -> AuditRecord:
        """Add one record at the head of the chain; returns only once the database committed it.

        Raises ``AuditUnavailable`` when the database cannot be reached or the connection breaks
        before the commit is confirmed (the row may then exist, but nobody was told it does).
        """
        pending: PendingAppend[AuditRecord] = PendingAppend(
            kind, record_id, datetime.now(UTC).isoformat(), body, canonical_json(body)
        )
        record = self._writer.submit(pending)
        logger.debug("audit append kind=%s record_id=%s seq=%d", kind, record_id, record.seq)
        return record

    def _commit_batch(self, batch: Sequence[PendingAppend[AuditRecord]]) -> list[AuditRecord]:
        """Chain and insert the batch in one transaction; every record or none."""
        try:
            with self._engine.begin() as connection:
                return _insert_at_head(connection, batch)
        except _UNREACHABLE as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            ids = ", ".join(pending.record_id for pending in batch)
            logger.error("audit append failed for %s: %s", ids, cause)
            raise AuditUnavailable(f"the audit store did not record {ids}: {cause}") from exc

    def get(self, record_id: str) -> AuditRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(AuditRow.__table__).where(AuditRow.record_id == record_id)
            ).first()
        return None if row is None else _record(row)

    def records(self, kind: str | None = None, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in chain order, streamed in batches."""
        last = 0
        while True:
            query = select(AuditRow.__table__).where(AuditRow.seq > last)
            if kind is not None:
                query = query.where(AuditRow.kind == kind)
            with self._engine.connect() as connection:
                rows = connection.execute(query.order_by(AuditRow.seq).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            last = rows[-1].seq

    def verify(self) -> ChainReport:
        """Recompute every hash in order; name the first row that does not match."""
        expected_prev, checked = GENESIS, 0
        for record in self.records():
            body_text = canonical_json(record.body)
            if record.prev_hash != expected_prev:
                reason = "previous-hash link broken: a row before it was removed or altered"
                return ChainReport(checked, record.seq, record.record_id, reason)
            digest = row_hash(
                record.kind, record.record_id, record.recorded_at, body_text, record.prev_hash
            )
            if digest != record.row_hash:
                return ChainReport(
                    checked, record.seq, record.record_id, "content does not match its hash"
                )
            expected_prev = record.row_hash
            checked += 1
        return ChainReport(checked)


def _insert_at_head(
    connection: Connection, batch: Sequence[PendingAppend[AuditRecord]]
) -> list[AuditRecord]:
    """Chain the batch onto the current head in order, holding the chain lock.

    Plain SQL, not compiled statements: this runs once per commit on the decision path, where
    SQLAlchemy's statement compilation and result metadata cost more CPU than the insert itself
    (1.8 ms of CPU an append against 0.8 ms on PostgreSQL, docs/benchmarks.md). The table is
    ``AuditRow``'s.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")
    head = connection.exec_driver_sql(_HEAD_SQL).scalar()
    prev_hash, rows = head or GENESIS, []
    for pending in batch:
        digest = row_hash(
            pending.kind, pending.record_id, pending.recorded_at, pending.body_text, prev_hash
        )
        record = (pending.record_id, pending.kind, pending.recorded_at, pending.body_text)
        rows.append((*record, prev_hash, digest))
        prev_hash = digest
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    values = ", ".join([f"({', '.join([marker] * len(_INSERTED))})"] * len(rows))
    inserted = connection.exec_driver_sql(
        f"INSERT INTO {_TABLE} ({', '.join(_INSERTED)}) VALUES {values} RETURNING seq, record_id",
        tuple(value for row in rows for value in row),
    )
    seq_of = {record_id: seq for seq, record_id in inserted}
    seqs = [seq_of[row[0]] for row in rows]
    if any(later <= earlier for earlier, later in pairwise(seqs)):
        # Neither database promises a multi-row VALUES numbers its rows in order (both do in
        # practice). If one ever does not, roll back: the writer then appends one at a time.
        raise ChainOrderError(f"sequence numbers {seqs} do not follow the chain order")
    return [
        AuditRecord(seq, record_id, kind, recorded_at, pending.body, prev_hash, digest)
        for seq, pending, (record_id, kind, recorded_at, _, prev_hash, digest) in zip(
            seqs, batch, rows, strict=True
        )
    ]


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        record_id=row.record_id,
        kind=row.kind,
        recorded_at=row.recorded_at,
        body=json.loads(row.body),
        prev_hash=row.prev_hash,
        row_hash=row.row_hash,
    )


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        timeout = {"connect_timeout": _PG_CONNECT_TIMEOUT_S} if backend == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=timeout)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    # pysqlite's own transaction handling defers the lock; take the write lock when a transaction
    # begins so two processes can never both read the same chain head.
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
