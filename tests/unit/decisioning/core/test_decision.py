import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from decisioning.core.decision import (
    DecisionTimestamps,
    RiskDecision,
    canonical_json,
    decision_record_text,
    input_hash,
)

SCHEMA = Path(__file__).resolve().parents[4] / "docs" / "risk-decision.schema.json"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def decision(**overrides: object) -> RiskDecision:
    values: dict[str, object] = {
        "decision_id": "d1",
        "subject": "transaction",
        "risk_score": 0.2,
        "risk_category": "fraud.none",
        "action": "approve",
        "policy_version": "p1",
        "timestamps": DecisionTimestamps(event=NOW, decided=NOW),
        "trace_id": "t" * 32,
        "input_hash": "h",
    }
    return RiskDecision(**{**values, **overrides})


def test_the_published_json_schema_matches_the_model() -> None:
    published = json.loads(SCHEMA.read_text())

    assert published == RiskDecision.model_json_schema(), (
        "docs/risk-decision.schema.json is stale: regenerate it from RiskDecision"
    )


def test_scores_outside_zero_one_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        decision(risk_score=1.5)
    with pytest.raises(ValidationError):
        decision(verdict="ok")


def test_a_decision_round_trips_through_json() -> None:
    original = decision(feature_values={"velocity_1h_count": 3, "segment": "retail"})

    assert RiskDecision.model_validate_json(original.model_dump_json()) == original


def test_canonical_json_and_input_hash_ignore_key_order() -> None:
    assert canonical_json({"b": 1, "a": NOW}) == canonical_json({"a": NOW, "b": 1})
    assert input_hash({"amount": 1.0, "id": "x"}) == input_hash({"id": "x", "amount": 1.0})
    assert input_hash({"amount": 1.0}) != input_hash({"amount": 1.01})


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(), JSON_VALUES, max_size=6),
    st.dictionaries(st.text(), JSON_VALUES, max_size=6),
)
def test_a_decision_record_built_from_its_parts_is_the_canonical_json_of_the_whole(
    decision_part: dict[str, object], request_part: dict[str, object]
) -> None:
    # The record's hash covers these bytes: the engine's composed text must be canonical_json's.
    composed = decision_record_text(canonical_json(decision_part), canonical_json(request_part))

    assert composed == canonical_json({"decision": decision_part, "request": request_part})
