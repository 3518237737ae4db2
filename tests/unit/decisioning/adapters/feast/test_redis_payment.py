"""When the two-round-trip path applies: one plain Redis, same server and database, no TTL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis
from feast import FeatureView, Field, RepoConfig
from feast.infra.online_stores.helpers import _redis_key
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.types import String
from hypothesis import given
from hypothesis import strategies as st

from decisioning.adapters.feast.history import RedisPaymentHistory
from decisioning.adapters.feast.online import _entity_key
from decisioning.adapters.feast.redis_payment import (
    RedisPaymentRoundTrips,
    round_trip,
    shares_feast_redis,
)
from feature_repo import feature_views

HISTORY = RedisPaymentHistory("redis://127.0.0.1:6379/0", "project")  # connects only when used


def _feast(**online_store: Any) -> Any:
    return SimpleNamespace(online_store=RedisOnlineStoreConfig(**online_store))


def test_the_history_server_and_database_take_the_two_round_trips() -> None:
    assert shares_feast_redis(HISTORY, _feast(connection_string="127.0.0.1:6379"))
    assert shares_feast_redis(HISTORY, _feast(connection_string="127.0.0.1:6379,db=0"))


@pytest.mark.parametrize(
    ("online_store", "why"),
    [
        ({"connection_string": "127.0.0.1:6379,db=1"}, "another database"),
        ({"connection_string": "127.0.0.1:6380"}, "another port"),
        ({"connection_string": "localhost:6379"}, "another name: not proven the same server"),
        ({"connection_string": "127.0.0.1:6379", "key_ttl_seconds": 60}, "expiring keys"),
        ({"connection_string": "127.0.0.1:6379", "redis_type": "redis_cluster"}, "a cluster"),
        ({"connection_string": "127.0.0.1:6379,127.0.0.2:6379"}, "several nodes"),
    ],
)
def test_anything_else_keeps_the_general_path(online_store: dict[str, Any], why: str) -> None:
    assert not shares_feast_redis(HISTORY, _feast(**online_store)), why


# The Redis keys the two round trips read and write are Feast's own bytes.


def _with_entity_columns(view: FeatureView, *join_keys: str) -> FeatureView:
    """The view as ``feast apply`` leaves it: its entity columns inferred (none before)."""
    applied = view.__copy__()
    applied.entity_columns = [Field(name=key, dtype=String) for key in join_keys]
    return applied


VIEWS = [
    _with_entity_columns(feature_views.customer_velocity, "customer_id"),
    # two join keys, given out of order: Feast sorts them by name
    _with_entity_columns(feature_views.customer_terminal_history, "terminal_id", "customer_id"),
    _with_entity_columns(feature_views.terminal_risk, "terminal_id"),
]


def _round_trips() -> RedisPaymentRoundTrips:
    config = RepoConfig(
        project="keys_project",
        registry="unused.db",
        provider="local",
        online_store=RedisOnlineStoreConfig(connection_string="127.0.0.1:6379"),
        entity_key_serialization_version=3,
    )
    return RedisPaymentRoundTrips(HISTORY, config, VIEWS, [])


ROUND_TRIPS = _round_trips()


@given(customer=st.text(), terminal=st.text())
def test_the_payment_keys_are_feasts_own_bytes(customer: str, terminal: str) -> None:
    entities = {"customer_id": customer, "terminal_id": terminal}
    for view in ROUND_TRIPS._pushed:
        assert view.string_keys, view.stored_name  # the fast path is taken, on real keys
        expected = _redis_key("keys_project", _entity_key(view.view, entities), 3)
        assert ROUND_TRIPS._payment_key(view, entities) == expected, view.stored_name


def test_a_key_that_is_not_a_string_is_left_to_feast() -> None:
    view = ROUND_TRIPS._pushed[0]
    entities = {"customer_id": 42, "terminal_id": "T1"}

    expected = _redis_key("keys_project", _entity_key(view.view, entities), 3)

    assert ROUND_TRIPS._payment_key(view, entities) == expected


class _Connection:
    """A pooled connection whose replies fail as told."""

    def __init__(self, error: Exception | None) -> None:
        self.error, self.disconnected = error, False

    def pack_commands(self, commands: Any) -> bytes:
        return b""

    def send_packed_command(self, packed: bytes) -> None:
        return None

    def read_response(self) -> bytes:
        if self.error is not None:
            raise self.error
        return b"value"

    def disconnect(self) -> None:
        self.disconnected = True


class _Pool:
    def __init__(self, *errors: Exception | None) -> None:
        self.connections = [_Connection(error) for error in errors]
        self.taken: list[_Connection] = []

    def get_connection(self) -> _Connection:
        self.taken.append(self.connections[len(self.taken)])
        return self.taken[-1]

    def release(self, connection: _Connection) -> None:
        return None


def test_a_read_on_a_dropped_connection_goes_once_more_on_a_fresh_one() -> None:
    pool = _Pool(redis.ConnectionError("Connection closed by server."), None)

    assert round_trip(SimpleNamespace(connection_pool=pool), [("GET", "k")]) == [b"value"]
    assert len(pool.taken) == 2 and pool.taken[0].disconnected


def test_a_server_that_stopped_answering_is_waited_for_once() -> None:
    # a timeout is not a dropped connection: a second try would only wait as long again
    pool = _Pool(redis.TimeoutError("Timeout reading from socket"), None)

    with pytest.raises(redis.TimeoutError):
        round_trip(SimpleNamespace(connection_pool=pool), [("GET", "k")])
    assert len(pool.taken) == 1 and pool.taken[0].disconnected
