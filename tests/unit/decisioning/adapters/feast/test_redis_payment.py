"""When the two-round-trip path applies: one plain Redis, same server and database, no TTL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from feast.infra.online_stores.redis import RedisOnlineStoreConfig

from decisioning.adapters.feast.history import RedisPaymentHistory
from decisioning.adapters.feast.redis_payment import shares_feast_redis

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
