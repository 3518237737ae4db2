"""One round trip to Redis on a pooled connection: the replies redis-py's pipeline gives, errors
raised in step, a connection the server dropped replaced, a script the server lost loaded again."""

import uuid
from collections.abc import Iterator

import pytest
import redis

from decisioning.adapters.feast.redis_payment import round_trip, run_script

pytestmark = pytest.mark.integration
URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(URL, socket_timeout=2)
    prefix = f"test_round_trip_{uuid.uuid4().hex[:8]}"
    client.set(f"{prefix}:s", b"value")
    client.hset(f"{prefix}:h", mapping={b"a": b"1", b"b": b"2"})
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    client.delete(f"{prefix}:s", f"{prefix}:h")
    client.close()


def test_the_replies_are_the_pipelines(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    commands = [("GET", f"{p}:s"), ("HGET", f"{p}:h", "a"), ("HMGET", f"{p}:h", "a", "x", "b")]
    with client.pipeline(transaction=False) as pipe:
        pipe.get(f"{p}:s")
        pipe.hget(f"{p}:h", "a")
        pipe.hmget(f"{p}:h", ["a", "x", "b"])
        expected = pipe.execute()

    assert round_trip(client, commands) == expected == [b"value", b"1", [b"1", None, b"2"]]


def test_an_error_reply_is_raised_after_every_reply_was_read(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        round_trip(client, [("HGET", f"{p}:s", "a"), ("GET", f"{p}:s")])

    # the connection went back to the pool in step: the next replies are the next commands'
    assert round_trip(client, [("GET", f"{p}:s")]) == [b"value"]


def test_a_connection_the_server_dropped_is_replaced(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    [ours] = round_trip(client, [("CLIENT", "ID")])  # the pooled connection used next
    with redis.Redis.from_url(URL) as admin:
        assert admin.client_kill_filter(_id=ours) == 1

    assert round_trip(client, [("GET", f"{p}:s")]) == [b"value"]


def test_a_script_the_server_does_not_know_is_loaded_and_run(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    script = client.register_script("return redis.call('GET', KEYS[1])")
    script.sha = "0" * 40  # as after a restart: the server knows no such script

    assert run_script(client, script, [f"{p}:s"], []) == b"value"
    assert run_script(client, script, [f"{p}:s"], []) == b"value"  # now by its real hash
