"""A small trained world in the ``services`` profile for the integration tests, isolated from
everything else.

Its own RISK_HOME with a copy of ``configs/``, PostgreSQL databases, Feast project and a private
``redis-server``; served by ``riskctl serve``. Built once a session (``trained_world`` in
``tests/integration/conftest.py``) and copied per module that serves it (:func:`copy_world`):
simulating, building features, training and promoting take minutes, a copy seconds. A copy gets
the template's home copied, its PostgreSQL databases made from the template's (``CREATE DATABASE
... TEMPLATE``) and the online store and velocity histories materialized into its own empty Redis;
it keeps the template's Feast project name (the registry holds it) and reads the model artifacts
under the template's home, which lives for the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from pipelines.serving_process import stop_process
from tests.support.clock import subprocess_env
from tests.support.served import free_port

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = ("127.0.0.1", 5432)
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
KEY = "fault-test-key"
# Big enough for the promotion gates to pass (60 days: the 30-day features are warm over the
# 28 training days), small enough to build in a few minutes on two shared cores.
WORLD = ("--customers", "200", "--days", "60", "--seed", "5")
READY_TIMEOUT_S = 300
COMMAND_TIMEOUT_S = 900


def database_url(name: str, port: int = POSTGRES[1]) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


class PrivateRedis:
    """A ``redis-server`` of this module's own, without persistence, on a fixed free port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--logfile", str(self.log)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-1000:]
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.2)
        pytest.fail(f"redis-server on port {self.port} did not answer PING in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def riskctl(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert result.returncode == 0, f"riskctl {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def isolated_env(
    home: Path, run: str, redis_port: int, audit_url: str, project_run: str | None = None
) -> dict[str, str]:
    """The services profile pointed at this module's own databases, Feast project and Redis.

    A copy of a world keeps the Feast project of the run that built it (``project_run``): its
    registry names it."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "OTEL_"))}
    return {
        **inherited,
        "RISK_ENV": "services",
        "RISK_HOME": str(home),
        "RISK_CONFIG_DIR": str(home / "configs"),  # `train fraud` writes thresholds there
        "RISK_AUDIT_URL": audit_url,
        "RISK_MLFLOW_URL": database_url(f"risk_faults_mlflow_{run}"),
        "RISK_FEAST_REGISTRY_URL": database_url(f"risk_faults_feast_{run}"),
        "RISK_FEAST_PROJECT": f"faults_{project_run or run}",
        "RISK_FEAST_REDIS": f"127.0.0.1:{redis_port}",
        "RISK_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RISK_API_KEYS": KEY,
        "RISK_TRACE_EXPORTER": "none",
        **subprocess_env(),  # every riskctl and the service begin at tests.support.clock.NOW
    }


def build_world(env: dict[str, str], home: Path) -> tuple[str, str, str]:
    """Simulate, build and materialize features, train and promote both models.

    Returns a customer of the world, the terminal it uses most, for payments of a known kind, and
    when to pay: an hour after the world's last payment. The world (June and July) ends weeks
    before ``tests.support.clock.NOW``; a payment at NOW would find the terminal's batch row older
    than its view's 30-day TTL and get its terminal features as unknown, as it should in
    production.
    """
    data = home / "data"
    transactions = str(data / "transactions.parquet")
    riskctl(env, "data", "simulate", "--out", str(data), *WORLD)
    riskctl(env, "features", "build", "--transactions", transactions)
    riskctl(env, "features", "apply")
    riskctl(env, "features", "materialize")
    riskctl(env, "train", "fraud")
    # The conduct scorer serves in a process of its own: a served message crosses BentoML's
    # dependency client, which a change to how the decision route runs can silently break.
    riskctl(env, "train", "conduct", "--texts", str(data / "texts.parquet"))
    reason = "fault tests: a model trained on this module's own simulated world"
    for model in ("fraud-detector", "conduct-classifier"):
        riskctl(env, "registry", "promote", model, "--approver", "fault-tests", "--reason", reason)
    payments = pd.read_parquet(transactions, columns=["customer_id", "terminal_id", "occurred_at"])
    customer = payments["customer_id"].value_counts().index[0]
    terminal = payments.loc[payments["customer_id"] == customer, "terminal_id"].mode()[0]
    pays_at = payments["occurred_at"].max() + pd.Timedelta(hours=1)
    return str(customer), str(terminal), pays_at.isoformat()


def create_databases(names: list[str]) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')


def drop_databases(names: list[str]) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``riskctl serve`` on a free port, once ``/readyz`` answers 200."""
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--port"]
    return serve_command(command, env, log, ROOT)


def serve_command(
    command: list[str], env: dict[str, str], log: Path, cwd: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``command`` followed by a free port, once ``/readyz`` answers 200 there."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, str(port)], env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the service exited:\n{log.read_text()[-3000:]}"
        with suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as ready:
            if ready.status == 200:
                return process, url
        time.sleep(1)
    stop_process(process)
    pytest.fail(f"the service was not ready in {READY_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


KINDS = ("audit", "mlflow", "feast")


@dataclass(frozen=True)
class TrainedWorld:
    home: Path
    run: str
    customer: str
    terminal: str
    pays_at: str
    databases: tuple[str, ...]


@dataclass(frozen=True)
class WorldCopy:
    home: Path
    run: str
    env: dict[str, str]
    audit_url: str


def build_trained_world(home: Path) -> TrainedWorld:
    """The template: simulated, built, materialized, trained and promoted under ``home``."""
    run = uuid.uuid4().hex[:8]
    shutil.copytree(ROOT / "configs", home / "configs")
    databases = tuple(f"risk_faults_{kind}_{run}" for kind in KINDS)
    create_databases(list(databases))
    redis = PrivateRedis(free_port(), home / "redis.log")
    try:
        redis.start()
        env = isolated_env(home, run, redis.port, database_url(databases[0]))
        customer, terminal, pays_at = build_world(env, home)
    except BaseException:
        drop_databases(list(databases))
        raise
    finally:
        redis.stop()
    return TrainedWorld(home, run, customer, terminal, pays_at, databases)


def copy_world(world: TrainedWorld, home: Path, redis_port: int) -> WorldCopy:
    """The world under ``home``, with databases of its own and ``redis_port``'s Redis filled."""
    run = uuid.uuid4().hex[:8]
    shutil.copytree(world.home, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.log"))
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for kind in KINDS:
            connection.execute(
                f'CREATE DATABASE "risk_faults_{kind}_{run}" '
                f'TEMPLATE "risk_faults_{kind}_{world.run}"'
            )
    audit_url = database_url(f"risk_faults_audit_{run}")
    env = isolated_env(home, run, redis_port, audit_url, project_run=world.run)
    riskctl(env, "features", "materialize")
    return WorldCopy(home, run, env, audit_url)


def drop_copy(copy: WorldCopy) -> None:
    drop_databases([f"risk_faults_{kind}_{copy.run}" for kind in KINDS])
