"""One round trip to Redis on a pooled connection: the replies redis-py's pipeline gives, errors
raised in step, a connection the server dropped replaced, a script the server lost loaded again;
connections kept between round trips, one thread at a time each, closed with the client, never
shared with a forked child."""

import gc
import os
import signal
import threading
import uuid
import weakref
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


def test_a_connection_is_kept_between_round_trips_and_closed_with_the_client() -> None:
    client = redis.Redis.from_url(URL, socket_timeout=2)
    [first] = round_trip(client, [("CLIENT", "ID")])
    [second] = round_trip(client, [("CLIENT", "ID")])
    assert first == second  # the same connection, not a new one each time

    client.close()

    with redis.Redis.from_url(URL) as admin:
        ids = {entry["id"] for entry in admin.client_list()}
    assert str(first) not in ids, "closing the client left its kept connection open"


def test_threads_at_once_each_get_their_own_replies(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    keys = [f"{p}:t{n}" for n in range(16)]
    for n, key in enumerate(keys):
        client.set(key, n)
    wrong: list[tuple[int, object]] = []

    def read(n: int) -> None:
        for _ in range(200):
            [value, echoed] = round_trip(client, [("GET", keys[n]), ("ECHO", f"thread {n}")])
            if (value, echoed) != (str(n).encode(), f"thread {n}".encode()):
                wrong.append((n, (value, echoed)))

    threads = [threading.Thread(target=read, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    client.delete(*keys)
    assert wrong == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_use_its_parents_connection(client: redis.Redis) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    [parent] = round_trip(client, [("CLIENT", "ID")])
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the parent's left alone
        try:
            [child] = round_trip(client, [("CLIENT", "ID")])
            ok = child != parent and round_trip(client, [("GET", f"{p}:s")]) == [b"value"]
            os.write(writer, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(reader, 1) == b"1"
    os.close(reader)
    os.close(writer)

    assert round_trip(client, [("CLIENT", "ID")]) == [parent]  # still the parent's, in step
    assert round_trip(client, [("GET", f"{p}:s")]) == [b"value"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_while_another_thread_sets_up_a_pool_does_not_hang() -> None:
    from decisioning.adapters.feast import redis_payment

    # Given a fork while another thread holds the lock that sets up a pool's kept connections,
    reader, writer = os.pipe()
    with redis_payment._SPARE_LOCK:
        pid = os.fork()
        if pid == 0:  # the child: a new client's first round trip takes that lock
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(10)  # a hang ends the child by the signal, not the test run
                client = redis.Redis.from_url(URL, socket_timeout=2)
                os.write(writer, b"1" if round_trip(client, [("ECHO", "up")]) == [b"up"] else b"0")
            finally:
                os._exit(0)

    # then the child's round trip is answered: it has a lock of its own.
    os.close(writer)
    _, status = os.waitpid(pid, 0)
    answer = os.read(reader, 1)
    os.close(reader)
    assert os.WIFEXITED(status), f"the child hung on its parent's lock (status {status})"
    assert answer == b"1"


def test_a_dropped_client_frees_its_pool_and_connections() -> None:
    client = redis.Redis.from_url(URL, socket_timeout=2)
    round_trip(client, [("PING",)])
    pool = weakref.ref(client.connection_pool)
    del client
    gc.collect()
    assert pool() is None


def test_a_bounded_pool_keeps_its_connections_for_its_other_users() -> None:
    client = redis.Redis.from_url(URL, socket_timeout=2, max_connections=1)
    round_trip(client, [("PING",)])
    assert client.ping()  # not MaxConnectionsError: round_trip kept no connection
    client.close()
