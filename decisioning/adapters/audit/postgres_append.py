"""Appends on PostgreSQL in one round trip, on a connection the store holds.

The general path (``store._insert_at_head``) takes the chain lock, reads the head, inserts the rows
it chained in Python and commits: five round trips through SQLAlchemy's pool, its pre-ping
included, about 0.7 ms of CPU and 1.2 ms of wall time an append here (docs/benchmarks.md, issue
19). Here the same transaction is one query string sent once: ``BEGIN`` at READ COMMITTED, the
chain lock, then one ``INSERT`` that reads the head (its snapshot follows the lock, so the head is
the latest) and finishes each row's hash in the database from the text around its ``prev_hash``
(``chain.row_material``), then ``COMMIT``: about 0.2 ms of CPU and 0.6 ms. The values go in as
literals quoted by libpq (``PQescapeLiteral``): a query string of several statements takes no
parameters, and no prepared statement is left on a pooled server connection.

Nothing here relies on the table's trigger, the server's default isolation or a session setting:
the lock is taken first and the isolation level named in every transaction. The trigger (migration
0003) still refuses a row off the head, as a second guard.

A connection that broke is replaced. If the transaction may have reached the server, the batch's
record ids are looked up on the new connection: all there with this batch's content, it committed;
none, it did not, and it goes once more. Any other error the server reports (a timeout, a refused
row) rolls back and is raised at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import generators, pq
from sqlalchemy import Engine

from decisioning.adapters.audit.chain import GENESIS, row_material
from decisioning.adapters.audit.schema import AuditRow

logger = logging.getLogger(__name__)

CHAIN_LOCK = 0x5249534B  # "RISK": the advisory lock id the writers and the trigger share
# A connection that broke or a server that cannot be reached (psycopg raises both as these).
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)
# The server ended the session (admin shutdown, crash, restart) or the connection failed.
_SESSION_ENDED = ("57P01", "57P02", "57P03")
_TABLE = AuditRow.__tablename__
CLOSE_WAIT_S = 10.0  # how long closing waits for an append or read in flight before cancelling it
LOCK_WAIT = "10s"  # an append waiting longer for the chain lock is refused, not left hanging

# An append is answered only once its commit is on disk, whatever a database's, role's or
# session's default says: `off` (an operator's `ALTER DATABASE ... SET synchronous_commit = off`
# would make a lost record possible after an answered decision) is raised to `on` for the
# transaction; every other level flushes locally and is kept (`remote_apply` for replicas, say).
# pg_catalog's functions and operator by name: a function or operator of the same name earlier in
# a session's search path (an owner's `public.current_setting`, say) would make it a no-op.
_APPEND = f"""BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_catalog.set_config('synchronous_commit', 'on', true)
 WHERE pg_catalog.current_setting('synchronous_commit') OPERATOR(pg_catalog.=) 'off';
SET LOCAL lock_timeout = '{LOCK_WAIT}';
SELECT pg_advisory_xact_lock({CHAIN_LOCK});
WITH RECURSIVE
  batch (n, record_id, kind, recorded_at, body, prefix, suffix) AS (VALUES {{rows}}),
  chain (n, prev_hash, row_hash) AS (
    SELECT b.n, head.prev,
           encode(sha256(convert_to(b.prefix || to_json(head.prev)::text || b.suffix, 'UTF8')),
                  'hex')
      FROM batch b,
           (SELECT coalesce((SELECT row_hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1),
                            '{GENESIS}') AS prev) head
     WHERE b.n = 1
    UNION ALL
    SELECT b.n, c.row_hash,
           encode(sha256(convert_to(b.prefix || to_json(c.row_hash)::text || b.suffix, 'UTF8')),
                  'hex')
      FROM chain c JOIN batch b ON b.n = c.n + 1)
INSERT INTO {_TABLE} (record_id, kind, recorded_at, body, prev_hash, row_hash)
SELECT b.record_id, b.kind, b.recorded_at, b.body, c.prev_hash, c.row_hash
  FROM batch b JOIN chain c USING (n) ORDER BY n
RETURNING seq, record_id, prev_hash, row_hash;
COMMIT"""
_APPEND_BEFORE_ROWS, _APPEND_AFTER_ROWS = _APPEND.encode().split(b"{rows}")
_STORED = (
    f"SELECT seq, record_id, prev_hash, row_hash, kind, recorded_at, body FROM {_TABLE} "
    "WHERE record_id = ANY(%s) ORDER BY seq"
)


class NewRow(NamedTuple):
    """A row to append: what the caller gave."""

    record_id: str
    kind: str
    recorded_at: str
    body: str


class Appended(NamedTuple):
    """A row as the database numbered and chained it."""

    seq: int
    record_id: str
    prev_hash: str
    row_hash: str


class _Held:
    """One connection from the engine, detached from its pool and kept; one user at a time.

    A connection interrupted mid-query (a signal, a timeout raised into the thread) or left in a
    transaction is dropped, as is one inherited across a fork (left open: it is the parent's).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: psycopg.Connection[Any] | None = None
        self._pid = 0
        self.lock = threading.Lock()

    def connection(self) -> psycopg.Connection[Any]:
        current = self._connection
        if current is not None and not current.closed and self._pid == os.getpid():
            return current
        if self._pid and self._pid != os.getpid():
            # A forked child: the engine's pool is the parent's too. SQLAlchemy's remedy: a new
            # pool here, the parent's connections left open for the parent.
            self._engine.dispose(close=False)
            self._connection = None
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        if not isinstance(connection, psycopg.Connection):
            pooled.close()
            raise TypeError(f"the audit engine's driver is not psycopg 3: {type(connection)}")
        pooled.detach()  # held from now on; closed here
        connection.autocommit = True  # every transaction here is written out in its query
        connection.prepare_threshold = None  # nothing prepared: safe behind a pooling proxy
        self._connection, self._pid = connection, os.getpid()
        return connection

    def drop_unless_idle(self) -> None:
        """After an interruption: keep the connection only if it is idle, out of a transaction."""
        if not self._idle():
            self.discard()

    def _idle(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed or self._pid != os.getpid():
            return False
        return connection.info.transaction_status == _IDLE

    def discard(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def cancel(self) -> None:
        """Ask the server to cancel what runs on the connection (safe from another thread)."""
        connection = self._connection
        if connection is not None and not connection.closed and self._pid == os.getpid():
            connection.cancel_safe(timeout=CLOSE_WAIT_S)


class PostgresAppender:
    """Appends batches of rows onto the chain (one caller at a time: the group-commit leader),
    and reads records on a second connection, so a read never waits for an append.

    Both connections come from the store's SQLAlchemy engine (same hosts, credentials and
    connect arguments), detached from the pool and kept.
    """

    def __init__(self, engine: Engine) -> None:
        self._appends = _Held(engine)
        self._reads = _Held(engine)

    def append(self, rows: Sequence[NewRow]) -> list[Appended]:
        """Insert ``rows`` on the head, in order, committed.

        Raises ``UNREACHABLE`` errors when the server cannot be reached or did not confirm, and
        what the server refused (a repeated record id, a timeout) as psycopg raised it.
        """
        held = self._appends
        with held.lock:
            try:
                return self._append(held, rows)
            except BaseException:
                held.drop_unless_idle()
                raise

    def read(self, statement: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a read, once more on a new connection if the held one broke (a read can
        be repeated)."""
        held = self._reads
        with held.lock:
            try:
                connection = held.connection()
                try:
                    return connection.execute(statement, parameters).fetchall()
                except psycopg.Error as exc:
                    if not _connection_lost(connection, exc):
                        raise
                    held.discard()
                return held.connection().execute(statement, parameters).fetchall()
            except BaseException:
                held.drop_unless_idle()
                raise

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Close both connections, cancelling what still runs on them after ``timeout``."""
        for held in (self._appends, self._reads):
            if not held.lock.acquire(timeout=timeout):
                held.cancel()
                if not held.lock.acquire(timeout=timeout):
                    logger.warning("an audit connection is still busy; left to the process's end")
                    continue
            try:
                held.discard()
            finally:
                held.lock.release()

    def _append(self, held: _Held, rows: Sequence[NewRow]) -> list[Appended]:
        connection = held.connection()  # unreachable here: nothing was sent
        try:
            return _send(connection, _query(connection, rows))
        except psycopg.Error as exc:
            if not _connection_lost(connection, exc):
                raise
            logger.warning("audit connection lost (%s); reconnecting", type(exc).__name__)
            held.discard()
        connection = held.connection()
        try:
            committed = _stored(connection, rows)
            if committed is not None:
                return committed
            try:
                return _send(connection, _query(connection, rows))
            except psycopg.IntegrityError:
                # The lost transaction may have committed after the lookup (the server was
                # still running it): then it is ours, and stored once.
                committed = _stored(connection, rows)
                if committed is None:
                    raise
                return committed
        except psycopg.Error as exc:
            if _connection_lost(connection, exc):
                held.discard()
            raise


def _send(connection: psycopg.Connection[Any], query: bytes) -> list[Appended]:
    """Send the append's query string and read its results straight from libpq.

    psycopg's cursor (its query object, column descriptions and row loaders) cost ~40 us of CPU
    an append for four columns of text this module reads itself: the query goes out with
    ``send_query`` under the connection's own lock and psycopg's ``execute`` generator and wait
    gather every statement's result, as ``Cursor.execute`` does; a failed statement raises the
    error psycopg's cursor would (``error_from_result``). These are psycopg's internals, not its
    documented API: tests/integration/test_audit_postgres.py holds them at each upgrade of the lock.
    """
    pgconn = connection.pgconn
    try:
        with connection.lock:
            pgconn.send_query(query)
            results = connection.wait(generators.execute(pgconn))
        failed = next((r for r in results if r.status == _FATAL_ERROR), None)
        if failed is not None:
            raise psycopg.errors.error_from_result(failed, encoding=connection.info.encoding)
    except psycopg.Error:
        if not connection.closed and connection.info.transaction_status != _IDLE:
            connection.execute("ROLLBACK")  # the statements after the error were skipped
        raise
    width = len(Appended._fields)  # BEGIN, SET and the lock come before the insert's rows
    rows = next((r for r in results if r.status == _TUPLES_OK and r.nfields == width), None)
    if rows is None:
        raise psycopg.ProgrammingError("the append returned no rows")
    encoding = connection.info.encoding
    return [
        Appended(int(_value(rows, n, 0)), *(_value(rows, n, c).decode(encoding) for c in (1, 2, 3)))
        for n in range(rows.ntuples)
    ]


def _value(result: pq.abc.PGresult, row: int, column: int) -> bytes:
    value = result.get_value(row, column)
    if value is None:  # the table's columns are NOT NULL: a null is not this append's answer
        raise psycopg.ProgrammingError("the append returned a null")
    return value


def _stored(connection: psycopg.Connection[Any], rows: Sequence[NewRow]) -> list[Appended] | None:
    """The rows as committed, when the transaction whose answer was lost had committed them;
    None when it had not (then none of them is there: the transaction is all or nothing)."""
    found = connection.execute(_STORED, ([row.record_id for row in rows],)).fetchall()
    by_id = {record[1]: record for record in found}
    ours = [
        by_id[row.record_id]
        for row in rows
        if row.record_id in by_id and by_id[row.record_id][4:] == (row.kind, *row[2:])
    ]
    if len(ours) == len(rows):
        logger.warning("the lost append of %d record(s) had committed", len(rows))
        return [Appended(*record[:4]) for record in ours]
    return None  # not ours: a record id stored before refuses the append again, as it should


_IDLE = pq.TransactionStatus.IDLE
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_TUPLES_OK = pq.ExecStatus.TUPLES_OK


def _connection_lost(connection: psycopg.Connection[Any], error: psycopg.Error) -> bool:
    """Whether the connection is gone (then the transaction's outcome is unknown), rather than
    the server having refused something on a connection that still works."""
    state = error.sqlstate or ""
    return (
        connection.closed
        or connection.broken
        or state.startswith("08")
        or (state in _SESSION_ENDED)
    )


def _query(connection: psycopg.Connection[Any], rows: Sequence[NewRow]) -> bytes:
    """The append's query string, each value quoted by libpq for this connection's encoding and
    settings (``PQescapeLiteral``; 54 -> 20 µs against composing ``sql.Literal``s)."""
    quote = pq.Escaping(connection.pgconn).escape_literal
    encoding = connection.info.encoding
    literals = []
    for n, row in enumerate(rows, start=1):
        prefix, suffix = row_material(row.kind, row.record_id, row.recorded_at, row.body)
        values = [text.encode(encoding) for text in (*row, prefix, suffix)]
        if any(b"\x00" in value for value in values):  # libpq would cut the text there
            raise psycopg.DataError("PostgreSQL text cannot contain NUL (0x00) characters")
        literals.append(b"(%d, %s)" % (n, b", ".join(quote(value) for value in values)))
    return _APPEND_BEFORE_ROWS + b", ".join(literals) + _APPEND_AFTER_ROWS
