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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from decisioning.adapters.audit.anchor import open_anchor
from decisioning.adapters.audit.chain import (
    GENESIS,
    AnchoredReport,
    ChainReport,
    ChainRow,
    row_hash,
    verify_rows,
)
from decisioning.adapters.audit.checkpoint import ChainHead, Checkpoint
from decisioning.adapters.audit.checkpoint_process import CheckpointProcess
from decisioning.adapters.audit.checkpointer import BackgroundCheckpointer
from decisioning.adapters.audit.keys import load_signing_key
from decisioning.adapters.audit.postgres_append import CHAIN_LOCK, NewRow, PostgresAppender
from decisioning.adapters.audit.postgres_append import UNREACHABLE as _PG_UNREACHABLE
from decisioning.adapters.audit.roles import AuditRoles
from decisioning.adapters.audit.schema import AuditRow
from decisioning.adapters.audit.writer import GroupCommitWriter, PendingAppend
from decisioning.core.decision import canonical_json
from decisioning.core.errors import AuditError, AuditUnavailable
from decisioning.core.events import utc_now
from decisioning.settings import AuditAnchorSettings, AuditSettings

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_INSUFFICIENT_PRIVILEGE = "42501"
_PG_CONNECT_TIMEOUT_S = 5  # an unreachable server fails the decision fast instead of hanging it
# The server could not be reached, the connection broke, or no pooled connection came free.
_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout, *_PG_UNREACHABLE)
_TABLE = AuditRow.__tablename__
_INSERTED = ("record_id", "kind", "recorded_at", "body", "prev_hash", "row_hash")
_HEAD_SQL = f"SELECT row_hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1"
_GET_SQL = (
    f"SELECT seq, record_id, kind, recorded_at, body, prev_hash, row_hash FROM {_TABLE} "
    "WHERE record_id ="
)
_ROWS_SQL = (
    f"SELECT seq, record_id, kind, recorded_at, body, prev_hash, row_hash FROM {_TABLE} "
    "WHERE seq >= {marker} AND seq <= {marker} ORDER BY seq LIMIT {batch}"
)
# The longest kind and record id the table's columns hold.
_LONGEST = {
    name: AuditRow.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in ("kind", "record_id")
}
# The lowest 64-bit integer: a walk "from the start" reads every row, whatever seq it was given.
_LOWEST_SEQ = -(2**63)
_HIGHEST_SEQ = 2**63 - 1


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


class AuditStore:
    """The one way to write and read the audit trail."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # PostgreSQL appends in one round trip on a held connection (postgres_append.py).
        on_postgres = engine.dialect.name == "postgresql"
        self._postgres = PostgresAppender(engine) if on_postgres else None
        self._writer: GroupCommitWriter[AuditRecord] = GroupCommitWriter(self._commit_batch)
        self._checkpointer: BackgroundCheckpointer | None = None
        self._on_close: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditStore:
        """Open the profile's store, checkpointing in the background when the profile says so.

        Without a signing key the store still appends (decisions go on), says so once, and
        ``riskctl audit verify`` reports the records left unanchored. The background checkpoints
        take an anchor's first checkpoint only over a chain this process saw empty (ADR 0009), and
        run in a child process (``checkpoint_process.py``) so their walk never holds this one.
        """
        store = cls.open(settings.url)
        anchor_settings = settings.anchor
        if not anchor_settings.in_service:
            return store
        try:
            load_signing_key(anchor_settings)
            may_begin = store.head() is None and not open_anchor(anchor_settings).read()
        except AuditError as exc:
            logger.warning("audit checkpoints are off in this process: %s", exc)
            return store
        process = CheckpointProcess(settings.url, anchor_settings, may_begin)
        store.checkpoint_in_background(process.take, anchor_settings, on_close=process.close)
        return store

    def checkpoint_in_background(
        self,
        take: Callable[[], object],
        settings: AuditAnchorSettings,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """Call ``take`` on a thread of its own at the profile's cadence, and once more on close."""
        self._checkpointer = BackgroundCheckpointer(
            take, every_records=settings.every_records, every_seconds=settings.every_seconds
        )
        self._on_close = on_close
        self._checkpointer.start()

    @classmethod
    def open(cls, url: str, roles: AuditRoles | None = None) -> AuditStore:
        """Connect and bring the schema to the latest migration.

        Connected as the service role, the schema must already be at the latest migration: that
        role may not change it, and opening then fails with a message naming the owner's command.
        """
        engine = _engine(url)
        try:
            with engine.begin() as connection:
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.attributes["connection"] = connection
                config.attributes["audit_roles"] = roles or AuditRoles()
                command.upgrade(config, "head")
        except ProgrammingError as exc:
            engine.dispose()
            if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise AuditError(
                f"the audit schema at {make_url(url).render_as_string()} is behind the code and "
                "this role may not migrate it: run `riskctl audit migrate` (as the owner role) "
                f"[{str(exc.orig).strip()}]"
            ) from exc
        return cls(engine)

    @classmethod
    def open_existing(cls, url: str) -> AuditStore:
        """Connect to a store that must already exist, creating and migrating nothing.

        What ``riskctl audit verify`` reads through: checking a trail must never make one, so a
        missing database or table raises ``AuditError`` naming what is missing.
        """
        parsed = make_url(url)
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and (
            not database or database == ":memory:" or not Path(database).is_file()
        ):
            raise AuditError(f"no audit database at {parsed.render_as_string()}")
        engine = _engine(url)
        try:
            with engine.connect() as connection:
                present = inspect(connection).has_table(_TABLE)
        except _UNREACHABLE as exc:
            engine.dispose()
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditError(f"cannot open the audit database {parsed!s}: {cause}") from exc
        if not present:
            engine.dispose()
            raise AuditError(f"the audit database {parsed!s} has no {_TABLE} table")
        return cls(engine)

    def close(self) -> None:
        self._writer.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._on_close is not None:
            self._on_close()
        if self._postgres is not None:
            self._postgres.close()
        self._engine.dispose()

    def append(
        self, kind: str, record_id: str, body: dict[str, Any], *, text: str | None = None
    ) -> AuditRecord:
        """Add one record at the head of the chain; returns only once the database committed it.

        ``text``: the body's canonical JSON, when the caller built it already (the engine builds
        a decision's from its parts, ``decision_record_text``); it must equal
        ``canonical_json(body)``, which is what is stored and hashed otherwise.

        Raises ``AuditUnavailable`` when the database cannot be reached or the connection breaks
        before the commit is confirmed (the row may then exist, but nobody was told it does).
        """
        for name, value in (("kind", kind), ("record_id", record_id)):
            if len(value) > _LONGEST[name]:  # a database may cut it, and the hash would not match
                raise ValueError(f"an audit {name} holds at most {_LONGEST[name]} characters")
        pending: PendingAppend[AuditRecord] = PendingAppend(
            kind,
            record_id,
            utc_now().isoformat(),
            body,
            canonical_json(body) if text is None else text,
        )
        record = self._writer.submit(pending)
        logger.debug("audit append kind=%s record_id=%s seq=%d", kind, record_id, record.seq)
        return record

    def _commit_batch(self, batch: Sequence[PendingAppend[AuditRecord]]) -> list[AuditRecord]:
        """Chain and insert the batch in one transaction; every record or none."""
        try:
            if self._postgres is not None:
                records = _append_on_postgres(self._postgres, batch)
            else:
                with self._engine.begin() as connection:
                    records = _insert_at_head(connection, batch)
        except _UNREACHABLE as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            ids = ", ".join(pending.record_id for pending in batch)
            logger.error("audit append failed for %s: %s", ids, cause)
            raise AuditUnavailable(f"the audit store did not record {ids}: {cause}") from exc
        if self._checkpointer is not None:
            self._checkpointer.appended(len(records))
        return records

    def get(self, record_id: str) -> AuditRecord | None:
        """One record by its id. On PostgreSQL it is read on a connection the store holds for
        reads: a repeat's stored decision and an explanation's link read it on the request path,
        where a pooled connection's checkout and pre-ping cost more than the read (0.35 -> 0.08
        ms of CPU)."""
        if self._postgres is not None:
            found = self._postgres.read(f"{_GET_SQL} %s", (record_id,))
            return _record(found[0]) if found else None
        with self._engine.connect() as connection:
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            row = connection.exec_driver_sql(f"{_GET_SQL} {marker}", (record_id,)).first()
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

    def rows(
        self, from_seq: int | None = None, up_to: int | None = None, batch: int = 5000
    ) -> Iterator[ChainRow]:
        """Rows as stored, in chain order from ``from_seq`` (else the very first, whatever its
        seq) up to ``up_to`` (else the last), streamed in batches.

        Plain SQL: verification hashes the stored text, and this is its whole read path.
        """
        next_seq = _LOWEST_SEQ if from_seq is None else from_seq
        last_seq = _HIGHEST_SEQ if up_to is None else up_to
        while True:
            with self._engine.connect() as connection:
                marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
                statement = _ROWS_SQL.format(marker=marker, batch=int(batch))
                rows = connection.exec_driver_sql(statement, (next_seq, last_seq)).all()
            if not rows:
                return
            for row in rows:
                yield ChainRow(*row)
            next_seq = rows[-1][0] + 1

    def head(self) -> ChainHead | None:
        """The last row and how many rows the table holds up to it, in one statement.

        One statement, so one snapshot: at PostgreSQL's READ COMMITTED two statements see two, and
        a record committed between them made the count one more than the chain it was held to.
        """
        with self._engine.connect() as connection:
            last = connection.exec_driver_sql(
                f"SELECT h.seq, h.row_hash, (SELECT count(*) FROM {_TABLE} c WHERE c.seq <= h.seq) "
                f"FROM {_TABLE} h ORDER BY h.seq DESC LIMIT 1"
            ).first()
        if last is None:
            return None
        return ChainHead(seq=last[0], row_hash=last[1], records=int(last[2]))

    def verify(self) -> ChainReport:
        """Recompute every hash in order; name the first row that does not match."""
        return verify_rows(self.rows()).chain

    def verify_anchored(
        self,
        checkpoints: Sequence[Checkpoint],
        start: Checkpoint | None = None,
        now: datetime | None = None,
    ) -> AnchoredReport:
        """The chain checked against signed checkpoints, whole or from the ``start`` checkpoint.

        The chain is the one the head names as the walk begins (rows appended meanwhile wait for
        the next verification). A whole walk must meet as many rows as the table holds: a row it
        did not meet is a row outside the chain.
        """
        if start is not None:  # no count: it would read the whole table to check a tail
            with self._engine.connect() as connection:
                last = connection.exec_driver_sql(f"SELECT max(seq) FROM {_TABLE}").scalar()
            return verify_rows(self.rows(from_seq=start.seq, up_to=last), checkpoints, start, now)
        head = self.head()
        if head is None:
            return verify_rows((), checkpoints, start, now)
        report = verify_rows(self.rows(up_to=head.seq), checkpoints, start, now)
        walked = report.head.records if report.head is not None else 0
        if not report.broken and walked != head.records:
            outside = (
                f"the table holds {head.records} records up to seq {head.seq}, the chain "
                f"{walked}: rows outside the chain were written around the store"
            )
            return replace(report, problems=(*report.problems, outside))
        return report


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
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
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


def _append_on_postgres(
    appender: PostgresAppender, batch: Sequence[PendingAppend[AuditRecord]]
) -> list[AuditRecord]:
    """The batch appended in one statement, chained in the database onto its head."""
    rows = [NewRow(p.record_id, p.kind, p.recorded_at, p.body_text) for p in batch]
    # RETURNING's order is not promised: the rows are matched by their record ids.
    by_id = {row.record_id: row for row in appender.append(rows)}
    appended = [by_id[p.record_id] for p in batch]
    if any(later.seq <= earlier.seq for earlier, later in pairwise(appended)):
        # Committed already, so this cannot undo it: the lock and the recursive chain number the
        # rows in order, and a broken order is what verification would name. Said, not hidden.
        raise ChainOrderError(f"rows {[(r.seq, r.record_id) for r in appended]} out of order")
    return [
        AuditRecord(a.seq, a.record_id, p.kind, p.recorded_at, p.body, a.prev_hash, a.row_hash)
        for a, p in zip(appended, batch, strict=True)
    ]


def _record(row: Sequence[Any]) -> AuditRecord:
    """A record from a row in ``AuditRow``'s column order."""
    seq, record_id, kind, recorded_at, body, prev_hash, digest = row
    return AuditRecord(seq, record_id, kind, recorded_at, json.loads(body), prev_hash, digest)


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
