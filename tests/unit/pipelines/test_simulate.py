import json

import pandas as pd
import pytest

from pipelines.simulate import FraudIncidents, SimulatedWorld, SimulationConfig, simulate_world
from pipelines.simulate.payments import SCENARIOS
from pipelines.simulate.texts import RISK_PHRASES

TINY = SimulationConfig(customers=40, days=8, seed=5)


def test_same_seed_gives_the_same_world() -> None:
    first, second = simulate_world(TINY), simulate_world(TINY)

    for name in ("transactions", "texts", "customers", "terminals"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_another_seed_gives_another_world() -> None:
    first = simulate_world(TINY)
    other = simulate_world(TINY.model_copy(update={"seed": 6}))

    assert not first.transactions["amount"].equals(other.transactions["amount"])


def test_configured_incident_counts_replace_the_rate_for_their_scenario() -> None:
    # given a tiny world asked for five account takeovers (its rate would give one)
    config = TINY.model_copy(update={"incidents": FraudIncidents(account_takeover=5)})

    # when simulated
    payments = simulate_world(config).transactions

    # then five new devices spend abroad, each one takeover
    takeovers = payments[payments["fraud_scenario"] == "account_takeover"]
    assert takeovers["device_id"].nunique() == 5, "each takeover uses its own new device"


def test_every_fraud_scenario_is_present_and_labelled_by_name(small_world: SimulatedWorld) -> None:
    payments = small_world.transactions
    present = set(payments["fraud_scenario"])

    assert set(SCENARIOS) <= present, f"missing scenarios: {set(SCENARIOS) - present}"
    fraud = payments[payments["fraud_scenario"] != "none"]
    assert (fraud["label"].dropna() == 1).all(), "a reported fraud must carry label 1"


def test_card_testing_is_a_burst_of_small_payments_at_new_terminals(
    small_world: SimulatedWorld,
) -> None:
    payments = small_world.transactions
    testing = payments[payments["fraud_scenario"] == "card_testing"]
    genuine = payments[payments["fraud_scenario"] == "none"]

    assert testing["amount"].max() < 5
    per_card = testing.groupby("card_id")["occurred_at"].agg(["count", "min", "max"])
    assert (per_card["count"] >= 6).all()
    assert ((per_card["max"] - per_card["min"]) < pd.Timedelta(hours=1)).all()
    usual = set(zip(genuine["card_id"], genuine["terminal_id"], strict=True))
    seen = sum(
        (c, t) in usual for c, t in zip(testing["card_id"], testing["terminal_id"], strict=True)
    )
    assert seen / len(testing) < 0.05, "card testing should happen at terminals new to the card"


def test_account_takeover_is_large_foreign_and_on_a_new_device(small_world: SimulatedWorld) -> None:
    payments = small_world.transactions
    takeover = payments[payments["fraud_scenario"] == "account_takeover"]
    genuine_devices = set(payments.loc[payments["fraud_scenario"] == "none", "device_id"].dropna())

    assert (takeover["country"] != "GB").all()
    assert not set(takeover["device_id"]) & genuine_devices
    assert takeover["amount"].median() > 3 * payments["amount"].median()


def test_labels_arrive_late_and_some_never(small_world: SimulatedWorld) -> None:
    payments = small_world.transactions
    known = payments[payments["label"].notna()]
    delay = known["label_available_at"] - known["occurred_at"]

    assert (delay >= pd.Timedelta(days=1)).all(), "no label is known on the day of payment"
    assert delay.max() > pd.Timedelta(days=7), "some labels take weeks"
    assert payments["label"].isna().any(), "some labels never arrive"
    assert payments.loc[payments["label"].isna(), "label_available_at"].isna().all()


def test_every_conduct_category_and_neutral_texts_are_present(small_world: SimulatedWorld) -> None:
    categories = set(small_world.texts["category"])

    assert set(RISK_PHRASES) | {"none"} <= categories


def test_risk_spans_quote_the_text_at_their_offsets(small_world: SimulatedWorld) -> None:
    for row in small_world.texts.itertuples():
        spans = json.loads(row.risk_spans)
        assert bool(spans) == (row.category != "none"), row.text
        for span in spans:
            assert row.text[span["start"] : span["end"]] == span["text"]


@pytest.mark.parametrize("category", sorted(RISK_PHRASES))
def test_wording_varies_within_a_category(small_world: SimulatedWorld, category: str) -> None:
    texts = small_world.texts.loc[small_world.texts["category"] == category, "text"]

    assert texts.nunique() == len(texts), "messages should not repeat verbatim"
    phrases = {
        json.loads(s)[0]["text"].lower() for s in small_world.texts.loc[texts.index, "risk_spans"]
    }
    assert len(phrases) >= min(4, len(texts)), f"{category} uses too few distinct phrases"
