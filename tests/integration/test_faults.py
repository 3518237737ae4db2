"""Fault tests against the real servers (issue 6): Redis stopped, PostgreSQL cut off.

Given a copy of the session's small trained world in the ``services`` profile (worlds.py: its own
RISK_HOME, PostgreSQL databases and private ``redis-server``), served by ``riskctl serve`` with
its audit URL behind a TCP proxy this module can cut: with Redis stopped, payments get degraded
``review`` decisions rather than errors, and are decided normally again once it is back; with
PostgreSQL cut off, ``/v1/decisions`` answers 503 with a reason, never 200; and every decision
ever answered with 200 is in the audit store, whose chain verifies. Only the HTTP contract is
tested, so how the service is composed may change.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from decisioning.adapters.audit import AuditStore
from pipelines.serving_process import stop_process
from tests.support.served import free_port, post_decision
from tests.support.worlds import (
    KEY,
    POSTGRES,
    PrivateRedis,
    TrainedWorld,
    copy_world,
    database_url,
    drop_copy,
    riskctl,
    serve,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.calendar]


class CuttableProxy:
    """A TCP proxy in front of PostgreSQL that can be cut (every connection closed, new ones
    refused) and restored on the same port: the database, unreachable, as the service sees it."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: same port
        listener.settimeout(0.2)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._open = self._open, set()
        if listener is not None:
            listener.close()  # from now on, connecting is refused
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _close(client, server)
                    continue
                self._open |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        _close(source, target)
        with self._lock:
            self._open -= {source, target}


def _close(*connections: socket.socket) -> None:
    for connection in connections:
        with suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
        connection.close()


@dataclass
class World:
    url: str
    env: dict[str, str]
    redis: PrivateRedis
    proxy: CuttableProxy
    direct_audit_url: str
    customer: str
    terminal: str
    pays_at: str
    acknowledged: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(trained_world: TrainedWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("faults")
    redis = PrivateRedis(free_port(), home / "redis.log")
    proxy = CuttableProxy(POSTGRES)
    process = copy = None
    try:
        redis.start()
        copy = copy_world(trained_world, home, redis.port)
        served_audit_url = database_url(f"risk_faults_audit_{copy.run}", proxy.port)
        proxy.start()  # the service's only way into its audit database
        process, url = serve({**copy.env, "RISK_AUDIT_URL": served_audit_url}, home / "serve.log")
        yield World(
            url,
            copy.env,
            redis,
            proxy,
            copy.audit_url,
            trained_world.customer,
            trained_world.terminal,
            trained_world.pays_at,
        )
    finally:
        if process is not None:
            stop_process(process)
        proxy.cut()
        redis.stop()
        if copy is not None:
            drop_copy(copy)


def payment(world: World) -> dict[str, Any]:
    """A payment of the world's busiest customer at its usual terminal, after the world's last."""
    return {
        "transaction": {
            "transaction_id": f"fault-{uuid.uuid4().hex[:12]}",
            "occurred_at": world.pays_at,
            "customer_id": world.customer,
            "terminal_id": world.terminal,
            "amount": 24.5,
            "country": "GB",
        }
    }


def post(world: World, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /v1/decisions; every decision answered with 200 joins the world's acknowledged list."""
    status, answer = post_decision(world.url, body, KEY, timeout_s=120)
    if status == 200:
        world.acknowledged.append(answer["decision_id"])
    return status, answer


def decide(world: World) -> dict[str, Any]:
    status, decision = post(world, payment(world))
    assert status == 200, f"expected a decision, got {status}: {decision}"
    assert decision["action"] != "approve" or not decision["degraded"], (
        f"a degraded decision must never be an approval: {decision}"
    )
    return decision


def fraud_model_answered(decision: dict[str, Any]) -> bool:
    return any(m["name"] == "fraud-detector" for m in decision["model_versions"])


def present(decision: dict[str, Any]) -> set[str]:
    """The features that had a value in a decision."""
    return {name for name, value in decision["feature_values"].items() if value is not None}


def test_redis_stopped_degrades_payments_to_review_and_they_recover(world: World) -> None:
    # given a payment decided with Redis up: the fraud model answered, nothing degraded
    before = decide(world)
    assert not before["degraded"] and fraud_model_answered(before), before

    # when Redis stops
    world.redis.stop()
    try:
        outage = [decide(world) for _ in range(3)]
    finally:
        world.redis.start()  # same port, empty: it kept nothing on disk

    # then payments are still answered, each degraded to review and saying why
    for decision in outage:
        assert decision["action"] == "review", f"expected the review fallback: {decision}"
        assert decision["degraded"], f"a payment without features must be degraded: {decision}"
        for degradation in decision["degraded"]:
            assert degradation["component"] == "features_unavailable", degradation
            assert degradation["cause"], f"a degradation must say what failed: {degradation}"
            assert "review" in degradation["fallback"], degradation

    # when Redis is back (empty), without restarting the service
    first, second = decide(world), decide(world)
    # then the fraud model answers again from features read in the new Redis, where each payment
    # writes its velocity back
    assert fraud_model_answered(first) and fraud_model_answered(second), (first, second)
    counts = [d["feature_values"]["velocity_10m_count"] for d in (first, second)]
    assert counts[1] == counts[0] + 1, f"the second payment must see the first: {counts}"

    # when the batch features lost with Redis's memory are loaded again, as after any restart
    # of a Redis without persistence
    riskctl(world.env, "features", "materialize")
    after = decide(world)
    # then payments are decided as before the outage: not degraded, with the same features
    assert not after["degraded"] and fraud_model_answered(after), after
    assert present(after) == present(before), (
        f"features missing after recovery: {sorted(present(before) - present(after))}"
    )


class Load:
    """Payments posted from a few client threads while the context is open; statuses counted."""

    def __init__(self, world: World, clients: int = 3) -> None:
        self.world = world
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._clients = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for client in self._clients:
            client.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        for client in self._clients:
            client.join(timeout=180)

    def wait_for(self, status: int, more: int, timeout_s: float = 180) -> None:
        """Until the clients have had ``more`` answers of ``status`` than now."""
        target = self.statuses[status] + more
        deadline = time.monotonic() + timeout_s
        while self.statuses[status] < target:
            if time.monotonic() > deadline:
                pytest.fail(f"the clients had {self.statuses} and no {target} x {status}")
            time.sleep(0.05)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                status, _ = post(self.world, payment(self.world))
            except Exception:  # the service did not answer: counted as 0, which fails the test
                status = 0
            with self._lock:
                self.statuses[status] += 1
            time.sleep(0.02)


def test_postgresql_cut_off_answers_503_and_never_an_unaudited_decision(world: World) -> None:
    with Load(world) as load:
        # given payments being decided for three clients at once
        load.wait_for(200, more=5)
        # when the audit database is cut off while they keep coming
        world.proxy.cut()
        try:
            refused = [post(world, payment(world)) for _ in range(3)]
            load.wait_for(503, more=3)
        finally:
            world.proxy.start()  # on the same port: the database is back
        # then nothing is decided while it is away: 503 with a reason, never a decision
        for status, answer in refused:
            assert status == 503, f"expected 503 while PostgreSQL is cut off: {status} {answer}"
            assert "audit_unavailable" in answer.get("error", ""), answer
            assert "decision_id" not in answer, answer
        # and once it is back, payments are decided again, for every client
        assert all(fraud_model_answered(decide(world)) for _ in range(3))
        load.wait_for(200, more=5)
    assert set(load.statuses) <= {200, 503}, f"only decisions or 503, never {load.statuses}"


def test_every_decision_answered_200_is_in_the_audit_store_and_the_chain_verifies(
    world: World,
) -> None:
    # given every decision this module was answered with 200 (the faults above included)
    decide(world)
    # when the audit store is read directly, not through the proxy
    store = AuditStore.open(world.direct_audit_url)
    try:
        stored = {record.record_id for record in store.records(kind="decision")}
        report = store.verify()
    finally:
        store.close()
    # then none of them is missing, and the chain is whole
    missing = sorted(set(world.acknowledged) - stored)
    assert not missing, (
        f"{len(missing)} of {len(world.acknowledged)} decisions unaudited: {missing[:5]}"
    )
    assert report.ok, f"chain broken at {report.first_broken_id}: {report.reason}"
    assert report.checked >= len(world.acknowledged)
