"""Behaviour of the fraud scorer trained on simulated payments: direction, invariance, minimum.

Direction and invariance: one scorer trained on three weeks of a small simulated world, judged
on the following week. Minimum function: the product's backtest on a larger world at natural
incident rates, trained on four weeks and judged on the two after. Neither saw its test weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisioning.adapters.feast.online import FRAUD_FEATURE_SERVICE
from decisioning.fraud.model import FraudScorer
from decisioning.settings import load_settings
from pipelines.fraud.backtest import BacktestWindows, run_backtest
from pipelines.fraud.dataset import FeatureSet, point_in_time_features
from pipelines.fraud.training import fit_on_period, load_fraud_settings
from pipelines.ingest import conform
from pipelines.simulate import FraudIncidents, SimulationConfig, simulate_world, write_world
from tests.support.clock import BACKTEST_WORLD_START, MODEL_WORLD_START, at_now

pytestmark = [pytest.mark.slow, pytest.mark.calendar]
DAYS = 28
TEST_DAYS = 7
# A small world for direction, invariance and the card-testing ranking: more incidents than 500
# customers would get by rate, so the training weeks hold frauds of each scenario to learn from.
# The scenarios themselves are the simulator's own.
WORLD = SimulationConfig(
    customers=500,
    days=DAYS,
    seed=16,
    incidents=FraudIncidents(account_takeover=8, above_habit=12),
    start=MODEL_WORLD_START,
)


@dataclass(frozen=True)
class Trained:
    scorer: FraudScorer
    test: pd.DataFrame
    transactions: pd.DataFrame
    customers: pd.DataFrame


def _features(home: Path, transactions: pd.DataFrame, customers: pd.DataFrame) -> FeatureSet:
    settings = load_settings({"RISK_HOME": str(home), "RISK_ENV": "local"})
    return point_in_time_features(settings, transactions, customers, transactions)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    world = simulate_world(WORLD)
    transactions = conform(world.transactions, "transactions")
    with at_now():
        features = _features(tmp_path_factory.mktemp("home"), transactions, world.customers)
    split = transactions["occurred_at"].max() - pd.Timedelta(days=TEST_DAYS)
    frame = features.frame.merge(
        transactions[["transaction_id", "fraud_scenario"]], on="transaction_id"
    )
    earlier = frame["occurred_at"] < split
    settings = load_settings({"RISK_ENV": "local"})
    config, codes = load_fraud_settings(settings)
    training = FeatureSet(
        frame[earlier].reset_index(drop=True), features.features, FRAUD_FEATURE_SERVICE
    )
    with at_now():  # the training-set gate refuses rows after its "now"
        scorer, _, _ = fit_on_period(training, config, codes)
    return Trained(scorer, frame[~earlier].reset_index(drop=True), transactions, world.customers)


def test_direction_more_payments_in_ten_minutes_never_lowers_the_score(trained: Trained) -> None:
    # given genuine test-week payments
    genuine = trained.test[trained.test["fraud_scenario"] == "none"].head(500)

    # when the same payments come with eight more payments in the last ten minutes
    burst = genuine.copy()
    for column in ("velocity_10m_count", "velocity_1h_count", "velocity_24h_count"):
        burst[column] = burst[column] + 8
    before = trained.scorer.score(genuine).score
    after = trained.scorer.score(burst).score

    # then
    lowered = int((after < before - 1e-9).sum())
    assert lowered == 0, f"{lowered} payments scored lower with a burst before them"
    assert after.mean() > before.mean(), "a burst of payments did not raise the scores"


def test_invariance_renamed_customers_get_the_same_scores(trained: Trained, tmp_path: Path) -> None:
    # given the same payments with every customer id renamed
    renamed = {c: f"renamed-{i}" for i, c in enumerate(trained.customers["customer_id"])}
    transactions = trained.transactions.assign(
        customer_id=trained.transactions["customer_id"].map(renamed).astype("string")
    )
    customers = trained.customers.assign(customer_id=trained.customers["customer_id"].map(renamed))

    # when their features are built again and scored
    features = _features(tmp_path, transactions, customers).frame
    again = features.set_index("transaction_id").loc[trained.test["transaction_id"]]

    # then
    original = trained.scorer.score(trained.test).score
    assert np.allclose(trained.scorer.score(again).score, original, atol=1e-6), (
        "scores depend on what customers are called"
    )


def test_minimum_function_card_testing_bursts_score_above_the_genuine_median(
    trained: Trained,
) -> None:
    # given the test week's card-testing payments and its genuine ones
    scores = trained.scorer.score(trained.test).score
    scenario = trained.test["fraud_scenario"].to_numpy()
    card_testing = scores[scenario == "card_testing"]
    assert len(card_testing) >= 10, "the simulated week has too few card-testing payments"

    # when / then
    above = (card_testing > np.median(scores[scenario == "none"])).mean()
    assert above >= 0.9, f"only {above:.0%} of card-testing payments beat the genuine median"


MOST = 0.5  # issue 4: each scenario reaches review for most of its payments
SCENARIOS = ["card_testing", "account_takeover", "compromised_terminal", "above_habit"]
# The minimum function is judged at the simulator's own incident rates, on a world big enough to
# hold each scenario in numbers (2,000 customers x 60 days): the product's backtest trains on four
# weeks and decides the two after, which it never saw. Seeds 5, 11 and 23 all pass (compromised
# terminal 66%, 55%, 68%; docs/benchmarks.md); this one is the one not used to choose the rule.
BACKTEST_WORLD = SimulationConfig(customers=2000, days=60, seed=5, start=BACKTEST_WORLD_START)


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("backtest")
    world = simulate_world(BACKTEST_WORLD)
    path = write_world(world, folder)["transactions"]
    first = world.transactions["occurred_at"].min().normalize()
    day = lambda n: (first + pd.Timedelta(days=n)).date()  # noqa: E731
    last = BACKTEST_WORLD.days - 1
    windows = BacktestWindows(day(last - 41), day(last - 14), day(last - 13), day(last))
    settings = load_settings({"RISK_HOME": str(folder), "RISK_ENV": "local"})
    with at_now():
        decided = run_backtest(settings, path, windows, pd.Timedelta(days=7))
    return world.transactions.merge(decided, on="transaction_id")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_minimum_function_each_scenario_reaches_review_for_most_payments(
    backtested: pd.DataFrame, scenario: str
) -> None:
    # given two unseen weeks of payments of one fraud scenario
    rows = backtested[backtested["fraud_scenario"] == scenario]
    assert len(rows) >= 15, f"the two test weeks hold only {len(rows)} {scenario} payments"

    # when the backtest decided them, then most were sent to review or declined
    share = float((rows["action"] != "approve").mean())
    assert share > MOST, f"only {share:.0%} of {len(rows)} {scenario} payments reach review"


def test_the_minimum_function_stays_within_the_alert_budget(backtested: pd.DataFrame) -> None:
    # given the two test weeks' genuine payments, then less than the budget's share is reviewed
    genuine = backtested[backtested["fraud_scenario"] == "none"]
    reviewed = float((genuine["action"] != "approve").mean())
    assert reviewed < 0.01, f"{reviewed:.2%} of genuine payments reviewed, over the 1% budget"
