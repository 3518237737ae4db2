"""The ``aws`` profile for real, against local S3 (moto), PostgreSQL and Redis.

simulate → upload → features-build → apply → materialize-incremental → drift → retrain → promote
→ serve → decide → outcomes, through the ``riskctl`` commands the scheduled tasks and a person
run; the decision service is built in process (a served bento takes minutes to start here), and
then publishes what the jobs stored. Nothing but caches may land on a task's disk (``RISK_HOME``):
in AWS it is gone with the task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from prometheus_client import REGISTRY

from decisioning.adapters import storage
from decisioning.adapters.audit import AuditStore
from decisioning.adapters.operations import FLAG_QUALITY_RESULT, OperationsStore, drift_result_name
from decisioning.telemetry.metrics import publish_stored_results
from pipelines.cli import main
from pipelines.jobs.scheduled import run_job
from pipelines.simulate import SimulationConfig, simulate_world, write_world
from tests.aws.conftest import AwsWorld, files_under
from tests.support.clock import TRAINING_WORLD_START

JOBS_RUN = ("features-build", "materialize-incremental", "drift", "retrain", "outcomes")


@pytest.fixture(scope="module")
def training_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three weeks of 300 customers, as the fraud training test uses: enough labelled frauds."""
    folder = tmp_path_factory.mktemp("training-world")
    config = SimulationConfig(customers=300, days=21, seed=11, start=TRAINING_WORLD_START)
    write_world(simulate_world(config), folder)
    return folder


def test_a_world_in_s3_goes_from_features_to_measured_decisions_leaving_no_local_file(
    aws_world: AwsWorld, training_world: Path
) -> None:
    settings = aws_world.settings()
    _gates_this_small_world_can_pass(aws_world.config_dir)
    configs_before = _contents(aws_world.config_dir)
    # given a simulated world uploaded to the data bucket
    uploaded = storage.upload_folder(training_world, settings.data_location)
    assert f"{settings.data_location}/transactions.parquet" in uploaded

    # when the scheduled jobs run as their tasks do, and a person applies and promotes
    for step in (
        ["jobs", "run", "features-build"],
        ["features", "apply"],
        ["jobs", "run", "materialize-incremental"],
        ["jobs", "run", "drift"],
        ["jobs", "run", "retrain"],
        ["registry", "promote", "fraud-detector", "--approver", "test", "--reason", "aws tier"],
    ):
        assert main(step) == 0, step
    # and a decision service task decides payments of the last day, then outcomes measures them
    decisions = _decide_last_day(settings, training_world)
    assert main(["jobs", "run", "outcomes"]) == 0

    # then tables, registry, reports and the model's files are objects in S3
    keys = _keys(aws_world.data_bucket)
    for table in ("customer_activity", "customer_attributes", "terminal_risk"):
        assert f"data/features/{table}.parquet" in keys, f"{table} not in S3: {sorted(keys)}"
    assert "feast/registry.db" in keys, "the Feast registry lives in S3"
    for report in ("drift_report.html", "outcomes.json"):
        assert any(key.endswith(report) for key in keys), f"{report} not in S3"
    bucket = settings.mlflow.artifact_root.removeprefix("s3://").split("/")[0]
    assert any(key.endswith("fraud_scorer.pkl") for key in _keys(bucket)), "model not in S3"
    assert any(key.endswith("/thresholds.yaml") for key in _keys(bucket)), (
        "training's thresholds, for people, are an artifact of the model's run"
    )
    # and every payment was scored by the promoted champion, read back from S3
    assert decisions, "no payment decided"
    for decision in decisions:
        assert [m.name for m in decision.model_versions] == ["fraud-detector"], decision
    # and any service task publishes the jobs' successes, drift and precision from the store
    store = OperationsStore.open(settings.operations.url)
    try:
        assert store.latest_result(drift_result_name("transactions")) is not None
        quality = store.latest_result(FLAG_QUALITY_RESULT)
        publish_stored_results(store)
    finally:
        store.close()
    assert quality is not None and quality["decisions"] == len(decisions)
    for job in JOBS_RUN:
        published = REGISTRY.get_sample_value(
            "risk_job_last_success_timestamp_seconds", {"job": job}
        )
        assert published and published > 0, f"{job}'s success is not published"
    # and nothing but caches was written locally: not in RISK_HOME, not in configs/
    assert files_under(aws_world.home) == set(), "RISK_HOME must stay empty in the aws profile"
    assert _contents(aws_world.config_dir) == configs_before, "configs/ are the image's"


def test_materializing_twice_loads_only_the_new_interval_the_second_time(
    aws_world: AwsWorld, small_world_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = aws_world.settings()
    storage.upload_folder(small_world_dir, settings.data_location)
    assert main(["jobs", "run", "features-build"]) == 0
    assert main(["features", "apply"]) == 0
    payments = pd.read_parquet(small_world_dir / "transactions.parquet")
    middle = payments["occurred_at"].min() + timedelta(days=7)
    first_end, second_end = middle.to_pydatetime(), (middle + timedelta(days=2)).to_pydatetime()
    written = _count_online_writes(monkeypatch)

    # when the job runs up to a first time (from scratch, or after the previous test's run)...
    run_job(settings, "materialize-incremental", now=first_end)
    written.clear()
    # ...and again up to a later time
    second = run_job(settings, "materialize-incremental", now=second_end)

    # then the second run starts where the first ended, for every batch view
    intervals = second.summary["intervals"]
    assert intervals["terminal_risk"] == [first_end.isoformat(), second_end.isoformat()], intervals
    # and writes one row per terminal paid at in that interval (plus the view's marker row)
    in_interval = payments[
        (payments["occurred_at"] >= middle) & (payments["occurred_at"] < middle + timedelta(days=2))
    ]
    expected = in_interval["terminal_id"].nunique()
    assert written["terminal_risk"] == expected + 1, (
        f"{written['terminal_risk']} rows written for {expected} terminals paid at in the interval"
    )
    assert written["terminal_risk"] < payments["terminal_id"].nunique(), "not a full reload"
    # and a third run up to the same time has nothing left to load
    written.clear()
    third = run_job(settings, "materialize-incremental", now=second_end)
    assert third.summary["intervals"] == {} and not written, written
    assert files_under(aws_world.home) == set()


def _keys(bucket: str) -> set[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _count_online_writes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Rows Feast writes to the Redis online store, per feature view."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    written: Counter[str] = Counter()
    original = RedisOnlineStore.online_write_batch

    def counting(self: Any, config: Any, table: Any, data: Any, progress: Any) -> Iterator[Any]:
        written[table.name] += len(data)
        return original(self, config, table, data, progress)

    monkeypatch.setattr(RedisOnlineStore, "online_write_batch", counting)
    return written


def _gates_this_small_world_can_pass(config_dir: Path) -> None:
    """Three weeks of 300 customers are enough to train on, not to judge a model: its drift and
    quality gates are the model tier's business. Model selection is off; the gates kept are the
    data check and the comparison with a champion (none yet)."""
    fraud = yaml.safe_load((config_dir / "fraud.yaml").read_text())
    fraud["selection"]["enabled"] = False
    (config_dir / "fraud.yaml").write_text(yaml.safe_dump(fraud))
    gates = yaml.safe_load((config_dir / "gates.yaml").read_text())
    kept = {"gx_training_set", "average_precision_vs_champion"}
    detector = gates["models"]["fraud-detector"]
    detector["gates"] = [gate for gate in detector["gates"] if gate["name"] in kept]
    (config_dir / "gates.yaml").write_text(yaml.safe_dump(gates))


def _decide_last_day(settings: Any, world: Path) -> list[Any]:
    from decisioning.core.engine import DecisionEngine, DecisionRequest
    from decisioning.core.policy import load_policy
    from decisioning.wiring import fraud_pillar
    from pipelines.decision_requests import sample_requests

    requests = [
        DecisionRequest(transaction=body["transaction"])
        for body in sample_requests(world, 12)
        if "transaction" in body
    ]
    audit = AuditStore.open(settings.audit.url)
    try:
        engine = DecisionEngine(
            load_policy(settings.config_path("configs/policy.yaml")),
            audit,
            fraud_pillar(settings),
            None,
        )
        return [engine.decide(request) for request in requests]
    finally:
        audit.close()


def _contents(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in files_under(folder)}
