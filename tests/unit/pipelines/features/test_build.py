"""Point-in-time feature tables: windows, late labels, missing columns, online agreement.

That no feature looks ahead is shown for random histories in ``test_properties``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.features.build import build_feature_tables
from tests.support.payments import (
    assert_frames_agree,
    payments,
    random_payments,
    replay_online,
)


def _row(table: pd.DataFrame, transaction_id: str) -> pd.Series:
    return table.set_index("transaction_id").loc[transaction_id]


def test_a_payment_61_minutes_old_is_out_of_the_hour_but_59_minutes_is_in() -> None:
    # given payments at 0, 2 and 61 minutes, at two terminals
    frame = payments(
        {"minutes": 0, "amount": 5.0},
        {"minutes": 2, "amount": 7.0, "terminal_id": "m2"},
        {"minutes": 61, "amount": 11.0},
    )
    # when the customer activity is built
    table = build_feature_tables(frame).customer_activity
    # then the last payment's hour holds itself and the one 59 minutes before, not 61
    last = _row(table, "tx0002")
    assert last["velocity_1h_count"] == 2, "the payment 61 minutes earlier must have expired"
    assert last["velocity_1h_amount_sum"] == pytest.approx(18.0)
    assert last["velocity_1h_distinct_terminals"] == 2
    assert last["velocity_24h_count"] == 3
    assert last["velocity_10m_count"] == 1
    assert last["seconds_since_previous_payment"] == pytest.approx(59 * 60)


def test_a_burst_counts_each_payment_and_those_before_it() -> None:
    # given ten payments a few seconds apart at the same terminal
    frame = payments(*({"minutes": i / 10} for i in range(10)))
    # when built
    table = build_feature_tables(frame).customer_activity.sort_values("event_timestamp")
    # then the counts rise 1..10 and distinct terminals stay at one
    assert table["velocity_10m_count"].tolist() == list(range(1, 11))
    assert set(table["velocity_10m_distinct_terminals"]) == {1}


def test_the_profile_describes_only_earlier_payments() -> None:
    # given three payments of 10, 30 and 1000
    frame = payments(
        {"minutes": 0, "amount": 10.0, "country": "GB"},
        {"minutes": 5, "amount": 30.0, "country": "FR"},
        {"minutes": 9, "amount": 1000.0, "country": "FR"},
    )
    # when built
    table = build_feature_tables(frame).customer_activity
    # then the large payment is compared with the two before it, not with itself
    last = _row(table, "tx0002")
    assert last["usual_amount"] == pytest.approx(20.0)
    assert last["amount_spread"] == pytest.approx(10.0)
    assert last["usual_country"] == "GB", "a tie keeps the country that got there first"
    assert pd.isna(_row(table, "tx0000")["usual_amount"]), "no history, no usual amount"


def test_a_fraud_label_counts_only_once_it_is_available() -> None:
    # given a fraud on day 0 whose chargeback arrives on day 2, and payments on days 1 and 3
    day = 24 * 60
    frame = payments(
        {"minutes": 0, "terminal_id": "m9"},
        {"minutes": day, "terminal_id": "m9"},
        {"minutes": 3 * day, "terminal_id": "m9"},
    )
    frame["label"] = pd.array([1, pd.NA, pd.NA], dtype="Int8")
    frame["label_available_at"] = [frame["occurred_at"][0] + pd.Timedelta(days=2), pd.NaT, pd.NaT]
    # when the terminal risk is built
    table = build_feature_tables(frame).terminal_risk
    # then day 1 does not see the fraud yet; day 3 does, in the 7-day rate only
    assert _row(table, "tx0001")["terminal_fraud_rate_7d"] == 0.0, "label seen before it arrived"
    assert _row(table, "tx0002")["terminal_fraud_rate_7d"] == pytest.approx(0.5)
    assert _row(table, "tx0002")["terminal_payments_1d_count"] == 0
    assert pd.isna(_row(table, "tx0000")["terminal_fraud_rate_7d"]), "no earlier payment"


def test_a_chargeback_counts_from_its_arrival_for_seven_days_not_before() -> None:
    # given a fraud on day 0 at m9 whose chargeback arrives on day 10, then payments at m9
    day = 24 * 60
    frame = payments(
        {"minutes": 0, "terminal_id": "m9"},
        {"minutes": 9 * day, "terminal_id": "m9"},
        {"minutes": 10 * day, "terminal_id": "m9"},
        {"minutes": 16 * day, "terminal_id": "m9"},
        {"minutes": 18 * day, "terminal_id": "m9"},
    )
    frame["label"] = pd.array([1, pd.NA, pd.NA, pd.NA, pd.NA], dtype="Int8")
    arrives = frame["occurred_at"][0] + pd.Timedelta(days=10)
    frame["label_available_at"] = [arrives, pd.NaT, pd.NaT, pd.NaT, pd.NaT]
    # when the terminal risk is built
    table = build_feature_tables(frame).terminal_risk
    confirmed = table.set_index("transaction_id")["terminal_frauds_confirmed_7d"]
    # then a payment before the chargeback arrived does not see it, though the fraud is older
    assert confirmed["tx0001"] == 0, "a label arriving after the payment was used"
    assert confirmed["tx0000"] == 0, "a payment never sees its own label"
    # and the payments within 7 days of its arrival count it, later ones no longer
    assert confirmed["tx0002"] == 1, "a chargeback arriving at the payment's time is known"
    assert confirmed["tx0003"] == 1
    assert confirmed["tx0004"] == 0, "the chargeback is 8 days old: out of the 7-day window"
    assert table.set_index("transaction_id").loc["tx0004", "terminal_frauds_confirmed_14d"] == 1


def test_regular_frauds_count_recent_known_frauds_on_customers_who_paid_there_before() -> None:
    # given at m9: c1 pays on day 0; c2 pays only at m1 on day 0; both are defrauded at m9 on
    # day 1 (chargebacks arrive on day 3); c3 pays at m9 on days 2, 4, 11 - 1 min and 11
    day = 24 * 60
    frame = payments(
        {"minutes": 0, "terminal_id": "m9", "customer_id": "c1"},
        {"minutes": 0, "terminal_id": "m1", "customer_id": "c2"},
        {"minutes": day, "terminal_id": "m9", "customer_id": "c1"},
        {"minutes": day, "terminal_id": "m9", "customer_id": "c2"},
        {"minutes": 2 * day, "terminal_id": "m9", "customer_id": "c3"},
        {"minutes": 4 * day, "terminal_id": "m9", "customer_id": "c3"},
        {"minutes": 11 * day - 1, "terminal_id": "m9", "customer_id": "c3"},
        {"minutes": 11 * day, "terminal_id": "m9", "customer_id": "c3"},
    )
    frame["label"] = pd.array([0, 0, 1, 1, pd.NA, pd.NA, pd.NA, pd.NA], dtype="Int8")
    arrives = frame["occurred_at"][0] + pd.Timedelta(days=3)
    frame["label_available_at"] = [arrives] * 4 + [pd.NaT] * 4
    # when the terminal risk is built
    regular = build_feature_tables(frame).terminal_risk.set_index("transaction_id")[
        "terminal_regular_frauds_10d"
    ]
    # then only c1's fraud counts (c2 had paid elsewhere, never at m9), once its label is known
    assert regular["tx0004"] == 0, "a label arriving after the payment was used"
    assert regular["tx0005"] == 1, "a first-timer's fraud counted as a regular's, or c1's missed"
    # and for 10 days after the fraud, not at 10 days, though its chargeback is younger
    assert regular["tx0006"] == 1
    assert regular["tx0007"] == 0


def test_the_usual_amount_at_a_terminal_describes_earlier_payments_there_only() -> None:
    # given payments of 10 and 30 at m1, 500 at m2, then 200 at m1
    frame = payments(
        {"minutes": 0, "amount": 10.0},
        {"minutes": 5, "amount": 30.0},
        {"minutes": 6, "amount": 500.0, "terminal_id": "m2"},
        {"minutes": 9, "amount": 200.0},
    )
    # when built
    table = build_feature_tables(frame).customer_activity.set_index("transaction_id")
    # then the last payment is compared with the two before it at m1, not with m2 or itself
    assert table.loc["tx0003", "usual_amount_at_terminal"] == pytest.approx(20.0)
    assert pd.isna(table.loc["tx0002", "usual_amount_at_terminal"]), "first payment at m2"
    assert pd.isna(table.loc["tx0000", "usual_amount_at_terminal"]), "no history, no habit"


def test_a_file_with_only_required_columns_gives_null_features_not_a_crash() -> None:
    # given bring-your-own payments without country, labels or a customers file
    frame = payments({"minutes": 0}, {"minutes": 1}, {"minutes": 2, "customer_id": "c2"})
    # when built
    tables = build_feature_tables(frame)
    # then the features from missing columns are null and the rest are computed
    assert tables.customer_activity["usual_country"].isna().all()
    assert tables.customer_attributes[["segment", "home_country"]].isna().all().all()
    assert tables.customer_attributes["account_opened_at"].isna().all()
    assert (tables.terminal_risk["terminal_fraud_rate_30d"].fillna(0) == 0).all()
    assert tables.customer_activity["velocity_1h_count"].max() == 2


def test_customer_attributes_come_from_the_customers_file_when_given() -> None:
    frame = payments({"minutes": 0}, {"minutes": 1, "customer_id": "c2"})
    customers = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "segment": ["retail"],
            "home_country": ["GB"],
            "account_opened_at": [pd.Timestamp("2020-01-01", tz="UTC")],
        }
    )
    attributes = build_feature_tables(frame, customers).customer_attributes.set_index("customer_id")
    assert attributes.loc["c1", "home_country"] == "GB"
    assert pd.isna(attributes.loc["c2", "segment"]), "an unknown customer has null attributes"


@pytest.mark.parametrize("seed", [4, 5])
def test_online_replay_equals_offline_point_in_time(seed: int) -> None:
    # given random payments
    frame = random_payments(seed)
    # when replayed one by one through the online computation and built offline
    online = replay_online(frame)
    offline = build_feature_tables(frame).customer_activity
    # then every velocity and profile value agrees
    columns = [c for c in online.columns if c not in ("transaction_id", "customer_id")]
    assert_frames_agree(online, offline, columns)


def test_a_payment_arriving_late_counts_only_what_happened_before_it() -> None:
    from datetime import UTC, datetime

    from decisioning.core.events import TransactionEvent
    from decisioning.fraud.activity import CustomerHistory, record_payment

    def paid(hour: int, minute: int) -> TransactionEvent:
        return TransactionEvent(
            transaction_id=f"t{hour}{minute}",
            occurred_at=datetime(2026, 6, 1, hour, minute, tzinfo=UTC),
            customer_id="C1",
            terminal_id="T1",
            amount=10.0,
        )

    history = CustomerHistory()
    record_payment(history, paid(11, 50))
    record_payment(history, paid(12, 30))

    late = record_payment(history, paid(12, 0))  # happened at 12:00, arrives after 12:30

    assert late["velocity_10m_count"] == 1, "12:30 is after the late payment and 11:50 too old"
    assert late["velocity_1h_count"] == 2, "11:50 and itself"
    assert late["seconds_since_previous_payment"] == 600.0, "previous is 11:50, not 12:30"
    later = record_payment(history, paid(12, 35))
    assert later["seconds_since_previous_payment"] == 300.0, "the clock never goes back"


def test_a_history_document_round_trips_and_matches_its_fields() -> None:
    from dataclasses import asdict

    from decisioning.fraud.activity import CustomerHistory, RecentPayment

    history = CustomerHistory(
        recent=[RecentPayment(1, 2.5, "m1"), RecentPayment(3, 4.0, "m2")],
        payments=7,
        amount_sum=30.0,
        amount_squares=200.0,
        last_payment_ns=3,
        country_counts={"GB": 6, "FR": 1},
        usual_country="GB",
        terminal_counts={"m1": 5, "m2": 2},
        terminal_amount_sums={"m1": 20.0, "m2": 10.0},
    )

    assert history.to_json() == asdict(history), "the document must name every field as stored"
    assert CustomerHistory.from_json(history.to_json()) == history
