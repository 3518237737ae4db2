"""The scheduled jobs as functions of settings and a time, and the one way to run them.

Each job reads the profile's data location (``<data>/transactions.parquet``, local or S3) and
writes only to shared places: feature tables under the features location, the online store, the
MLflow registry, reports under the reports location and results in the operations store. A
success is recorded in the operations store with what the job did, and every service task
publishes the time as ``risk_job_last_success_timestamp_seconds{job}``; a failure records
nothing, so the gauge stops moving and the lateness alert fires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from decisioning.adapters import storage
from decisioning.adapters.operations import JobRun, operations_store
from decisioning.core.events import utc_now
from decisioning.settings import Settings
from pipelines.jobs.errors import NotEnoughHistory, UnknownJob
from registry.names import FRAUD_DETECTOR

logger = logging.getLogger(__name__)

Summary = dict[str, Any]
Job = Callable[[Settings, datetime], Summary]
# Drift compares the latest week of payments with the four weeks before it.
DRIFT_CURRENT_WINDOW = timedelta(days=7)
DRIFT_REFERENCE_WINDOW = timedelta(days=28)


def transactions_location(settings: Settings) -> str:
    """The payments every job reads: ``transactions.parquet`` in the profile's data location."""
    return storage.join(settings.data_location, "transactions.parquet")


def build_features_since_last_day(settings: Settings, now: datetime) -> Summary:
    """Rebuild the feature tables when the data holds a day past the last one built.

    The tables are computed over all payments: a customer's profile (payments before, usual
    amount) counts every earlier payment, so the new days cannot be computed from themselves.
    With no new day the job does nothing and still succeeds.
    """
    from pipelines.features.build import build_feature_tables
    from pipelines.features.jobs import customers_beside, load_transactions
    from pipelines.ingest import read_table

    source = transactions_location(settings)
    with operations_store(settings.operations.url) as store:
        previous = store.last_success("features-build")
    built_until = (previous.summary.get("built_until") if previous else None) or ""
    checked = load_transactions(source)
    last_day = checked.frame["occurred_at"].max().date().isoformat()
    if built_until and last_day <= built_until:
        logger.info("no day after %s in %s: features are up to date", built_until, source)
        return {"built_until": built_until, "rebuilt": False}
    customers = customers_beside(source)
    tables = build_feature_tables(
        checked.frame, read_table(customers) if customers is not None else None
    )
    written = tables.write(settings.features_location)
    return {
        "built_until": last_day,
        "previous_built_until": built_until or None,
        "rebuilt": True,
        "payments": len(checked.frame),
        "tables": written,
    }


def materialize_new_interval(settings: Settings, now: datetime) -> Summary:
    """Load online what each batch view gained since its last materialization, up to now."""
    from pipelines.features.jobs import materialize_new_interval as materialize

    loaded = materialize(settings, now)
    return {
        "intervals": {
            view: [start.isoformat(), end.isoformat()]
            for view, (start, end) in loaded.intervals.items()
        },
        "seeded_customers": loaded.seeded_customers,
    }


def retrain_challenger(settings: Settings, now: datetime) -> Summary:
    """Train the fraud scorer on the data and register it as ``@challenger``.

    Promotion stays a person's decision: ``riskctl registry promote`` runs the gates then.
    """
    from pipelines.fraud.training import train_and_register

    version, trained = train_and_register(settings, transactions_location(settings))
    return {"model": FRAUD_DETECTOR, "version": version, "metrics": dict(trained.metrics)}


def drift_of_latest_week(settings: Settings, now: datetime) -> Summary:
    """Compare the latest week of payments with the four weeks before it."""
    from pipelines.commands.reading import reading_config
    from pipelines.ingest import read_table
    from pipelines.monitoring.runs import run_drift

    source = transactions_location(settings)
    raw = read_table(source)
    times = pd.to_datetime(raw["occurred_at"], utc=True, format="mixed")
    end = times.max()
    current = times > end - DRIFT_CURRENT_WINDOW
    reference = ~current & (times > end - DRIFT_CURRENT_WINDOW - DRIFT_REFERENCE_WINDOW)
    if not current.any() or not reference.any():
        raise NotEnoughHistory(f"{source}: no payments in one of the two windows drift compares")
    run = run_drift(
        settings,
        raw[reference].reset_index(drop=True),
        raw[current].reset_index(drop=True),
        reading_config(settings),
        sources=(f"{source} (reference window)", f"{source} (current window)"),
    )
    return {"drifted": run.document["drifted"], "report": run.written}


def outcomes_as_of_now(settings: Settings, now: datetime) -> Summary:
    """Precision and recall of the audited decisions against the labels known now."""
    from pipelines.commands.reading import reading_config
    from pipelines.monitoring.runs import run_outcomes

    run = run_outcomes(settings, transactions_location(settings), now, reading_config(settings))
    return {"labelled_decisions": run.document["labelled_decisions"], "report": run.report}


JOBS: Mapping[str, Job] = {
    "features-build": build_features_since_last_day,
    "materialize-incremental": materialize_new_interval,
    "retrain": retrain_challenger,
    "drift": drift_of_latest_week,
    "outcomes": outcomes_as_of_now,
}


def run_job(settings: Settings, name: str, now: datetime | None = None) -> JobRun:
    """Run the job called ``name`` and record its success; a failure raises, recording nothing."""
    job = JOBS.get(name)
    if job is None:
        raise UnknownJob(f"no job {name!r}; choose one of {', '.join(JOBS)}")
    moment = now or utc_now()
    logger.info("running job %s as of %s", name, moment.isoformat())
    summary = job(settings, moment)
    with operations_store(settings.operations.url) as store:
        return store.record_success(name, summary)
