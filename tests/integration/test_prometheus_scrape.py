"""A real Prometheus scrapes a served bento under load; every dashboard and alert query has data.

Given a RISK_HOME holding the latest payment drift, text-embedding drift and outcome results of
the real monitor jobs on a tiny simulated world and its features materialized online, a ``riskctl
serve`` (no models: decisions are degraded reviews) and a ``prometheus`` with the repository's
alert rules, scraping every second; when payments, messages, both and some bad requests have been
sent; then each PromQL expression of ``infra/grafana`` and ``infra/prometheus/alerts.yml`` (its
left-hand side, for a threshold) returns at least one series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import time_machine
import yaml

from pipelines.serving_process import stop_process
from tests.support.served import free_port, post_decision

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ALERT_RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((ROOT / "infra" / "grafana").glob("*.json"))
PROMETHEUS = Path("/usr/bin/prometheus")
KEY = "scrape-test-key"
READY_TIMEOUT_S = 240
SCRAPES_WANTED = 5
EVENT_TIME = {"transactions": "occurred_at", "texts": "received_at"}

_ABSENT = re.compile(r"absent\((?P<inner>.*)\)", re.DOTALL)
# A trailing comparison with a number, e.g. ``... > 0.2`` or ``... <= bool 1e3``.
_TRAILING_THRESHOLD = re.compile(
    r"(?P<op>>=|<=|==|!=|>|<)\s*(?:bool\s+)?"
    r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|Inf|NaN)\s*$"
)


def threshold_lhs(expr: str) -> str:
    """The left-hand side of a top-level ``<expr> <op> <number>``; other expressions unchanged.

    Comparisons bind looser than arithmetic but tighter than ``and``, ``or`` and ``unless``, so
    the trailing comparison is the outermost operator only if no set operator stands before it
    outside brackets.
    """
    match = _TRAILING_THRESHOLD.search(expr)
    if match is None:
        return expr.strip()
    lhs = expr[: match.start()]
    outside = _outside_brackets(lhs)
    if outside is None or lhs.rstrip().endswith(("=", "!", "<", ">")):
        return expr.strip()  # inside brackets, or the tail of a longer operator
    if re.search(r"\b(?:and|or|unless)\b", outside):
        return expr.strip()  # ``a and b > 1``: the comparison belongs to ``b`` only
    return lhs.strip()


def healthy_query(expr: str) -> str:
    """What must have data in a healthy world for the alert to mean anything: the left-hand side
    of a threshold, or the series an ``absent(...)`` rule watches for."""
    absent = _ABSENT.fullmatch(expr.strip())
    return absent.group("inner").strip() if absent else threshold_lhs(expr)


def _outside_brackets(text: str) -> str | None:
    """``text`` with quoted strings and bracketed parts blanked; None if a bracket is left open."""
    depth, quote, escaped = 0, "", False
    kept = []
    for char in text:
        if quote:
            escaped = char == "\\" and not escaped
            if char == quote and not escaped:
                quote = ""
            kept.append(" ")
            continue
        if char in "\"'`":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        kept.append(char if depth == 0 and char not in ")}]\"'`" else " ")
    return "".join(kept) if depth == 0 and not quote else None


def dashboard_exprs() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in DASHBOARDS:
        walk(json.loads(path.read_text()))
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def queries() -> list[Any]:
    """Every query to evaluate, one pytest parameter each."""
    named = [(f"dashboard:{expr}", expr) for expr in dict.fromkeys(dashboard_exprs())]
    named += [(f"alert:{rule['alert']}", healthy_query(rule["expr"])) for rule in alert_rules()]
    return [pytest.param(expr, id=name) for name, expr in named]


# -- helper, no Prometheus needed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "lhs"),
    [
        ("max by (feature) (risk_feature_drift_score{method=\"psi\"}) > 0.2",
         "max by (feature) (risk_feature_drift_score{method=\"psi\"})"),
        ("sum(rate(a[15m]))\n/ sum(rate(b[15m])) > 0.05", "sum(rate(a[15m]))\n/ sum(rate(b[15m]))"),
        ("risk_flag_precision{action=\"x\", category=\"all\"} < 0.05",
         "risk_flag_precision{action=\"x\", category=\"all\"}"),
        ("x >= 1e3", "x"),
        ("x <= .5", "x"),
        ("x == -1", "x"),
        ("x != 0", "x"),
        ("x > bool 1", "x"),
        ("x", "x"),
        ("x > y", "x > y"),
        ("(x > 1)", "(x > 1)"),
        ("sum(x > 1)", "sum(x > 1)"),
        ("x{le=\">1\"}", "x{le=\">1\"}"),
        ("rate(x[5m]) > 0 and y > 1", "rate(x[5m]) > 0 and y > 1"),
        ("x unless y < 2", "x unless y < 2"),
        ("x{job=\"or\"} > 2", "x{job=\"or\"}"),
        ("error_ratio > 2", "error_ratio"),
        ("a > b > 1", "a > b"),
    ],
)  # fmt: skip
def test_threshold_lhs_strips_only_a_top_level_comparison_with_a_number(
    expr: str, lhs: str
) -> None:
    assert threshold_lhs(expr) == lhs


def test_every_alert_rule_of_the_repository_has_a_threshold_or_an_absent_to_strip() -> None:
    for rule in alert_rules():
        assert healthy_query(rule["expr"]) != rule["expr"].strip(), (
            f"{rule['alert']}: expected '<query> <op> <number>' or 'absent(<query>)', "
            f"got {rule['expr']!r}"
        )


def test_an_absent_rule_is_checked_through_the_series_it_watches() -> None:
    assert healthy_query('absent(up{job="risk-service"})') == 'up{job="risk-service"}'
    assert healthy_query("absent(x) > 1") == "absent(x)", "a threshold on absent() is a threshold"


# -- fixtures: monitoring results, the bento, Prometheus -----------------------------------------


def riskctl(*argv: str) -> None:
    from pipelines.cli import main

    assert main(list(argv)) == 0, f"riskctl {' '.join(argv)} failed"


def audited_degraded_decisions(payments: pd.DataFrame) -> None:
    """Decide payments in process with no models, as the bento would: degraded, audited."""
    from decisioning.adapters.audit import AuditStore
    from decisioning.core.engine import DecisionEngine, DecisionRequest
    from decisioning.core.policy import load_policy
    from decisioning.settings import load_settings
    from pipelines.decision_requests import request_fields

    settings = load_settings()
    store = AuditStore.open(settings.audit.url)
    try:
        engine = DecisionEngine(
            load_policy(settings.config_path("configs/policy.yaml")), store, None, None
        )
        for row in payments.to_dict("records"):
            transaction = request_fields(row, "transaction")
            engine.decide(DecisionRequest.model_validate({"transaction": transaction}))
    finally:
        store.close()


def drift_of_week2_against_week1(world: Path, kind: str, home: Path) -> list[str]:
    """The ``riskctl monitor drift`` arguments comparing the events after the middle of their
    time span with those before it (written as two files under ``home``)."""
    events = pd.read_parquet(world / f"{kind}.parquet")
    times = events[EVENT_TIME[kind]]
    middle = times.min() + (times.max() - times.min()) / 2
    folder = home / "windows" / kind
    folder.mkdir(parents=True)
    week1, week2 = folder / "week1.parquet", folder / "week2.parquet"
    events[times <= middle].to_parquet(week1)
    events[times > middle].to_parquet(week2)
    return [
        "monitor", "drift",
        "--reference", str(week1), "--current", str(week2),
        "--out", str(home / "reports" / "drift" / kind),
    ]  # fmt: skip


def materialized_features(world: Path, home: Path) -> None:
    """The world's feature tables registered and materialized online, as the hourly job does.

    The tables come from the pure build step, without ``features build``'s data gate: loading
    Great Expectations costs seconds for a check this test is not about.
    """
    from pipelines.features.build import build_feature_tables
    from pipelines.ingest import conform, read_table

    payments = conform(read_table(world / "transactions.parquet"), "transactions")
    customers = read_table(world / "customers.parquet")
    build_feature_tables(payments, customers).write(home / "features")
    riskctl("features", "apply")
    riskctl("features", "materialize")


@contextmanager
def riskctl_beside(argv: list[str], log_path: Path) -> Iterator[None]:
    """``riskctl ARGV`` in a process of its own while the block runs; it must then end with 0."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield
        returncode = process.wait(timeout=READY_TIMEOUT_S)
    finally:
        stop_process(process)
    assert returncode == 0, f"riskctl {' '.join(argv)}: {log_path.read_text()[-2000:]}"


def run_offline_jobs(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real jobs on a tiny world: payment and text drift of week 2 against week 1, features
    materialized, and the flag quality of degraded decisions (all reviews) on labelled payments.

    The text drift run spends most of its time loading the embeddings model (the world has only
    60 messages to embed), so it runs in a process of its own beside the other jobs.
    """
    monkeypatch.setenv("RISK_HOME", str(home))
    monkeypatch.setenv("RISK_ENV", "local")
    world = home / "world"
    riskctl("data", "simulate", "--out", str(world), "--customers", "60", "--days", "14")
    text_drift = drift_of_week2_against_week1(world, "texts", home)
    with riskctl_beside(text_drift, home / "text_drift.log"):
        riskctl(*drift_of_week2_against_week1(world, "transactions", home))
        materialized_features(world, home)
        payments = pd.read_parquet(world / "transactions.parquet")
        labelled = payments[payments["label"].notna()]
        # Frauds and as many genuine payments: recall needs frauds, precision needs flags.
        frauds = labelled[labelled["label"] == 1].head(30)
        audited_degraded_decisions(pd.concat([frauds, labelled[labelled["label"] == 0].head(30)]))
        riskctl(
            "monitor", "outcomes",
            "--labels", str(world / "transactions.parquet"),
            "--out", str(home / "reports" / "outcomes"),
            "--as-of", "2100-01-01T00:00:00",
        )  # fmt: skip
    record_scheduled_job_successes()
    return world


def record_scheduled_job_successes() -> None:
    """Each scheduled job's success, as ``riskctl jobs run`` records it in the operations store.

    The jobs themselves run in the aws tier (tests/aws); here retrain alone would cost minutes.
    What this module checks is that a served process publishes what the store holds.
    """
    from decisioning.adapters.operations import operations_store
    from decisioning.settings import load_settings
    from pipelines.jobs.scheduled import JOBS

    with operations_store(load_settings().operations.url) as store:
        for job in JOBS:
            store.record_success(job, {"recorded_by": "test_prometheus_scrape"})


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited: {log.read_text(errors='replace')[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{what} not ready at {url} within {READY_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``riskctl serve`` on a free port, RISK_HOME holding the offline jobs' latest results."""
    if not PROMETHEUS.is_file():
        pytest.skip(f"{PROMETHEUS} is missing: apt-get install prometheus (Debian)")
    home = tmp_path_factory.mktemp("scraped-home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        world = run_offline_jobs(home, monkeypatch)
    port = free_port()
    env = {**os.environ, "RISK_HOME": str(home), "RISK_ENV": "local", "RISK_API_KEYS": KEY}
    log_path = home / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/readyz", process, log_path, "the bento")
            yield url, world
        finally:
            stop_process(process)


@pytest.fixture(scope="module")
def prometheus(bento: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the bento and evaluating the alert rules every second."""
    folder = tmp_path_factory.mktemp("prometheus")
    target = urllib.parse.urlsplit(bento[0]).netloc
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s", "scrape_timeout": "2s"},
        "rule_files": [str(ALERT_RULES)],
        # As infra/docker/prometheus.yml: honor_labels keeps the job gauges' own `job` label.
        "scrape_configs": [
            {
                "job_name": "risk-service",
                "honor_labels": True,
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/-/ready", process, log_path, "prometheus")
            yield url
        finally:
            stop_process(process)
            shutil.rmtree(folder / "data", ignore_errors=True)


def api(prometheus_url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{prometheus_url}{path}{query}", timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


@pytest.fixture(scope="module")
def scraped(bento: tuple[str, Path], prometheus: str) -> str:
    """Load sent through the bento, then several scrapes and rule evaluations after it."""
    from pipelines.decision_requests import sample_requests

    url, world = bento
    bodies = sample_requests(world, 36)  # payments, messages and both, in turn
    statuses = [post_decision(url, body, KEY)[0] for body in bodies]
    assert all(status == 200 for status in statuses), statuses
    bad = [{"transaction": {"amount": "lots"}}, {"text": {}}, {"verdict": "ok"}, {}]
    assert all(400 <= post_decision(url, body, KEY)[0] < 500 for body in bad)

    # wall clock: the Prometheus server stamps its scrapes with the real time, not the tests' clock
    since = time_machine.escape_hatch.time.time()  # wall clock: see above
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        scraped_after_load = [
            t
            for t in targets
            if t["health"] == "up" and _unix(t["lastScrape"]) > since + SCRAPES_WANTED
        ]
        # rate() needs two samples of the load's series in its window; a slow scrape of the
        # merged multiprocess files can miss one, so wait for the samples themselves.
        if scraped_after_load and _samples_of_the_load(prometheus) >= SCRAPES_WANTED:
            break
        time.sleep(1)
    else:
        pytest.fail(
            f"fewer than {SCRAPES_WANTED} samples of the load within 120 s "
            f"({_samples_of_the_load(prometheus)}); targets: {targets}"
        )
    return prometheus


def _samples_of_the_load(prometheus: str) -> int:
    query = "min(count_over_time(risk_request_duration_seconds_count[5m]))"
    result = api(prometheus, "/api/v1/query", query=query)["result"]
    return int(float(result[0]["value"][1])) if result else 0


def _unix(timestamp: str) -> float:
    return pd.Timestamp(timestamp).timestamp()


# -- the scrape ----------------------------------------------------------------------------------


def test_the_alert_rules_loaded_and_evaluate(scraped: str) -> None:
    expected = {group["name"] for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]}

    groups = api(scraped, "/api/v1/rules")["groups"]

    assert {group["name"] for group in groups} == expected
    unhealthy = [
        (rule["name"], rule["health"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert not unhealthy, f"rules not evaluated cleanly: {unhealthy}"
    assert sum(len(group["rules"]) for group in groups) == len(alert_rules())


@pytest.mark.parametrize("expr", queries())
def test_every_dashboard_and_alert_query_returns_data(scraped: str, expr: str) -> None:
    result = api(scraped, "/api/v1/query", query=expr)["result"]

    assert result, f"no series for {expr!r} after the load (is the metric ever set here?)"
