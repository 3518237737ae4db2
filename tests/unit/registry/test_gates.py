import pandas as pd
import pytest

from registry.errors import GatesConfigError
from registry.gates import GateSpec, evaluate_gates, load_gates
from tests.support.configs import CONFIGS

HOLDOUT = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})


def scorer(answers: list[str]):
    return lambda frame: pd.DataFrame({"category": answers[: len(frame)]})


@pytest.fixture
def gates():
    return load_gates(CONFIGS / "gates.yaml", "conduct-classifier")


def test_no_champion_passes_the_comparison_but_not_the_floor(gates) -> None:
    results = evaluate_gates(gates, HOLDOUT, scorer(["y", "x", "y", "x"]), None, {})
    verdicts = {r.name: r.passed for r in results}
    assert verdicts == {"macro_f1_vs_champion": True, "macro_f1_floor": False}


def test_worse_than_champion_on_the_same_rows_fails(gates) -> None:
    champion, candidate = scorer(["x", "y", "x", "y"]), scorer(["x", "y", "x", "x"])
    results = {r.name: r for r in evaluate_gates(gates, HOLDOUT, candidate, champion, {})}
    assert not results["macro_f1_vs_champion"].passed
    assert "vs champion 1.0000" in results["macro_f1_vs_champion"].detail


def test_equal_to_champion_passes(gates) -> None:
    perfect = scorer(["x", "y", "x", "y"])
    assert all(r.passed for r in evaluate_gates(gates, HOLDOUT, perfect, perfect, {}))


def test_model_without_gates_cannot_be_promoted() -> None:
    with pytest.raises(GatesConfigError, match="no gates for churn-model"):
        load_gates(CONFIGS / "gates.yaml", "churn-model")


def test_both_registered_models_have_gates() -> None:
    for name in ("fraud-detector", "conduct-classifier"):
        assert load_gates(CONFIGS / "gates.yaml", name).gates, f"{name} has no gates"


FRAUD_HOLDOUT = pd.DataFrame(
    {
        "amount": [10.0, 20.0, 30.0, 40.0],
        "card_id": ["c1", "c2", "c3", "c4"],
        "customer_id": ["u1", "u2", "u3", "u4"],
        "occurred_at": pd.to_datetime(["2026-01-01"] * 4, utc=True),
        "label": [1, 0, 1, 0],
    }
)
PASSED_TAGS = {
    "gx.training_set": "passed: training-set: all 5 expectations passed",
    "drift.training_vs_recent": "passed: PSI over 12 features, bound 0.2; max amount 0.010",
}


def fraud_scorer(scores: list[float]):
    def score(frame: pd.DataFrame) -> pd.DataFrame:
        assert "card_id" not in frame.columns, "context columns must not reach the model"
        return pd.DataFrame({"score": scores[: len(frame)]})

    return score


@pytest.fixture
def fraud_gates():
    return load_gates(CONFIGS / "gates.yaml", "fraud-detector")


def test_fraud_section_has_every_gate_the_issue_lists(fraud_gates) -> None:
    kinds = {(g.kind, g.metric or g.tag) for g in fraud_gates.gates}
    assert kinds >= {
        ("tag_passed", "gx.training_set"),
        ("tag_passed", "drift.training_vs_recent"),
        ("metric_vs_champion", "average_precision"),
        ("metric_vs_champion", "card_precision_at_100"),
        ("metric_at_most", "calibration_error"),
    }, "a gate of issue 4 is missing from configs/gates.yaml"


def test_well_ranked_calibrated_candidate_passes_every_fraud_gate(fraud_gates) -> None:
    # given a candidate that ranks and calibrates the holdout perfectly, and no champion
    candidate = fraud_scorer([0.99, 0.01, 0.99, 0.01])
    # when / then
    results = evaluate_gates(fraud_gates, FRAUD_HOLDOUT, candidate, None, PASSED_TAGS)
    assert all(r.passed for r in results), [r.as_tag() for r in results if not r.passed]


def test_worse_card_precision_than_champion_fails_its_gate(fraud_gates) -> None:
    # given one day of 200 cards, 20 of them frauded: investigators check the top 100
    fraud = [1] * 20 + [0] * 180
    day = pd.DataFrame(
        {
            "amount": 1.0,
            "card_id": [f"c{i}" for i in range(200)],
            "customer_id": [f"u{i}" for i in range(200)],
            "occurred_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "label": fraud,
        }
    )
    champion = fraud_scorer([0.9 if f else 0.1 for f in fraud])  # frauds on top
    candidate = fraud_scorer([0.1 if f else 0.9 for f in fraud])  # frauds at the bottom
    # when
    results = {r.name: r for r in evaluate_gates(fraud_gates, day, candidate, champion, {})}
    # then
    gate = results["card_precision_at_100_vs_champion"]
    assert not gate.passed, gate.detail
    assert "card_precision_at_100 0.0000 vs champion 0.2000" in gate.detail, gate.detail


def test_miscalibrated_scores_fail_the_calibration_bound(fraud_gates) -> None:
    # given scores that rank perfectly but claim 60% for genuine payments
    candidate = fraud_scorer([1.0, 0.6, 1.0, 0.6])
    results = {r.name: r for r in evaluate_gates(fraud_gates, FRAUD_HOLDOUT, candidate, None, {})}
    assert results["average_precision_floor"].passed
    assert not results["calibration_error_bound"].passed, results["calibration_error_bound"].detail


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({}, "is missing"),
        ({**PASSED_TAGS, "drift.training_vs_recent": "failed: drift in amount 0.310"}, "failed"),
    ],
)
def test_training_time_check_passes_only_on_a_passed_tag(fraud_gates, tags, reason) -> None:
    candidate = fraud_scorer([0.99, 0.01, 0.99, 0.01])
    results = {r.name: r for r in evaluate_gates(fraud_gates, FRAUD_HOLDOUT, candidate, None, tags)}
    gate = results["drift_training_vs_recent"]
    assert not gate.passed and reason in gate.detail, gate.detail


def test_lower_is_better_metric_cannot_be_a_floor() -> None:
    with pytest.raises(ValueError, match="lower-is-better"):
        GateSpec(
            name="ece", kind="metric_at_least", metric="calibration_error",
            prediction_column="score", minimum=0.1,
        )  # fmt: skip
