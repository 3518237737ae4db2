"""The ``aws`` profile for real, against local S3 (moto), PostgreSQL and Redis.

simulate → upload → features-build → apply → materialize-incremental → drift → outcomes, through
the ``riskctl`` commands the scheduled tasks run; then a service task publishes what they stored.
MLflow's artifacts go to their bucket. Training, promotion, serving and deciding are not here yet:
training a model the gates accept takes minutes on this machine (see the report of issue 20).
Nothing but caches may land on the task's disk (``RISK_HOME``): in AWS it is gone with the task.
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
from prometheus_client import REGISTRY

from decisioning import storage
from decisioning.audit import AuditStore
from decisioning.decision import DecisionTimestamps, RiskDecision
from decisioning.metrics import publish_stored_results
from decisioning.operations import FLAG_QUALITY_RESULT, OperationsStore, drift_result_name
from pipelines.cli import main
from pipelines.jobs.scheduled import run_job
from tests.aws.conftest import AwsWorld, files_under


def test_a_world_in_s3_is_built_materialized_and_monitored_leaving_no_local_file(
    aws_world: AwsWorld, small_world_dir: Path
) -> None:
    settings = aws_world.settings()
    # given a simulated world uploaded to the data bucket
    uploaded = storage.upload_folder(small_world_dir, settings.data_location)
    assert f"{settings.data_location}/transactions.parquet" in uploaded

    # when the scheduled jobs and the apply step run as their tasks do
    assert main(["jobs", "run", "features-build"]) == 0
    assert main(["features", "apply"]) == 0
    assert main(["jobs", "run", "materialize-incremental"]) == 0
    assert main(["jobs", "run", "drift"]) == 0
    # and, once the service has audited decisions (written here as it writes them), outcomes
    decided = _audit_decisions(settings.audit.url, small_world_dir / "transactions.parquet")
    assert main(["jobs", "run", "outcomes"]) == 0

    # then the tables, the registry and the reports are objects in S3
    keys = _keys(aws_world.data_bucket)
    for table in ("customer_activity", "customer_attributes", "terminal_risk"):
        assert f"data/features/{table}.parquet" in keys, f"{table} not in S3: {sorted(keys)}"
    assert "feast/registry.db" in keys, "the Feast registry lives in S3"
    assert any(key.endswith("drift_report.html") for key in keys), "the drift report is in S3"
    # and the registry's file sources read S3, so a task on an empty disk finds the tables
    activity = storage.read_parquet(f"{settings.features_location}/customer_activity.parquet")
    assert len(activity) == len(pd.read_parquet(small_world_dir / "transactions.parquet"))

    # and any service task publishes the jobs' successes and the drift scores from the store
    store = OperationsStore.open(settings.operations.url)
    try:
        assert store.latest_result(drift_result_name("transactions")) is not None
        quality = store.latest_result(FLAG_QUALITY_RESULT)
        publish_stored_results(store)
    finally:
        store.close()
    assert quality is not None and quality["labelled_decisions"] == decided
    declined = REGISTRY.get_sample_value(
        "risk_flag_precision", {"action": "decline", "category": "all", "cohort": "all"}
    )
    assert declined == 1.0, "every decline in this audit was a labelled fraud"
    assert any(key.endswith("outcomes.json") for key in _keys(aws_world.data_bucket))
    for job in ("features-build", "materialize-incremental", "drift", "outcomes"):
        published = REGISTRY.get_sample_value(
            "risk_job_last_success_timestamp_seconds", {"job": job}
        )
        assert published and published > 0, f"{job}'s success is not published"

    # and nothing but caches was written to the task's disk
    assert files_under(aws_world.home) == set(), "RISK_HOME must stay empty in the aws profile"


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
    assert files_under(aws_world.home) == set()


def test_mlflow_artifacts_go_to_the_artifact_bucket(aws_world: AwsWorld) -> None:
    import mlflow

    from registry.tracking import ensure_experiment, mlflow_session

    settings = aws_world.settings()
    with mlflow_session(settings.mlflow) as client:
        experiment = ensure_experiment(client, "aws-artifacts", settings.mlflow.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_text("thresholds and plots land here", "notes/readme.txt")
    bucket = settings.mlflow.artifact_root.removeprefix("s3://").split("/")[0]
    keys = _keys(bucket)
    assert any(key.endswith(f"{run.info.run_id}/artifacts/notes/readme.txt") for key in keys), keys
    assert files_under(aws_world.home) == set()


def _audit_decisions(audit_url: str, transactions: Path) -> int:
    """Decline each labelled fraud and approve each labelled genuine payment of a sample, in the
    audit store, as the decision service records them; return how many."""
    payments = pd.read_parquet(transactions)
    labelled = payments[payments["label"].notna()]
    sample = pd.concat(
        [labelled[labelled["label"] == 1].head(5), labelled[labelled["label"] == 0].head(15)]
    )
    audit = AuditStore.open(audit_url)
    try:
        for payment in sample.itertuples():
            fraud = payment.label == 1
            decision = RiskDecision(
                decision_id=f"dec_{payment.transaction_id}",
                subject="transaction",
                risk_score=0.9 if fraud else 0.1,
                risk_category="fraud.card_testing" if fraud else "fraud.none",
                action="decline" if fraud else "approve",
                policy_version="p1",
                timestamps=DecisionTimestamps(
                    event=payment.occurred_at, decided=payment.occurred_at
                ),
                trace_id="0" * 32,
                input_hash="h",
            )
            transaction = {
                "transaction_id": str(payment.transaction_id),
                "customer_id": str(payment.customer_id),
            }
            audit.append(
                "decision",
                decision.decision_id,
                {
                    "decision": decision.model_dump(mode="json"),
                    "request": {"transaction": transaction},
                },
            )
    finally:
        audit.close()
    return len(sample)


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
