"""Every Prometheus metric of the platform, in one module, so dashboards and alerts have one source.

The objects live in prometheus-client's default registry: under ``bentoml serve`` each worker
starts with ``PROMETHEUS_MULTIPROC_DIR`` already set, so these values go to the shared
multiprocess files and appear at the service's own ``/metrics`` beside BentoML's metrics. Gauges
say how workers combine (``multiprocess_mode``), which matters only in that mode. Label values
are small closed sets (routes, model versions, taxonomy codes, actions, causes, features, feature
views): never ids or anything a customer typed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, get_args

from prometheus_client import Counter, Gauge, Histogram

from decisioning.core.decision import RiskDecision
from decisioning.core.policy import DegradationCause

if TYPE_CHECKING:
    from decisioning.adapters.operations import OperationsStore

logger = logging.getLogger(__name__)

NO_MODEL = "none"
DRIFT_KINDS = ("transactions", "texts")
LLM_OUTCOMES = ("ok", "error")
# ok: explained; unavailable: stored as "explanation unavailable"; dropped: never stored (queue
# full, or past the shutdown deadline); failed: the explainer raised, nothing stored.
EXPLANATION_OUTCOMES = ("ok", "unavailable", "dropped", "failed")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "risk_request_duration_seconds",
    "Time to answer a request, per route and model versions (p50/p95/p99 via PromQL).",
    ["route", "model_version"],
    buckets=LATENCY_BUCKETS,
)
REQUEST_ERRORS = Counter(
    "risk_request_errors",
    "Requests answered with an error, per route and model versions.",
    ["route", "model_version"],
)
DECISIONS = Counter(
    "risk_decisions",
    "Decisions made, by risk category and action.",
    ["category", "action"],
)
DEGRADED_DECISIONS = Counter(
    "risk_degraded_decisions",
    "Decisions that used a fallback, by what was missing, stale or failed.",
    ["cause"],
)
STALE_FEATURE_DECISIONS = Counter(
    "risk_stale_feature_decisions",
    "Decisions whose batch features were older than their view's TTL, served as unknown.",
)
# A time, not an age: PromQL's ``time() - ...`` keeps ageing if the refresh ever stops.
FEATURES_MATERIALIZED = Gauge(
    "risk_feature_materialized_timestamp_seconds",
    "Unix time up to which each batch feature view was last materialized online (0: never).",
    ["feature_view"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFT = Gauge(
    "risk_feature_drift_score",
    "Latest drift score per feature (PSI; ROC AUC of a domain classifier for embeddings).",
    ["feature", "method"],
    multiprocess_mode="mostrecent",
)
LLM_CALLS = Counter(
    "risk_llm_calls",
    "Calls through the LLM gateway, by provider and outcome.",
    ["provider", "outcome"],
)
EXPLANATIONS = Counter(
    "risk_explanations",
    "Explanations of review and escalate decisions, by outcome (ok, unavailable, dropped, failed).",
    ["outcome"],
)
LLM_SPANS_DROPPED = Counter(
    "risk_llm_spans_dropped",
    "Facts an LLM extraction returned and the platform dropped: a span not holding its text.",
)
FLAG_PRECISION = Gauge(
    "risk_flag_precision",
    "Share of flagged decisions (review, decline) later labelled as risk, by category and cohort.",
    ["action", "category", "cohort"],
    multiprocess_mode="mostrecent",
)
FLAG_RECALL = Gauge(
    "risk_flag_recall",
    "Share of labelled risk that was flagged (review, decline), by category and cohort.",
    ["action", "category", "cohort"],
    multiprocess_mode="mostrecent",
)
JOB_LAST_SUCCESS = Gauge(
    "risk_job_last_success_timestamp_seconds",
    "Unix time of each scheduled job's latest success (0: never), from the operations store.",
    ["job"],
    multiprocess_mode="mostrecent",
)

ALL_METRICS = (
    REQUEST_SECONDS,
    REQUEST_ERRORS,
    DECISIONS,
    DEGRADED_DECISIONS,
    STALE_FEATURE_DECISIONS,
    FEATURES_MATERIALIZED,
    FEATURE_DRIFT,
    LLM_CALLS,
    EXPLANATIONS,
    LLM_SPANS_DROPPED,
    FLAG_PRECISION,
    FLAG_RECALL,
    JOB_LAST_SUCCESS,
)


def exposed_names() -> frozenset[str]:
    """Every series name these metrics expose (with ``_total``, ``_bucket`` and so on)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    families = [family for metric in ALL_METRICS for family in metric.describe()]
    return frozenset(
        f"{family.name}{suffix}" for family in families for suffix in suffixes[family.type]
    )


def initialise_known_series(llm_providers: Iterable[str]) -> None:
    """Create the counters' closed label sets at zero, once per service process at start-up.

    A counter series born on its first increment hides that increment from ``rate()``, and a
    ratio over a series that does not exist yet is "no data" instead of 0: the degraded share
    of a healthy service, the failure share of an LLM gateway not yet called.
    """
    for provider in llm_providers:
        for outcome in LLM_OUTCOMES:
            LLM_CALLS.labels(provider, outcome)
    for cause in get_args(DegradationCause):
        DEGRADED_DECISIONS.labels(cause)
    for outcome in EXPLANATION_OUTCOMES:
        EXPLANATIONS.labels(outcome)


def model_version_label(decision: RiskDecision) -> str:
    """``fraud-detector:3,conduct-classifier:2``: which champions answered, in a stable order."""
    versions = sorted(f"{model.name}:{model.version}" for model in decision.model_versions)
    return ",".join(versions) or NO_MODEL


def record_decision(decision: RiskDecision, route: str, seconds: float) -> None:
    """Count one answered decision: latency, category and action, fallbacks."""
    REQUEST_SECONDS.labels(route, model_version_label(decision)).observe(seconds)
    DECISIONS.labels(decision.risk_category, decision.action).inc()
    for degradation in decision.degraded:
        # ``component`` holds the policy's closed set of causes; ``cause`` is free detail text.
        DEGRADED_DECISIONS.labels(degradation.component).inc()
    if decision.features_stale:
        STALE_FEATURE_DECISIONS.inc()


def record_error(route: str, model_version: str = NO_MODEL) -> None:
    """Count one request answered with an error (the model versions loaded, when known)."""
    REQUEST_ERRORS.labels(route, model_version).inc()


def record_llm_call(provider: str, outcome: str) -> None:
    """Count one LLM gateway call; ``outcome`` is one of :data:`LLM_OUTCOMES`."""
    LLM_CALLS.labels(provider, outcome).inc()


def record_explanation(outcome: str) -> None:
    """Count one decision's explanation; ``outcome`` is one of :data:`EXPLANATION_OUTCOMES`."""
    EXPLANATIONS.labels(outcome).inc()


def record_spans_dropped(count: int) -> None:
    """Count extracted facts dropped because their span did not hold (or repeated, or overran)."""
    if count > 0:
        LLM_SPANS_DROPPED.inc(count)


def publish_materialization_times(materialized_until: Mapping[str, datetime | None]) -> None:
    """Set, per batch feature view, the time its online values were last materialized up to;
    a view registered but never materialized reads 0, so its age is as large as it gets."""
    for feature_view, until in materialized_until.items():
        FEATURES_MATERIALIZED.labels(feature_view).set(0.0 if until is None else until.timestamp())


def publish_drift_scores(scores: Iterable[tuple[str, str, float]]) -> None:
    """Set the drift gauge from ``(feature, method, score)`` triples of the latest drift run."""
    for feature, method, score in scores:
        FEATURE_DRIFT.labels(feature, method).set(score)


def publish_flag_quality(rows: Iterable[Mapping[str, object]]) -> None:
    """Set precision and recall gauges from outcome-report rows (action, category, cohort)."""
    for row in rows:
        labels = (str(row["action"]), str(row["category"]), str(row["cohort"]))
        for gauge, key in ((FLAG_PRECISION, "precision"), (FLAG_RECALL, "recall")):
            value = row.get(key)
            if isinstance(value, int | float):
                gauge.labels(*labels).set(float(value))


def publish_job_successes(jobs: Iterable[str], last_successes: Mapping[str, datetime]) -> None:
    """Set each job's last-success time; a job that never succeeded reads 0, the oldest time."""
    for job in jobs:
        until = last_successes.get(job)
        JOB_LAST_SUCCESS.labels(job).set(0.0 if until is None else until.timestamp())


def publish_stored_results(store: OperationsStore) -> None:
    """Set the drift, flag-quality and job gauges from the operations store.

    Monitoring runs and scheduled jobs are batch tasks with no server to scrape; they leave their
    latest results in the store every service task reads (``decisioning.adapters.operations``).
    """
    from decisioning.adapters.operations import FLAG_QUALITY_RESULT, JOB_NAMES, drift_result_name

    for kind in DRIFT_KINDS:
        drift = store.latest_result(drift_result_name(kind))
        if drift is not None:
            publish_drift_scores(
                (str(row["feature"]), str(row["method"]), float(row["score"]))
                for row in drift.get("features", [])
            )
    quality = store.latest_result(FLAG_QUALITY_RESULT)
    if quality is not None:
        publish_flag_quality(quality.get("rows", []))
    publish_job_successes(JOB_NAMES, store.last_successes())
