"""The guard at the fraud model's input: values it cannot take, and any failure, degrade."""

from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from decisioning.adapters.feast.online import OnlineRead
from decisioning.core.decision import ModelVersion
from decisioning.core.events import TransactionEvent
from decisioning.core.policy import load_policy
from decisioning.core.ports import PillarUnavailable
from decisioning.fraud.model import FraudScorer
from decisioning.pillars import (
    FraudScorerPillar,
    _number_out_of_range,
    feature_problems,
    json_value,
    model_input,
)
from tests.support.events import PAYMENT
from tests.unit.decisioning.fraud.test_scorer import scorer  # noqa: F401 - the fixture

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
MODEL = ModelVersion(name="fraud-detector", version="1")
EVENT = TransactionEvent.model_validate(PAYMENT)


def pillar(model: Any, values: Mapping[str, Any]) -> FraudScorerPillar:
    return FraudScorerPillar(
        lambda _: OnlineRead(dict(values), lambda: None), model, MODEL, "fraud_v1", lambda _: model
    )


@pytest.mark.parametrize("ratio", [float("inf"), float("-inf"), 2.45e41, 1e308])
def test_a_feature_beyond_float32_is_scored_as_missing_and_named(
    scorer: FraudScorer,  # noqa: F811
    ratio: float,
) -> None:
    # given features where a ratio to a tiny earlier amount left float32's range
    values = {"velocity_10m_count": 2, "amount_to_usual_ratio": ratio, "segment": "retail"}

    # when the pillar assesses the payment with the real scorer (XGBoost refuses infinities)
    result = pillar(scorer, values).assess(EVENT)

    # then it is scored without the feature, and the decision will say which one was unusable
    assert result.feature_values["amount_to_usual_ratio"] is None
    assert 0.0 <= result.assessment.score <= 1.0
    assert result.problems == (
        ("features_unavailable", "outside the range a model takes: amount_to_usual_ratio"),
    )


def test_nan_is_missing_but_not_a_problem() -> None:
    values, unusable = model_input({"a": float("nan"), "b": 3}, ["a", "b"])

    assert values == {"a": None, "b": 3} and unusable == []


def test_any_scoring_failure_becomes_a_named_degradation() -> None:
    class Broken:
        features = ("velocity_10m_count",)

        def assess(self, values: Mapping[str, Any]) -> Any:
            raise ValueError("Input data contains `inf` or a value too large")

    with pytest.raises(PillarUnavailable) as degraded:
        pillar(Broken(), {"velocity_10m_count": 1}).assess(EVENT)

    assert degraded.value.cause == "fraud_scoring_failed"
    assert "ValueError" in degraded.value.detail


def test_batch_features_the_store_lacks_degrade_the_decision_naming_them() -> None:
    # given a store that lost the terminal's batch row (Redis restarted, not materialized yet)
    values = {"velocity_10m_count": 1, "terminal_fraud_rate_7d": None}

    problems = feature_problems(values, [], ("terminal_fraud_rate_7d",))

    assert problems == (("features_missing", "no online value: terminal_fraud_rate_7d"),)


def test_a_missing_feature_reaches_the_decision_as_a_review(
    scorer: FraudScorer,  # noqa: F811
) -> None:
    values = {"velocity_10m_count": 2, "amount_to_usual_ratio": 1.0, "segment": None}
    read = OnlineRead(values, lambda: None, missing=("segment",))

    result = FraudScorerPillar(lambda _: read, scorer, MODEL, "v", lambda _: scorer).assess(EVENT)

    assert [cause for cause, _ in result.problems] == ["features_missing"]


def test_a_policy_without_a_fallback_for_a_cause_is_refused_at_load(tmp_path: Path) -> None:
    text = (CONFIGS / "policy.yaml").read_text().replace("  features_missing: review\n", "")
    (tmp_path / "policy.yaml").write_text(text)

    with pytest.raises(ValidationError, match="features_missing"):
        load_policy(tmp_path / "policy.yaml")


def test_stale_batch_features_are_named_in_the_result_and_degrade_nothing(
    scorer: FraudScorer,  # noqa: F811
) -> None:
    values = {"velocity_10m_count": 2, "amount_to_usual_ratio": 1.0, "segment": "retail"}
    read = OnlineRead(values, lambda: None, stale=("terminal_fraud_rate_7d",))

    result = FraudScorerPillar(lambda _: read, scorer, MODEL, "v", lambda _: scorer).assess(EVENT)

    assert result.features_stale == ("terminal_fraud_rate_7d",)
    assert result.problems == ()


VALUES = (
    st.none()
    | st.floats()
    | st.integers()  # past int64 too: float() of a huge one overflows
    | st.booleans()
    | st.text(max_size=5)
    | st.floats().map(np.float64)
    | st.floats(width=32).map(np.float32)
    | st.integers(-(2**31), 2**31 - 1).map(np.int64)
    | st.datetimes(timezones=st.just(UTC))
)


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), VALUES))
def test_the_guards_quick_checks_take_what_its_general_ones_take(raw: dict[str, Any]) -> None:
    # given the general rule, value by value (what the guard did before its inline checks)
    names = ["a", "b", "c", "d"]
    try:
        [_number_out_of_range(raw.get(name)) for name in names]
    except OverflowError:  # an integer float() cannot hold: the guard refuses it alike
        with pytest.raises(OverflowError):
            model_input(raw, names)
        return
    expected = {
        name: None if _number_out_of_range(raw.get(name)) else json_value(raw.get(name))
        for name in names
    }
    expected_unusable = [name for name in names if _number_out_of_range(raw.get(name))]

    # when the guard reads them, then it keeps and names the same
    values, unusable = model_input(raw, names)

    assert unusable == expected_unusable
    for name in names:
        ours, theirs = values[name], expected[name]
        assert type(ours) is type(theirs) and (ours == theirs), (name, raw.get(name))
