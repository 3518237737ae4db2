"""Reason codes: the feature-to-code mapping, sentences with actual values, top positive reasons."""

import pickle
from pathlib import Path

import pandas as pd
import pytest

from decisioning.fraud.errors import FraudConfigError
from decisioning.fraud.model import ANOMALY_FEATURE
from decisioning.fraud.reason_codes import ReasonCodeBook, ReasonCodeSpec, load_reason_codes
from feature_repo.feature_services import fraud_v1, fraud_v2, fraud_v3

CONFIG = Path(__file__).resolve().parents[4] / "configs" / "reason_codes.yaml"


def _book() -> ReasonCodeBook:
    return ReasonCodeBook(
        [
            ReasonCodeSpec(
                code="velocity.burst_10m",
                source="model",
                description="Many payments within minutes",
                features=("velocity_10m_count", "velocity_30d_count"),
                sentences=(
                    "{velocity_10m_count:.0f} payments in the last 10 minutes; "
                    "usual rate {usual_hourly_rate:.1f} an hour",
                ),
            ),
            ReasonCodeSpec(
                code="amount.unusual",
                source="model",
                description="Amount unlike the customer's usual payments",
                features=("amount_to_usual_ratio",),
                sentences=("amount {amount_to_usual_ratio:.1f} times usual",),
            ),
        ],
        version=1,
    )


def test_every_feature_of_the_service_and_the_anomaly_score_has_a_code() -> None:
    # given the shipped vocabulary and every fraud feature service a model may be served from
    book = load_reason_codes(CONFIG)
    services = (fraud_v1, fraud_v2, fraud_v3)
    names = [f.name for s in services for p in s.feature_view_projections for f in p.features]

    # when / then: no feature is left without a code to explain its contribution
    book.require_features([*names, ANOMALY_FEATURE])


def test_sentence_quotes_the_actual_values_and_the_usual_rate() -> None:
    # given nine payments in ten minutes and 225 in thirty days (216 before the burst)
    values = {"velocity_10m_count": 9, "velocity_30d_count": 225}

    # when
    sentence = _book().sentence("velocity.burst_10m", values)

    # then
    assert sentence == "9 payments in the last 10 minutes; usual rate 0.3 an hour"


def test_sentence_falls_back_to_the_description_when_a_value_is_missing() -> None:
    sentence = _book().sentence("amount.unusual", {"amount_to_usual_ratio": float("nan")})

    assert sentence == "Amount unlike the customer's usual payments"


@pytest.mark.parametrize(
    ("confirmed_7d", "confirmed_14d", "expected"),
    [
        (2, 3, "2 frauds confirmed at this terminal in the last 7 days, 3 in 14 days"),
        (0, 0, "known fraud rate 4.0% at this terminal over 7 days (50 payments)"),
    ],
)
def test_terminal_sentence_names_chargebacks_only_when_there_are_some(
    confirmed_7d: int, confirmed_14d: int, expected: str
) -> None:
    # given a terminal's known fraud rate and its confirmed chargebacks
    values = {
        "terminal_frauds_confirmed_7d": confirmed_7d,
        "terminal_frauds_confirmed_14d": confirmed_14d,
        "terminal_fraud_rate_7d": 0.04,
        "terminal_payments_7d_count": 50,
    }

    # when
    sentence = load_reason_codes(CONFIG).sentence("terminal.fraud_history", values)

    # then
    assert sentence == expected


def test_top_reasons_sum_contributions_per_code_and_keep_only_positive_ones() -> None:
    # given one payment whose velocity features together push the score up, amount pulls down
    contributions = pd.DataFrame(
        {"velocity_10m_count": [0.8], "velocity_30d_count": [0.3], "amount_to_usual_ratio": [-0.5]}
    )
    values = pd.DataFrame(
        {"velocity_10m_count": [9], "velocity_30d_count": [225], "amount_to_usual_ratio": [0.4]}
    )

    # when
    (reasons,) = _book().top_reasons(contributions, values, top=3)

    # then
    assert [r.code for r in reasons] == ["velocity.burst_10m"], "a negative reason was kept"
    assert reasons[0].contribution == pytest.approx(1.1)
    assert reasons[0].source == "model"
    assert reasons[0].description.startswith("9 payments in the last 10 minutes")


def test_rule_and_text_codes_need_no_features_but_model_codes_do() -> None:
    ReasonCodeSpec(code="rule.card_testing", source="rule", description="Card-testing rule hit")

    with pytest.raises(ValueError, match="lists no features"):
        ReasonCodeSpec(code="velocity.burst", source="model", description="Burst of payments")


def test_a_feature_in_two_codes_is_refused() -> None:
    spec = ReasonCodeSpec(
        code="a.one", source="model", description="first", features=("velocity_10m_count",)
    )
    twin = ReasonCodeSpec(
        code="a.two", source="model", description="second", features=("velocity_10m_count",)
    )

    with pytest.raises(FraudConfigError, match="two codes"):
        ReasonCodeBook([spec, twin], version=1)


def test_a_book_pickled_before_its_cache_existed_still_ranks_reasons() -> None:
    # given a book as a model registered before the cache was added pickled it (no _columns)
    book = _book()
    old_state = {key: value for key, value in vars(book).items() if key != "_columns"}
    restored = ReasonCodeBook.__new__(ReasonCodeBook)
    restored.__setstate__(old_state)
    features = list(book.code_of_feature)
    contributions = {feature: 1.0 for feature in features}

    # then it ranks as a fresh book does, and pickles again
    assert restored.reasons_of(contributions, {}, 3) == book.reasons_of(contributions, {}, 3)
    assert pickle.loads(pickle.dumps(restored)).reasons_of(contributions, {}, 3)
