"""``record_decision`` and friends move the metrics that the dashboards and alerts read."""

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from decisioning.core.decision import DecisionTimestamps, Degradation, ModelVersion, RiskDecision
from decisioning.telemetry.metrics import (
    exposed_names,
    initialise_known_series,
    publish_drift_scores,
    publish_flag_quality,
    publish_materialization_times,
    record_decision,
    record_error,
)

DECIDED = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def decision(**changes: object) -> RiskDecision:
    values: dict[str, object] = {
        "decision_id": "dec_1",
        "subject": "transaction",
        "risk_score": 0.8,
        "risk_category": "fraud.card_testing",
        "action": "decline",
        "model_versions": (
            ModelVersion(name="fraud-detector", version="3"),
            ModelVersion(name="conduct-classifier", version="2"),
        ),
        "feature_service": "fraud_v1",
        "policy_version": "p1",
        "timestamps": DecisionTimestamps(
            event=DECIDED, features_as_of=DECIDED - timedelta(seconds=90), decided=DECIDED
        ),
        "trace_id": "0" * 32,
        "input_hash": "h",
    }
    return RiskDecision.model_validate({**values, **changes})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_decision_moves_latency_and_volume() -> None:
    versions = "conduct-classifier:2,fraud-detector:3"
    before_count = sample(
        "risk_request_duration_seconds_count", route="/v1/decisions", model_version=versions
    )
    before_decisions = sample(
        "risk_decisions_total", category="fraud.card_testing", action="decline"
    )

    record_decision(decision(), "/v1/decisions", 0.042)

    assert (
        sample("risk_request_duration_seconds_count", route="/v1/decisions", model_version=versions)
        == before_count + 1
    ), "latency is labelled by route and by the sorted model versions that answered"
    assert (
        sample("risk_decisions_total", category="fraud.card_testing", action="decline")
        == before_decisions + 1
    )


def test_each_fallback_is_counted_by_its_cause_not_its_detail_text() -> None:
    before = sample("risk_degraded_decisions_total", cause="features_stale")
    degraded = (
        Degradation(component="features_stale", cause="age 900s > 300s", fallback="review"),
    )

    record_decision(decision(action="review", degraded=degraded), "/v1/decisions", 0.01)

    assert sample("risk_degraded_decisions_total", cause="features_stale") == before + 1
    assert sample("risk_degraded_decisions_total", cause="age 900s > 300s") == 0.0


def test_errors_drift_and_flag_quality_are_published() -> None:
    before = sample("risk_request_errors_total", route="/v1/decisions", model_version="none")

    record_error("/v1/decisions")
    publish_drift_scores([("amount", "psi", 0.83)])
    publish_flag_quality(
        [{"action": "decline", "category": "all", "cohort": "vulnerable", "precision": 0.5}]
    )

    assert sample("risk_request_errors_total", route="/v1/decisions", model_version="none") == (
        before + 1
    )
    assert sample("risk_feature_drift_score", feature="amount", method="psi") == 0.83
    labels = {"action": "decline", "category": "all", "cohort": "vulnerable"}
    assert sample("risk_flag_precision", **labels) == 0.5


def test_materialization_times_are_published_and_a_view_never_materialized_reads_zero() -> None:
    # given one batch view materialized up to a moment and one never materialized
    until = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    publish_materialization_times({"terminal_risk": until, "customer_attributes": None})

    name = "risk_feature_materialized_timestamp_seconds"
    assert sample(name, feature_view="terminal_risk") == until.timestamp()
    assert REGISTRY.get_sample_value(name, {"feature_view": "customer_attributes"}) == 0.0, (
        "a view never materialized must read as the oldest time there is, not be left out"
    )


def test_exposed_names_include_the_series_promql_uses() -> None:
    names = exposed_names()

    assert {"risk_request_duration_seconds_bucket", "risk_decisions_total"} <= names
    assert "risk_decisions" not in names, "counters are exposed with _total only"


def test_a_decision_with_stale_batch_features_is_counted_once() -> None:
    before = sample("risk_stale_feature_decisions_total")

    record_decision(decision(features_stale=("terminal_fraud_rate_7d",)), "/v1/decisions", 0.01)
    record_decision(decision(), "/v1/decisions", 0.01)

    assert sample("risk_stale_feature_decisions_total") == before + 1


def test_explanation_and_dropped_span_series_exist_from_start_up() -> None:
    initialise_known_series(["OfflineProvider"])

    for outcome in ("ok", "unavailable", "dropped", "failed"):
        assert (
            REGISTRY.get_sample_value("risk_explanations_total", {"outcome": outcome}) is not None
        ), f"risk_explanations_total{{outcome={outcome!r}}} must exist at 0 before the first"
    assert REGISTRY.get_sample_value("risk_llm_spans_dropped_total") is not None
    assert {"risk_explanations_total", "risk_llm_spans_dropped_total"} <= exposed_names()
