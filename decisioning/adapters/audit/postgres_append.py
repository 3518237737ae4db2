"""Appends on PostgreSQL in one statement and one round trip, on a connection the store holds.

The general path (``store._insert_at_head``) takes the chain lock, reads the head, inserts the rows
it chained in Python and commits: five round trips through SQLAlchemy's pool, its pre-ping
included, about 0.7 ms of CPU and 1.2 ms of wall time an append here (docs/benchmarks.md, issue
19). On PostgreSQL the table's own trigger (migration 0003) already takes the chain lock and
refuses a row that does not link onto the head, reading the head afresh; so one statement, in
autocommit, reads the head, finishes each row's hash in the database from the text around its
``prev_hash`` (``chain.row_material``), inserts and commits: about 0.12 ms of CPU and 0.4 ms.

The statement reads the head in its snapshot, taken before the trigger's lock: when another
writer committed in between, the trigger refuses the first row and nothing is written; the batch
then goes the long way, the lock taken first and the same statement after it in one transaction,
whose snapshot follows the lock. A connection whose table lacks the trigger (dropped or disabled:
the owner's doing) always goes the long way.

A broken connection is replaced. If the statement may have reached the server, the batch's record
ids are looked up on the new connection: all there with this batch's content, it committed;
none, it did not, and it goes once more. Only then is the append reported unreachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg

from decisioning.adapters.audit.chain import GENESIS, row_material
from decisioning.adapters.audit.schema import AuditRow

logger = logging.getLogger(__name__)

CHAIN_LOCK = 0x5249534B  # "RISK": the advisory lock id the writers and the trigger share
HEAD_TRIGGER = "audit_records_on_the_head"  # migration 0003
CONNECT_TIMEOUT_S = 5  # an unreachable server fails the decision fast instead of hanging it
# A broken connection, an unreachable server, or the server shutting the session down.
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)
_TABLE = AuditRow.__tablename__
_OFF_THE_HEAD = "P0001"  # raise_exception: the trigger refused a row that is not on the head

# One row: the head read and the hash finished in the statement (the common case, no arrays).
_APPEND_ONE = f"""
INSERT INTO {_TABLE} (record_id, kind, recorded_at, body, prev_hash, row_hash)
SELECT %(id)s, %(kind)s, %(at)s, %(body)s, head.prev,
       encode(sha256(convert_to(%(prefix)s || to_json(head.prev)::text || %(suffix)s, 'UTF8')),
              'hex')
  FROM (SELECT coalesce((SELECT row_hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1), %(genesis)s)
          AS prev) head
RETURNING seq, record_id, prev_hash, row_hash
"""

# Several rows: each hashed onto the one before it, in the batch's order.
_APPEND_MANY = f"""
WITH RECURSIVE
  batch AS (
    SELECT * FROM unnest(%(ids)s::text[], %(kinds)s::text[], %(ats)s::text[], %(bodies)s::text[],
                         %(prefixes)s::text[], %(suffixes)s::text[]) WITH ORDINALITY
      AS b (record_id, kind, recorded_at, body, prefix, suffix, n)),
  chain (n, prev_hash, row_hash) AS (
    SELECT b.n, head.prev,
           encode(sha256(convert_to(b.prefix || to_json(head.prev)::text || b.suffix, 'UTF8')),
                  'hex')
      FROM batch b,
           (SELECT coalesce((SELECT row_hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1),
                            %(genesis)s) AS prev) head
     WHERE b.n = 1
    UNION ALL
    SELECT b.n, c.row_hash,
           encode(sha256(convert_to(b.prefix || to_json(c.row_hash)::text || b.suffix, 'UTF8')),
                  'hex')
      FROM chain c JOIN batch b ON b.n = c.n + 1)
INSERT INTO {_TABLE} (record_id, kind, recorded_at, body, prev_hash, row_hash)
SELECT b.record_id, b.kind, b.recorded_at, b.body, c.prev_hash, c.row_hash
  FROM batch b JOIN chain c USING (n) ORDER BY n
RETURNING seq, record_id, prev_hash, row_hash
"""

_STORED = (
    f"SELECT seq, record_id, prev_hash, row_hash, kind, recorded_at, body FROM {_TABLE} "
    "WHERE record_id = ANY(%s) ORDER BY seq"
)
_TRIGGER_ENABLED = (
    "SELECT tgenabled IN ('O', 'A') FROM pg_trigger "
    "WHERE tgrelid = to_regclass(%s) AND tgname = %s AND NOT tgisinternal"
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


class PostgresAppender:
    """Appends batches of rows onto the chain; one caller at a time (the group-commit leader)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: psycopg.Connection[Any] | None = None
        self._trigger = False  # whether this connection's table refuses rows off the head
        self._lock = threading.Lock()

    def append(self, rows: Sequence[NewRow]) -> list[Appended]:
        """Insert ``rows`` on the head, in order, committed; raises ``UNREACHABLE`` errors when
        the server cannot be reached or did not confirm, and the database's own refusals (a
        repeated record id) as they are."""
        with self._lock:
            connection = self._connect()  # unreachable here: nothing was sent
            try:
                return self._append(connection, rows)
            except UNREACHABLE as exc:
                logger.warning("audit connection lost (%s); reconnecting", type(exc).__name__)
                self._discard()
            connection = self._connect()
            try:
                committed = self._stored(connection, rows)
                return committed if committed is not None else self._append(connection, rows)
            except UNREACHABLE:
                self._discard()
                raise

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _append(
        self, connection: psycopg.Connection[Any], rows: Sequence[NewRow]
    ) -> list[Appended]:
        statement, parameters = _statement(rows)
        if self._trigger:
            try:
                return _appended(connection.execute(statement, parameters))
            except psycopg.errors.RaiseException as exc:
                if exc.sqlstate != _OFF_THE_HEAD or _TABLE not in str(exc):
                    raise
                logger.debug("another writer appended meanwhile; taking the chain lock first")
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            return _appended(connection.execute(statement, parameters))

    def _stored(
        self, connection: psycopg.Connection[Any], rows: Sequence[NewRow]
    ) -> list[Appended] | None:
        """The rows as committed, when the statement whose answer was lost had committed them;
        None when it had not (then none of them is there: the statement is one transaction)."""
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

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        try:
            # The trigger reads the head afresh only at READ COMMITTED, whatever the server's
            # default: at REPEATABLE READ it would see the statement's stale head and let it by.
            connection.execute("SET default_transaction_isolation TO 'read committed'")
            enabled = connection.execute(_TRIGGER_ENABLED, (_TABLE, HEAD_TRIGGER)).fetchone()
        except BaseException:
            connection.close()
            raise
        self._trigger = bool(enabled and enabled[0])
        if not self._trigger:
            logger.warning(
                "%s has no enabled %s trigger: every append takes the chain lock first",
                _TABLE,
                HEAD_TRIGGER,
            )
        self._connection = connection
        return connection

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _statement(rows: Sequence[NewRow]) -> tuple[str, dict[str, Any]]:
    parameters: dict[str, Any]
    materials = [row_material(row.kind, row.record_id, row.recorded_at, row.body) for row in rows]
    if len(rows) == 1:
        [row], [(prefix, suffix)] = rows, materials
        parameters = {"id": row.record_id, "kind": row.kind, "at": row.recorded_at}
        parameters |= {"body": row.body, "prefix": prefix, "suffix": suffix}
        return _APPEND_ONE, parameters | {"genesis": GENESIS}
    columns = list(zip(*rows, strict=True))
    parameters = {"ids": list(columns[0]), "kinds": list(columns[1]), "ats": list(columns[2])}
    parameters |= {"bodies": list(columns[3]), "prefixes": [m[0] for m in materials]}
    return _APPEND_MANY, parameters | {"suffixes": [m[1] for m in materials], "genesis": GENESIS}


def _appended(cursor: psycopg.Cursor[Any]) -> list[Appended]:
    return [Appended(*record) for record in cursor.fetchall()]


def conninfo_of(url: Any) -> str:
    """libpq's connection string for a SQLAlchemy PostgreSQL URL (any driver name)."""
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))
