"""One payment's online-store work in two Redis round trips, when the history shares Feast's Redis.

The general path (:class:`~decisioning.adapters.feast.online.OnlineFeatureService` over any
store) spends eleven round trips a payment: the history's WATCH, GET and EXEC, a timestamp read
and a write for each of three pushed views (Feast's write skips a value older than the stored
one), and a read for each of two batch views: about 1.3 ms of CPU and 1.6 ms of wall time here
(docs/benchmarks.md).
Here one pipeline reads the history, the pushed views' timestamps and the batch views; one script
then stores the history and the pushed views, but only if the history is still the one that was
read (else read again). The keys, fields and bytes are Feast's Redis store's own (built with its
helpers, or directly where that is much cheaper: the string entity keys here, the values in
``values.py``; unit tests compare both with Feast's), and the integration tests read them back
with Feast's ``get_online_features``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feast import FeatureView, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key_prefix
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name
from feast.protos.feast.types.Value_pb2 import Value
from feast.protos.feast.types.Value_pb2 import ValueType as SerializedType
from feast.utils import make_tzaware
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from decisioning.adapters.feast.errors import FeatureStoreUnavailable
from decisioning.adapters.feast.history import RedisPaymentHistory, decode_history, encode_history
from decisioning.adapters.feast.materialized import marker_row
from decisioning.adapters.feast.values import _entity_key, _python, scalar_encoder
from decisioning.fraud.activity import CustomerHistory

logger = logging.getLogger(__name__)

_STRING = struct.pack("<I", SerializedType.STRING)  # the type tag Feast writes before a string

# KEYS: the history, then each pushed view's key. ARGV: the SHA-1 of the history as read ('' when
# there was none), the new history, then per pushed view a field count and its field/value pairs.
_STORE_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[1])
local seen = ''
if current then seen = redis.sha1hex(current) end
if seen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local at = 3
for view = 2, #KEYS do
  local count = tonumber(ARGV[at])
  if count > 0 then
    redis.call('HSET', KEYS[view], unpack(ARGV, at + 1, at + 2 * count))
  end
  at = at + 1 + 2 * count
end
return 1
"""


@dataclass(frozen=True)
class _View:
    """A feature view's Redis layout, worked out once: stored name, hash fields, value types."""

    view: FeatureView
    stored_name: str  # with a version suffix when Feast versions views online
    # (name, hash field, its value's stored_scalar chosen by the feature's type)
    features: tuple[tuple[str, bytes, Callable[[Any], tuple[Any, bytes]]], ...]
    entity_names: tuple[str, ...]  # the join keys that make the view's Redis key
    # The join keys in Feast's order (sorted), when every one is a string (else None: Feast's path)
    string_keys: tuple[str, ...] | None
    key_prefix: bytes  # Feast's serialised join keys, what precedes the values in a Redis key

    @property
    def timestamp_field(self) -> str:
        return f"_ts:{self.stored_name}"

    @classmethod
    def of(cls, view: FeatureView, config: RepoConfig) -> _View:
        stored_name = _versioned_fv_name(view, config)
        names = sorted(column.name for column in view.entity_columns)
        strings = all(c.dtype.to_value_type() == ValueType.STRING for c in view.entity_columns)
        version = config.entity_key_serialization_version
        return cls(
            view=view,
            stored_name=stored_name,
            features=tuple(
                (f.name, _mmh3(f"{stored_name}:{f.name}"), scalar_encoder(f.dtype.to_value_type()))
                for f in view.features
            ),
            entity_names=tuple(column.name for column in view.entity_columns),
            string_keys=tuple(names) if strings and version == 3 else None,
            key_prefix=serialize_entity_key_prefix(names, version),
        )


class RedisPaymentRoundTrips:
    """Push one payment and read its batch features in two round trips (module docstring)."""

    def __init__(
        self,
        history: RedisPaymentHistory,
        config: RepoConfig,
        pushed: list[FeatureView],
        stored: list[FeatureView],
    ) -> None:
        self._history = history
        self._config = config
        self._pushed = [_View.of(view, config) for view in pushed]
        self._stored = [_View.of(view, config) for view in stored]
        self._store_if_unchanged = history.client.register_script(_STORE_IF_UNCHANGED)
        self._markers = [self._key(view, marker_row(view.view)) for view in self._stored]
        self._project = config.project.encode()

    def push_and_read(
        self,
        customer_id: str,
        entities: Mapping[str, Any],
        at: datetime,
        record: Callable[[CustomerHistory], dict[str, Any]],
    ) -> dict[str, Any]:
        """Record the payment in the history and the pushed views; return every view's values."""
        values, push, _, _ = self.read(customer_id, entities, at, record)
        push()
        return values

    def read(
        self,
        customer_id: str,
        entities: Mapping[str, Any],
        at: datetime,
        record: Callable[[CustomerHistory], dict[str, Any]],
    ) -> tuple[dict[str, Any], Callable[[], None], dict[str, datetime | None], set[str]]:
        """Every view's values as if the payment were recorded, the push that records it, when
        each batch view's row was written (None: the store has no row for the payment), and the
        batch views whose marker row the store holds (``decisioning.adapters.feast.materialized``).

        Nothing is written until the push is called (the decision service calls it once the
        decision is in the audit store), so a payment never decided leaves no trace. ``record``
        adds the payment to a history and returns the activity row the pushed views store; the
        push runs it again on the history as it then is, if another payment landed meanwhile.
        """
        import redis

        history_key = self._history.key(customer_id)
        pushed_keys = [self._payment_key(view, entities) for view in self._pushed]
        stored_keys = [self._payment_key(view, entities) for view in self._stored]
        written = _timestamp(at)

        def read_history(with_stored: bool) -> tuple[bytes | None, list[Any], list[Any]]:
            commands: list[tuple[Any, ...]] = [("GET", history_key)]
            for view, key in zip(self._pushed, pushed_keys, strict=True):
                commands.append(("HGET", key, view.timestamp_field))
            for view, key, marker in zip(self._stored, stored_keys, self._markers, strict=True):
                if with_stored:
                    fields = [field for _, field, _ in view.features]
                    commands.append(("HMGET", key, *fields, view.timestamp_field))
                    commands.append(("HGET", marker, view.timestamp_field))
            raw, *replies = round_trip(self._history.client, commands)
            return raw, replies[: len(self._pushed)], replies[len(self._pushed) :]

        def prepare(raw: bytes | None, stamps: list[Any]) -> tuple[dict[str, Any], list[Any]]:
            history = decode_history(raw)
            row = record(history)
            values, arguments = self._pushed_values(row, stamps, written)
            seen = hashlib.sha1(raw).hexdigest() if raw is not None else ""
            return values, [seen, encode_history(history), *arguments]

        try:
            raw, stamps, stored = read_history(with_stored=True)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise FeatureStoreUnavailable(f"online store in Redis unreachable: {exc}") from exc
        values, script_args = prepare(raw, stamps)
        written_at: dict[str, datetime | None] = {}
        marked: set[str] = set()
        for view, reply, marker in zip(self._stored, stored[::2], stored[1::2], strict=True):
            values.update(self._stored_values(view, reply[:-1]))
            written_at[view.view.name] = _datetime(reply[-1])
            if marker is not None:
                marked.add(view.view.name)

        def push() -> None:
            arguments = script_args
            try:
                while not run_script(
                    self._history.client,
                    self._store_if_unchanged,
                    [history_key, *pushed_keys],
                    arguments,
                ):
                    logger.debug("concurrent update of %s; reading again", customer_id)
                    arguments = prepare(*read_history(with_stored=False)[:2])[1]
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise FeatureStoreUnavailable(f"online store in Redis unreachable: {exc}") from exc

        return values, push, written_at, marked

    def _pushed_values(
        self, row: Mapping[str, Any], stored_timestamps: list[Any], written: Timestamp
    ) -> tuple[dict[str, Any], list[Any]]:
        """The pushed views' values for this payment, and the script's arguments that store them.

        A view whose stored value is as new as this payment or newer keeps it, as Feast's own
        write decides; the payment still gets its values (they come from the history).
        """
        values: dict[str, Any] = {}
        arguments: list[Any] = []
        stamp = written.SerializeToString()
        for view, stored in zip(self._pushed, stored_timestamps, strict=True):
            fields: list[Any] = []
            for name, field, encode in view.features:
                values[name], data = encode(row.get(name))
                fields += [field, data]
            if _newer(written, stored):
                arguments += [len(fields) // 2 + 1, view.timestamp_field, stamp, *fields]
            else:
                arguments.append(0)
        return values, arguments

    def _stored_values(self, view: _View, reply: list[bytes | None]) -> dict[str, Any]:
        out = {}
        for (name, _, _), raw in zip(view.features, reply, strict=True):
            proto = Value()
            if raw:
                proto.ParseFromString(raw)
            out[name] = _python(proto)
        return out

    def _payment_key(self, view: _View, entities: Mapping[str, Any]) -> bytes:
        """The view's Redis key for a payment's entities: Feast's bytes (``_redis_key``), built
        directly for string keys (2 µs where Feast's protos take ~15 µs; a test compares them)."""
        names = view.string_keys
        if names is None or not all(isinstance(entities[name], str) for name in names):
            return self._key(view, entities)
        values = [_sized_string(entities[name]) for name in names]
        return b"".join([view.key_prefix, *values, self._project])

    def _key(self, view: _View, entities: Mapping[str, Any]) -> bytes:
        return _redis_key(
            self._config.project,
            _entity_key(view.view, entities),
            entity_key_serialization_version=self._config.entity_key_serialization_version,
        )


def round_trip(client: Any, commands: Sequence[tuple[Any, ...]], retry: bool = True) -> list[Any]:
    """The replies to ``commands`` sent together on one of the client's pooled connections.

    redis-py's own packing and reply parser, without its pipeline object, retry wrapper and
    per-command callbacks (about 25 µs a round trip here, issue 19). A connection that broke is
    dropped; with ``retry`` the commands go once more on a fresh one (reads: nothing to undo). A
    timeout is not retried: a server that stopped answering would cost a second wait. An error
    reply is raised once every reply was read, so the connection stays in step.
    """
    import redis

    pool = client.connection_pool
    spare = _Spare.of(pool)
    while True:
        connection = spare.take(pool)
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            spare.drop(pool, connection)
            if not retry or isinstance(exc, redis.TimeoutError):
                raise
            retry = False
            continue
        except BaseException:
            spare.drop(pool, connection)  # interrupted mid-reply: its stream is out of step
            raise
        spare.give_back(pool, connection)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies


class _Spare:
    """The connections ``round_trip`` took from a redis-py pool, kept between its uses.

    redis-py's pool checks each connection out and in under its lock, with its deprecated-argument
    check, observability counters and release event: 9.7 us a round trip in a loop here, two a
    payment; taken from this list, 3.0 us (issue 19). A connection is checked as the pool checks
    it before each use: connected, and nothing to read (unread data or the server's close: it is
    connected again); one that broke, or whose check was interrupted, goes back to the pool
    closed. The connections stay checked out of the pool, so closing the client
    (``ConnectionPool.disconnect``) closes them too. A forked process starts a list of its own and
    leaves its parent's connections alone, as the pool does.

    The list is kept on the pool itself, not in a table keyed by it: the pool, its list and the
    connections are freed together (a table's value would keep its key alive). Only a plain,
    unbounded pool keeps any: a bounded one (``max_connections``) would be starved of the
    connections kept here, and RESP3 push handling or a client-side cache make the pool's own
    checks differ from these.
    """

    def __init__(self, pool: Any) -> None:
        import redis

        self._pid = os.getpid()
        self._connections: list[Any] = []
        self._keep = (
            type(pool) is redis.ConnectionPool
            and pool.max_connections >= 2**31
            and pool.cache is None
            and not pool.maint_notifications_enabled()
        )

    @classmethod
    def of(cls, pool: Any) -> _Spare:
        spare = pool.__dict__.get("_round_trip_spare")
        if spare is None or spare._pid != os.getpid():
            with _SPARE_LOCK:
                spare = pool.__dict__.get("_round_trip_spare")
                if spare is None or spare._pid != os.getpid():
                    spare = pool.__dict__["_round_trip_spare"] = cls(pool)
        return spare

    def take(self, pool: Any) -> Any:
        """A connection ready to send on: a spare one, else a new one from the pool."""
        import redis

        try:
            connection = self._connections.pop()  # atomic: each goes to one thread
        except IndexError:
            return pool.get_connection()  # checked by the pool
        try:  # the pool's own checks, in its order
            connection.connect()
            try:
                if connection.can_read():
                    raise redis.ConnectionError("connection has data")
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                connection.disconnect()
                connection.connect()
                if connection.can_read():
                    raise redis.ConnectionError("connection not ready") from None
        except BaseException:
            self.drop(pool, connection)  # never lost to the pool, whatever interrupted the check
            raise
        return connection

    def give_back(self, pool: Any, connection: Any) -> None:
        """A connection in step, kept for the next round trip (or released to a pool that
        does not keep any)."""
        if self._keep and self._pid == os.getpid():
            self._connections.append(connection)
        else:
            pool.release(connection)

    def drop(self, pool: Any, connection: Any) -> None:
        """A connection that broke or is out of step: closed, and back to the pool."""
        connection.disconnect()
        pool.release(connection)


_SPARE_LOCK = threading.Lock()


def _new_spare_lock() -> None:
    """A forked child's own lock: one another thread of its parent held at the fork would never
    be released in the child (the thread is not there), and its first round trip would hang."""
    global _SPARE_LOCK
    _SPARE_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere nothing forks
    os.register_at_fork(after_in_child=_new_spare_lock)


def run_script(client: Any, script: Any, keys: Sequence[Any], arguments: Sequence[Any]) -> Any:
    """``EVALSHA`` of a registered script in one round trip, loading it first if the server
    lost it (a restart). Not retried on a broken connection: the script may have run."""
    import redis

    evalsha = ("EVALSHA", script.sha, len(keys), *keys, *arguments)
    try:
        return round_trip(client, [evalsha], retry=False)[0]
    except redis.exceptions.NoScriptError:
        script.sha = client.script_load(script.script)
        return round_trip(client, [("EVALSHA", script.sha, *evalsha[2:])], retry=False)[0]


def shares_feast_redis(history: RedisPaymentHistory, config: RepoConfig) -> bool:
    """Whether Feast's online store is a plain Redis on the history's server and database.

    Only then can one script store both atomically; a cluster, a sentinel, another server (or the
    same one under another name: hosts are compared as written) or expiring keys
    (``key_ttl_seconds``) keep the general path. The script writes Feast's keys with the
    history's connection, so its Redis user needs write access to both. Feast's ``skip_dedup``
    is not honoured here: an older payment never replaces newer stored values.
    """
    store = config.online_store
    if getattr(store, "type", None) != "redis" or getattr(store, "key_ttl_seconds", None):
        return False
    if getattr(store, "redis_type", None) != RedisType.redis:
        return False
    nodes, params = RedisOnlineStore._parse_connection_string(store.connection_string)
    history_side = history.client.connection_pool.connection_kwargs
    return (
        len(nodes) == 1
        and str(nodes[0].get("host")) == str(history_side.get("host"))
        and int(nodes[0].get("port", 6379)) == int(history_side.get("port", 6379))
        and int(params.get("db", 0)) == int(history_side.get("db", 0))
    )


def _sized_string(value: str) -> bytes:
    """A string entity value as ``serialize_entity_key`` writes it: type, length, UTF-8."""
    data = value.encode()
    return _STRING + struct.pack("<I", len(data)) + data


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(make_tzaware(at))  # as Feast's own write does
    return stamp


def _datetime(stamp: bytes | None) -> datetime | None:
    """When a view's row was written; None when there is no row. A row stamped at the epoch
    (static attributes) is stored as empty bytes, which is a row, not its absence."""
    if stamp is None:
        return None
    written = Timestamp()
    written.ParseFromString(stamp)
    return written.ToDatetime(tzinfo=UTC)


def _newer(written: Timestamp, stored: bytes | None) -> bool:
    if not stored:
        return True
    previous = Timestamp()
    previous.ParseFromString(stored)
    return (written.seconds, written.nanos) > (previous.seconds, previous.nanos)
