"""The operations store keeps the latest job success and monitoring result; the gauges read it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from decisioning.adapters.operations import (
    FLAG_QUALITY_RESULT,
    JOB_NAMES,
    OperationsStore,
    drift_result_name,
)
from decisioning.telemetry.metrics import publish_stored_results
from decisioning.telemetry.stored_results import StoredResultsWatch


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OperationsStore]:
    opened = OperationsStore.open(f"sqlite:///{tmp_path / 'nested' / 'operations.db'}")
    yield opened
    opened.close()


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_the_latest_success_of_each_job_is_kept(store: OperationsStore) -> None:
    first, second = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)
    store.record_success("drift", {"drifted": []}, at=first)
    store.record_success("drift", {"drifted": ["amount"]}, at=second)
    store.record_success("outcomes", {}, at=first)

    last = store.last_success("drift")
    assert last is not None and last.succeeded_at == second
    assert last.summary == {"drifted": ["amount"]}, "the latest run's summary, not the first"
    assert store.last_successes() == {"drift": second, "outcomes": first}
    assert store.last_success("retrain") is None


def test_a_second_task_reads_what_the_first_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'operations.db'}"
    writer, reader = OperationsStore.open(url), OperationsStore.open(url)
    try:
        writer.save_result(drift_result_name("transactions"), {"features": [], "v": 1})
        writer.save_result(drift_result_name("transactions"), {"features": [], "v": 2})
        assert reader.latest_result(drift_result_name("transactions")) == {"features": [], "v": 2}
        assert reader.latest_result(drift_result_name("texts")) is None
    finally:
        writer.close()
        reader.close()


def test_the_service_publishes_stored_results_and_jobs_never_run_read_zero(
    store: OperationsStore,
) -> None:
    # given a drift run, an outcomes run and one job's success in the store
    store.save_result(
        drift_result_name("transactions"),
        {"features": [{"feature": "op_test_amount", "method": "psi", "score": 0.42}]},
    )
    store.save_result(
        FLAG_QUALITY_RESULT,
        {"rows": [{"action": "op_test", "category": "all", "cohort": "all", "precision": 0.8}]},
    )
    succeeded = datetime(2026, 6, 3, 12, tzinfo=UTC)
    store.record_success("materialize-incremental", {}, at=succeeded)

    # when a service task publishes what is stored
    publish_stored_results(store)

    # then every gauge reads the store
    assert gauge("risk_feature_drift_score", feature="op_test_amount", method="psi") == 0.42
    precision = gauge("risk_flag_precision", action="op_test", category="all", cohort="all")
    assert precision == 0.8
    assert (
        gauge("risk_job_last_success_timestamp_seconds", job="materialize-incremental")
        == succeeded.timestamp()
    )
    never = [job for job in JOB_NAMES if job != "materialize-incremental"]
    assert all(gauge("risk_job_last_success_timestamp_seconds", job=job) == 0.0 for job in never), (
        "a job that never succeeded reads 0, so its lateness alert fires"
    )


def test_the_watch_survives_a_store_it_cannot_open() -> None:
    watch = StoredResultsWatch("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert watch.publish_once() is False, "a failed read is reported, never raised"
