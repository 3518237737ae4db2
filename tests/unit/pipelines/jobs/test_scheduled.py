"""``riskctl jobs run NAME`` in the local profile: a success is recorded with what the job did,
a failure records nothing, and the feature build waits for a new day."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from decisioning.adapters.operations import JOB_NAMES, drift_result_name, operations_store
from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.commands.jobs import JOB_NAMES as SPELLED_IN_CLI
from pipelines.jobs.scheduled import JOBS


@pytest.fixture
def data_home(risk_home: Path, small_world_dir: Path) -> Path:
    shutil.copytree(small_world_dir, risk_home / "data")
    return risk_home


def test_the_jobs_the_gauge_names_and_the_cli_offers_are_one_list() -> None:
    assert tuple(JOBS) == JOB_NAMES == SPELLED_IN_CLI


def test_an_unknown_job_is_refused(risk_home: Path) -> None:
    assert main(["jobs", "run", "backfill"]) == 2


def test_features_build_records_its_day_and_waits_for_a_new_one(
    data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when the job runs twice on the same data
    assert main(["jobs", "run", "features-build"]) == 0
    first = (data_home / "features" / "customer_activity.parquet").stat().st_mtime_ns
    assert main(["jobs", "run", "features-build"]) == 0

    # then the first run built the tables and the second, finding no new day, left them alone
    with operations_store(load_settings().operations.url) as store:
        last = store.last_success("features-build")
    assert last is not None and last.summary["rebuilt"] is False, last
    assert last.summary["built_until"], "the last built day is kept for the next run"
    assert (data_home / "features" / "customer_activity.parquet").stat().st_mtime_ns == first
    assert main(["jobs", "list"]) == 0
    assert "features-build" in capsys.readouterr().out


def test_drift_compares_the_latest_week_and_stores_its_scores(data_home: Path) -> None:
    assert main(["jobs", "run", "drift"]) == 0
    with operations_store(load_settings().operations.url) as store:
        assert store.latest_result(drift_result_name("transactions")) is not None
        assert store.last_success("drift") is not None
    assert any((data_home / "monitoring" / "drift").rglob("drift_report.html"))


def test_a_failed_job_records_no_success(
    data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given no audited decision to measure, outcomes cannot run
    code = main(["jobs", "run", "outcomes"])

    assert code == 1
    assert "audited payment decisions" in capsys.readouterr().err
    with operations_store(load_settings().operations.url) as store:
        assert store.last_success("outcomes") is None, "a failure must leave the gauge ageing"
