"""Decision latency over HTTP at a steady rate, beside the in-process floor, in one run.

A fraud decision: features from Redis (the payment's velocity pushed first), the fraud model with
its TreeSHAP contributions and reason codes, the audit row committed to PostgreSQL. Measured:
1. the in-process floor: ``DecisionEngine.decide`` with the same pillars, no HTTP;
2. the served bento (``riskctl serve``) under an open-loop load from a separate process
   (``bench/load.py``) at ``--rate`` requests per second for ``--seconds``;
3. a sweep of rates, to find where p99 crosses 50 ms;
4. text decisions (rules, embeddings, classifier, evidence) over HTTP at a low rate;
5. the same route with the decision taken out (``bench/http_floor.py``): what BentoML, uvicorn
   and the middlewares cost at the same rate before any work is done;
6. the fraud scorer served alone, which is the hop a cross-process fraud pillar would add.
Targets (issue 6): fraud p99 ≤ 10 ms at 200 rps, HTTP p50 ≤ 3× the floor's p50, text p99 ≤ 60 ms.
The world is simulated and trained in the ``services`` profile with its own databases, Feast
project and RISK_HOME, all removed at the end.
Run: .venv/bin/python bench/decide.py [--rate 200] [--seconds 60] [--customers 600] [--json PATH]
``--json`` writes the figures issue 19 tracks: floor_cpu_ms, floor_p50_ms, served_cpu_ms, p50_ms,
p99_ms, achieved_rps, answered, degraded (answers that are degraded decisions, fast because a
component's work was skipped) and audited (decision records the run's audit chain gained) at
``--rate``, the sweep rates where p99 first passes 10 and 50 ms (null: not within the sweep),
text_p99_ms, text_degraded and text_server_cpu_ms, the bare route's CPU, the generator's core
share and the machine's speed at the start and the end (``machine_speed``), the interpreter that
ran it (its build moves every CPU figure and the Python loop witness: ADR 0020), and the floor's
Python calls a decision (``floor_python_calls``), which the host's speed does not move.
The load generator is ``bench/load.py`` (why not a compiled one: its docstring).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

REPO = Path(__file__).resolve().parents[1]
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASES = ("audit", "mlflow", "feast")
SWEEP_RATES = (50, 100, 150, 200, 250, 300, 400)
SETTLE_S = 10
P99_LIMITS_MS = (10, 50)
HOP_RATE = 100
CALLS_COUNTED = 200  # floor decisions counted by python_calls, after the timed ones
DECISION_FILE = "RISK_BENCH_DECISION"  # the stored decision bench/http_floor.py answers with


def isolated_environment(home: Path, run: str) -> dict[str, str]:
    """The services profile on throw-away databases, Feast project, home and config copy."""
    configs = home / "configs"
    shutil.copytree(REPO / "configs", configs)  # a throw-away copy the bench may change
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/risk_bench_{}_" + run
    return {
        "RISK_ENV": "services",
        "RISK_HOME": str(home),
        "RISK_CONFIG_DIR": str(configs),
        "RISK_FEAST_PROJECT": f"bench_{run}",
        "RISK_AUDIT_URL": url.format("audit"),
        "RISK_MLFLOW_URL": url.format("mlflow"),
        "RISK_FEAST_REGISTRY_URL": url.format("feast"),
        "RISK_TRACE_EXPORTER": "none",
        "RISK_EMBEDDINGS_PREFIX": f"emb:bench_{run}:",  # dropped with the run's other keys
        "HF_HUB_OFFLINE": "1",
    }


def create_databases(run: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in DATABASES:
            connection.execute(f'CREATE DATABASE "risk_bench_{name}_{run}"')


def drop_everything(run: str) -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"*bench_{run}*", count=1000))  # Feast keys and history
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in DATABASES:
            connection.execute(f'DROP DATABASE IF EXISTS "risk_bench_{name}_{run}" WITH (FORCE)')


def decisions_recorded() -> int:
    """Decision records in the audit chain the service writes (``RISK_AUDIT_URL``): each answered
    decision must have one, committed before its answer was sent (``AuditStore.append`` returns
    only after the commit)."""
    from decisioning.core.engine import DECISION_KIND

    url = os.environ["RISK_AUDIT_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM audit_records WHERE kind = %s", (DECISION_KIND,)
        ).fetchone()
    return int(row[0]) if row else 0


def build_world(customers: int, days: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Simulate, build and materialize features, train and promote both models.

    Returns request bodies: payments of the live last day, and messages.
    """
    from decisioning.settings import load_settings
    from pipelines.decision_requests import last_day_start, request_fields
    from pipelines.jobs.demo import features_up_to, promote_both, simulate_and_write, train_both
    from pipelines.simulate import SimulationConfig

    settings = load_settings()
    world = simulate_and_write(
        SimulationConfig(customers=customers, days=days, seed=5), settings.data_path
    )
    cutoff = last_day_start(world.transactions)
    features_up_to(settings, settings.data_path / "transactions.parquet", cutoff)
    train_both(settings, settings.data_path / "transactions.parquet")
    promote_both(settings)
    live = world.transactions[world.transactions["occurred_at"] > cutoff]
    payments = [
        {"transaction": request_fields(row, "transaction")}
        for row in live.sort_values("occurred_at").to_dict("records")
    ]
    texts = [{"text": request_fields(row, "text")} for row in world.texts.to_dict("records")]
    return payments, texts


class PaymentStream:
    """The live day's payments replayed in cycles, each cycle later than the one before.

    Every copy gets its own transaction id, and each cycle is shifted past the previous one, so a
    payment is always the newest of its customer: its velocity update is really written, as in
    production, where a replayed time would leave the stored, newer values in place.
    """

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self._bodies = bodies
        times = [pd.Timestamp(body["transaction"]["occurred_at"]) for body in bodies]
        self._times = times
        self._cycle_shift = max(times) - min(times) + pd.Timedelta(seconds=1)
        self._taken = 0

    def take(self, count: int) -> list[dict[str, Any]]:
        out = []
        for index in range(self._taken, self._taken + count):
            cycle, position = divmod(index, len(self._bodies))
            body = json.loads(json.dumps(self._bodies[position]))
            moment = self._times[position] + (cycle + 1) * self._cycle_shift
            body["transaction"]["occurred_at"] = moment.isoformat()
            body["transaction"]["transaction_id"] += f"-{index}"
            out.append(body)
        self._taken += count
        return out


def unseen(bodies: list[dict[str, Any]], run: str) -> list[dict[str, Any]]:
    """Messages made new to the embedding cache (training embedded the originals)."""
    out = json.loads(json.dumps(bodies))
    for index, body in enumerate(out):
        body["text"]["text"] += f" Reference {run}-{index}."
        body["text"]["message_id"] += f"-{index}"
    return out


@dataclass
class Floor:
    timings_ms: list[float]
    cpu_ms: float  # a decision
    python_calls: float  # a decision: see ``python_calls``
    last_decision: str  # as JSON


def in_process_floor(bodies: list[dict[str, Any]]) -> Floor:
    """The same decision without HTTP: pillars, policy and the audit insert, in this process.

    The first 50 bodies warm up, the last ``CALLS_COUNTED`` are counted (``python_calls``), the
    rest are timed.
    """
    from decisioning.core.engine import DecisionRequest
    from decisioning.settings import load_settings
    from decisioning.wiring import build_engine, freeze_startup_heap

    engine = build_engine(load_settings())
    requests = [DecisionRequest.model_validate(body) for body in bodies]
    freeze_startup_heap()  # as the served processes do
    for request in requests[:50]:  # warm-up: first calls load lazily
        engine.decide(request)
    timed, counted = requests[50:-CALLS_COUNTED], requests[-CALLS_COUNTED:]
    timings = []
    cpu_started = time.process_time()  # every thread's: the audit writer's commits too
    for request in timed:
        started = time.perf_counter()
        decision = engine.decide(request)
        timings.append((time.perf_counter() - started) * 1e3)
    cpu_ms = (time.process_time() - cpu_started) * 1e3 / len(timings)
    calls = python_calls(lambda: [engine.decide(request) for request in counted]) / len(counted)
    return Floor(timings, cpu_ms, calls, decision.model_dump_json())


def python_calls(work: Callable[[], object]) -> int:
    """How many Python function calls ``work`` makes in its thread and in threads started meanwhile
    (``sys.setprofile``'s "call" events: a generator's resumption counts, a C function does not).

    The host's speed moved the same code's CPU a decision by half between runs an hour apart
    (``machine_speed``); this count does not move with it, so a cut shows in it on any host. A
    thread started meanwhile that outlives ``work`` stays profiled (counting nothing that is
    returned): slower, so count after any timing, as ``in_process_floor`` does.
    """
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    threading.setprofile(profile)  # threads started meanwhile (a group commit's leader is not)
    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return count


def machine_speed() -> dict[str, float]:
    """Witnesses of the machine's speed at the time, each the best of three: the CPU seconds of
    a fixed pure-Python loop, and the CPU microseconds of a one-byte write and read through a
    pipe (two system calls). The same code's CPU a decision moved by half between runs an hour
    apart here (a shared host); these say whether the machine, not the code, moved."""
    loop = syscall = float("inf")
    reader, writer = os.pipe()
    try:
        for _ in range(3):
            started = time.process_time()
            sum(i * i for i in range(10**7))
            loop = min(loop, time.process_time() - started)
            started = time.process_time()
            for _ in range(50_000):
                os.write(writer, b"x")
                os.read(reader, 1)
            syscall = min(syscall, (time.process_time() - started) * 1e6 / 50_000)
    finally:
        os.close(reader)
        os.close(writer)
    return {"python_loop_s": loop, "pipe_round_us": syscall}


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc (Linux).

    A process's children are listed per thread that started them (``task/TID/children``): a
    child started from a thread other than the main one (the audit checkpointer's, say) counts
    too, and so do children that ended and were waited for (their parent's ``cutime`` and
    ``cstime``). Children are read before their parent, so a child reaped between the two reads
    is counted twice rather than missed: the figure can only err high."""
    try:
        threads = [task.name for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:  # gone meanwhile
        return 0.0
    total = 0.0
    for thread in threads:
        try:
            children = Path(f"/proc/{pid}/task/{thread}/children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        total += sum(tree_cpu_seconds(int(child)) for child in children)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return total
    # utime, stime, cutime, cstime: fields 14-17 of proc_pid_stat(5), counted from the state (3).
    return total + sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int  # the serve command's: its process tree's CPU is the server's


@contextmanager
def served(target: list[str], port: int, key: str, log: Path) -> Iterator[Server]:
    """``riskctl serve`` (or another serve command) in a subprocess until the block ends."""
    from pipelines.serving_process import stop_process, wait_until_ready

    env = {**os.environ, "RISK_API_KEYS": key}
    with log.open("w") as output:
        process = subprocess.Popen(
            [*target, "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(url, process, log)
            yield Server(url, process.pid)
        finally:
            stop_process(process)


def load(
    server: Server,
    key: str,
    bodies: list[dict[str, Any]],
    rate: float,
    seconds: float,
    folder: Path,
    route: str = "/v1/decisions",
) -> dict[str, Any]:
    path = folder / "bodies.json"
    path.write_text(json.dumps(bodies))
    command = [sys.executable, "-m", "bench.load", "--rate", str(rate), "--seconds", str(seconds)]
    # "--" ends the options: a key from token_urlsafe starts with "-" one time in 32.
    command += ["--", f"{server.url}{route}", key, str(path)]
    cpu_before = tree_cpu_seconds(server.pid)
    answer = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    result: dict[str, Any] = json.loads(answer.stdout)
    # The server's CPU per request: what caps the rate one process can serve.
    cpu = tree_cpu_seconds(server.pid) - cpu_before
    result["server_cpu_ms"] = cpu * 1e3 / max(len(result["latencies_ms"]), 1)
    return result


def sweep(server: Server, key: str, stream: PaymentStream, home: Path) -> dict[int, float]:
    """Rising rates, 15 s each, until p99 passes 50 ms: the first rate where it passes each of
    ``P99_LIMITS_MS`` (a limit never passed is left out)."""
    crossing: dict[int, float] = {}
    for rate in SWEEP_RATES:
        time.sleep(SETTLE_S)  # let a saturated run's queue drain first
        result = load(server, key, stream.take(rate * 15), rate, 15, home)
        label = f"HTTP fraud decision at {rate} rps for 15 s"
        row(label, result["latencies_ms"], served_note(result))
        p99 = float(np.percentile(result["latencies_ms"], 99))
        for limit in P99_LIMITS_MS:
            if p99 > limit and limit not in crossing:
                crossing[limit] = rate
                print(f"p99 crosses {limit} ms at {rate} rps")
        if p99 > max(P99_LIMITS_MS):
            break
    return crossing


def percentiles(values: list[float]) -> str:
    p50, p99 = statistics.median(values), float(np.percentile(values, 99))
    return f"p50 {p50:6.2f} ms  p99 {p99:7.2f} ms"


def served_note(result: dict[str, Any]) -> str:
    return (
        f"statuses {result['statuses']}, degraded {result['degraded']}, "
        f"server CPU {result['server_cpu_ms']:.1f} ms a request"
    )


def row(label: str, values: list[float], note: str = "") -> None:
    print(f"{label:<52} {percentiles(values)}  {note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--port", type=int, default=3931)
    parser.add_argument("--json", type=Path, help="write the run's figures to this file")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds}
    figures["python"] = {
        "version": sys.version.split()[0],
        "executable": os.path.realpath(sys.executable),
    }
    print(
        f"interpreter: Python {figures['python']['version']} at {figures['python']['executable']}"
    )
    run = uuid.uuid4().hex[:8]
    home = Path(tempfile.mkdtemp(prefix="bench-decide-"))
    os.environ.update(isolated_environment(home, run))
    create_databases(run)
    try:
        started = time.perf_counter()
        payments, texts = build_world(args.customers, args.days)
        print(
            f"world built in {time.perf_counter() - started:.0f} s: {len(payments)} live "
            f"payments, {len(texts)} messages; load average {os.getloadavg()[0]:.1f}"
        )
        stream = PaymentStream(payments)
        figures["load_average_start"] = os.getloadavg()[0]
        figures["machine_speed_start"] = machine_speed()
        measured = in_process_floor(stream.take(1_050 + CALLS_COUNTED))
        floor, floor_cpu_ms = measured.timings_ms, measured.cpu_ms
        figures.update(floor_cpu_ms=floor_cpu_ms, floor_p50_ms=statistics.median(floor))
        figures["floor_p99_ms"] = float(np.percentile(floor, 99))
        figures["floor_python_calls"] = measured.python_calls
        row(
            "in-process floor (features + model + audit)",
            floor,
            f"1,000 sequential, CPU {floor_cpu_ms:.2f} ms a decision, "
            f"{measured.python_calls:,.0f} Python calls a decision",
        )
        key = secrets.token_urlsafe(16)
        bentoml_serve = [str(Path(sys.executable).with_name("bentoml")), "serve"]
        riskctl_serve = [sys.executable, "-m", "pipelines.cli", "serve"]
        with served(riskctl_serve, args.port, key, home / "service.log") as server:
            load(server, key, stream.take(400), 20, 5, home)  # warm-up
            # Texts first, on a server no overload has left a queue in; the first few load the
            # embedding model's lazy parts, so they warm up apart.
            load(server, key, unseen(texts[300:340], f"{run}-warm"), 10, 4, home)
            text = load(server, key, unseen(texts[:300], run), 10, 30, home)
            row(
                "HTTP text decision at 10 rps for 30 s",
                text["latencies_ms"],
                served_note(text),
            )
            figures["text_p99_ms"] = float(np.percentile(text["latencies_ms"], 99))
            figures["text_degraded"] = text["degraded"]
            figures["text_server_cpu_ms"] = text["server_cpu_ms"]
            recorded_before = decisions_recorded()
            steady = load(
                server,
                key,
                stream.take(int(args.rate * args.seconds)),
                args.rate,
                args.seconds,
                home,
            )
            http = steady["latencies_ms"]
            audited = decisions_recorded() - recorded_before
            row(
                f"HTTP fraud decision at {args.rate:.0f} rps for {args.seconds:.0f} s",
                http,
                served_note(steady)
                + f", achieved {steady['achieved_rps']:.0f} rps, {audited:,} decision records",
            )
            figures.update(
                served_cpu_ms=steady["server_cpu_ms"],
                p50_ms=statistics.median(http),
                p99_ms=float(np.percentile(http, 99)),
                achieved_rps=steady["achieved_rps"],
                answered=steady["statuses"].get("200", 0),
                degraded=steady["degraded"],
                audited=audited,
                sent=len(http),
                generator_core_share=steady["generator_core_share"],
            )
            ratio = statistics.median(http) / statistics.median(floor)
            print(f"{'HTTP p50 / floor p50':<52} {ratio:.2f}× (target ≤ 3×)")
            crossing = sweep(server, key, stream, home)
            figures["p99_crosses_10ms_at_rps"] = crossing.get(10)
            figures["p99_crosses_50ms_at_rps"] = crossing.get(50)
        # BentoML's own cost at the same rate: the route with the decision taken out.
        stored = home / "decision.json"
        stored.write_text(measured.last_decision)
        os.environ[DECISION_FILE] = str(stored)
        http_floor = [*bentoml_serve, "bench.http_floor:HttpFloor", "--working-dir", str(REPO)]
        with served(http_floor, args.port + 2, key, home / "http_floor.log") as server:
            load(server, key, stream.take(400), 20, 5, home)
            bare = load(server, key, stream.take(int(args.rate * 30)), args.rate, 30, home)
            row(
                f"BentoML route without the decision at {args.rate:.0f} rps",
                bare["latencies_ms"],
                served_note(bare) + f", achieved {bare['achieved_rps']:.0f} rps",
            )
            figures["bare_route_cpu_ms"] = bare["server_cpu_ms"]
            figures["bare_route_p50_ms"] = statistics.median(bare["latencies_ms"])
        # The hop RiskService would add if the fraud pillar were a bentoml.depends dependency:
        # the fraud scorer served alone, its route at the same rate.
        fraud_alone = [
            *bentoml_serve,
            "bentos.service:FraudScorer",
            "--working-dir",
            str(REPO),
        ]
        with served(fraud_alone, args.port + 1, key, home / "fraud.log") as server:
            load(server, key, stream.take(400), 20, 5, home, "/v1/fraud/score")
            hop = load(
                server,
                key,
                stream.take(HOP_RATE * 30),
                HOP_RATE,
                30,
                home,
                "/v1/fraud/score",
            )
            row(
                f"FraudScorer alone over HTTP at {HOP_RATE} rps (no audit)",
                hop["latencies_ms"],
                served_note(hop),
            )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        figures["load_average_end"] = os.getloadavg()[0]
        figures["machine_speed_end"] = machine_speed()
        start, end = figures["machine_speed_start"], figures["machine_speed_end"]
        print(
            f"machine speed (lower is faster): a Python loop {start['python_loop_s']:.3f} s "
            f"then {end['python_loop_s']:.3f} s, a pipe write and read {start['pipe_round_us']:.2f}"
            f" us then {end['pipe_round_us']:.2f} us"
        )
        if args.json is not None:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"figures written to {args.json}")
    finally:
        drop_everything(run)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
