"""Model selection's prequential folds: each learns only the labels known at its start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decisioning.fraud.config import FraudConfig, SelectionCandidate, SelectionConfig
from pipelines.fraud import selection
from pipelines.fraud.run_details import scenario_recall
from pipelines.fraud.selection import select_candidate

START = pd.Timestamp("2026-03-01", tz="UTC")


def labelled_period(seed: int = 3, days: int = 30) -> pd.DataFrame:
    """Payments every 20 minutes; a tenth fraud; labels arrive 1-14 days late, some not yet."""
    rng = np.random.default_rng(seed)
    occurred = START + pd.to_timedelta(np.arange(days * 72) * 20, unit="min")
    label = (rng.random(len(occurred)) < 0.1).astype(int)
    available = occurred + pd.to_timedelta(rng.uniform(1, 14, len(occurred)), unit="D")
    cutoff = occurred.max()
    known = available <= cutoff
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(occurred))],
            "occurred_at": occurred,
            "label": pd.Series(label, dtype="Int8").where(known),
            "label_available_at": available,
            "amount": rng.uniform(1, 100, len(occurred)),
        }
    )


def config_with(**selection_settings: object) -> FraudConfig:
    candidates = (SelectionCandidate(name="configured"), SelectionCandidate(name="good"))
    settings = {"folds": 3, "min_fold_frauds": 2, "candidates": candidates, **selection_settings}
    return FraudConfig(
        alert_budget=0.01,
        decline_precision=0.9,
        selection=SelectionConfig.model_validate(settings),
    )


def test_each_fold_learns_exactly_the_labels_known_at_its_start_and_the_best_ap_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a spy in place of the fits: "good" ranks each fold's frauds first, the other last
    calls: list[tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []

    def spy(history, train, validation, features, config, reason_codes):  # type: ignore[no-untyped-def]
        name = "good" if config.xgboost.max_depth == 5 else "configured"
        calls.append((name, history, train, validation))
        truth = validation["label"].astype(int).to_numpy(dtype="float64")
        return truth if name == "good" else -truth

    monkeypatch.setattr(selection, "fold_margins", spy)
    period = labelled_period()
    good = SelectionCandidate(name="good", max_depth=5)
    config = config_with(candidates=(SelectionCandidate(name="configured"), good))

    # when
    chosen = select_candidate(period, ["amount"], config, reason_codes=None)  # type: ignore[arg-type]

    # then the later candidate wins on average precision, not by being listed first
    assert chosen.chosen is not None and chosen.chosen.name == "good", chosen.summary()
    assert len(chosen.folds) >= 2, f"the period should give several usable folds: {chosen.note}"
    assert len(calls) == 2 * len(chosen.folds), "every candidate is fitted on every fold"
    # and each fold's model learned only labels that had arrived by the fold's start
    for index, (_, history, train, validation) in enumerate(calls):
        fold = chosen.folds[index % len(chosen.folds)]
        assert (train["label_available_at"] <= fold.start).all(), (
            f"fold {fold.number} learned a label that arrived after its start {fold.start}"
        )
        assert (history["occurred_at"] < fold.start).all(), "a fold learns from earlier payments"
        arrived = period[
            (period["occurred_at"] < fold.start) & (period["label_available_at"] <= fold.start)
        ]
        assert sorted(train["transaction_id"]) == sorted(arrived["transaction_id"]), (
            f"fold {fold.number} left out labels that had arrived by its start"
        )
        inside = validation["occurred_at"].between(fold.start, fold.end, inclusive="left")
        assert inside.all(), "a fold validates on its own stretch only"
        assert validation["label"].notna().all(), "validation scores labelled payments only"


def test_too_few_frauds_per_fold_means_no_search_and_the_configured_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given folds that each hold far fewer frauds than the config asks for
    monkeypatch.setattr(selection, "fold_margins", lambda *args: pytest.fail("nothing to fit"))
    config = config_with(min_fold_frauds=10_000)

    # when
    chosen = select_candidate(labelled_period(), ["amount"], config, reason_codes=None)  # type: ignore[arg-type]

    # then
    assert chosen.chosen is None and chosen.note.startswith("not searched"), chosen.note
    assert chosen.config(config) == config, "the configured values are trained as they are"


def test_a_candidate_overrides_only_what_it_names() -> None:
    base = config_with()
    tried = SelectionCandidate(name="no-anomaly", anomaly=False, max_depth=6).applied_to(base)
    assert tried.xgboost.max_depth == 6 and not tried.anomaly.enabled
    assert tried.xgboost.learning_rate == base.xgboost.learning_rate, "rate kept"
    assert tried.xgboost.monotone_increasing == base.xgboost.monotone_increasing


def test_candidate_names_must_differ() -> None:
    with pytest.raises(ValueError, match="repeat"):
        SelectionConfig(candidates=(SelectionCandidate(name="a"), SelectionCandidate(name="a")))


def test_recall_per_scenario_counts_the_alerted_frauds_of_each() -> None:
    # given three validation frauds of two scenarios, two of them alerted, and a genuine one
    labelled = pd.DataFrame({"transaction_id": ["a", "b", "c", "d"], "label": [1, 1, 1, 0]})
    flagged = np.array([True, False, True, True])
    transactions = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c", "d"],
            "fraud_scenario": ["card_testing", "card_testing", "above_habit", "none"],
        }
    )

    # when
    table = scenario_recall(labelled, flagged, transactions).set_index("scenario")

    # then
    assert table.loc["card_testing", "recall"] == 0.5
    assert table.loc["above_habit", "recall"] == 1.0
    assert table.loc["all", "frauds"] == 3, "the genuine payment is not a fraud of any scenario"
    assert scenario_recall(labelled, flagged, transactions[["transaction_id"]]) is None
