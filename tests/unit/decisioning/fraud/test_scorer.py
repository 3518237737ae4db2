"""The scorer on a small synthetic frame: fit, calibrated scores, contributions, one payment."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisioning.adapters.mlflow.fraud_pyfunc import (
    decisions_frame,
    load_fraud_scorer,
    save_fraud_scorer,
)
from decisioning.fraud.config import BoosterConfig, FraudConfig, ReviewRule
from decisioning.fraud.errors import FeatureFrameError, FraudConfigError, FraudTrainingDataError
from decisioning.fraud.model import ANOMALY_FEATURE, FraudScorer, fit_fraud_scorer
from decisioning.fraud.reason_codes import ReasonCodeBook, ReasonCodeSpec
from decisioning.fraud.thresholds import Thresholds
from decisioning.fraud.tree_tables import TreeTables

FEATURES = ["velocity_10m_count", "amount_to_usual_ratio", "segment"]
CONFIG = FraudConfig(
    alert_budget=0.05,
    decline_precision=0.8,
    min_decline_alerts=3,
    xgboost=BoosterConfig(rounds=30, nthread=1, monotone_increasing=("velocity_10m_count",)),
)


def _payments(n: int, seed: int) -> pd.DataFrame:
    """Frauds come in bursts: many payments in ten minutes, larger than usual."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < 0.08
    return pd.DataFrame(
        {
            "velocity_10m_count": np.where(fraud, rng.integers(4, 12, n), rng.integers(1, 3, n)),
            "amount_to_usual_ratio": np.where(fraud, rng.uniform(1, 4, n), rng.uniform(0.2, 2, n)),
            "segment": rng.choice(["retail", "premium", None], n),
            "label": fraud.astype(int),
        }
    )


def _book() -> ReasonCodeBook:
    return ReasonCodeBook(
        [
            ReasonCodeSpec(
                code="velocity.burst_10m",
                source="model",
                description="Many payments within minutes",
                features=("velocity_10m_count",),
                sentences=("{velocity_10m_count:.0f} payments in the last 10 minutes",),
            ),
            ReasonCodeSpec(
                code="amount.unusual",
                source="model",
                description="Unusual amount",
                features=("amount_to_usual_ratio", "segment"),
            ),
            ReasonCodeSpec(
                code="anomaly.unusual_pattern",
                source="model",
                description="Unusual pattern",
                features=(ANOMALY_FEATURE,),
            ),
        ],
        version=1,
    )


@pytest.fixture(scope="module")
def scorer() -> FraudScorer:
    history = _payments(600, seed=1)
    return fit_fraud_scorer(history, history, _payments(300, seed=2), FEATURES, CONFIG, _book())


def test_scores_are_probabilities_that_rank_bursts_first(scorer: FraudScorer) -> None:
    # given unseen payments
    payments = _payments(300, seed=3)

    # when
    scores = scorer.score(payments).score

    # then
    assert ((scores >= 0) & (scores <= 1)).all(), "a score left [0, 1]"
    fraud, genuine = scores[payments["label"] == 1], scores[payments["label"] == 0]
    assert np.median(fraud) > np.quantile(genuine, 0.9), "bursts do not outrank genuine payments"


def test_contributions_cover_each_feature_once_and_add_up_to_the_margin(
    scorer: FraudScorer,
) -> None:
    payments = _payments(50, seed=4)

    scored = scorer.score(payments)

    assert list(scored.contributions.columns) == [*FEATURES, ANOMALY_FEATURE]
    bias = scored.margin - scored.contributions.sum(axis=1).to_numpy()
    assert np.allclose(bias, bias[0], atol=1e-4), "contributions + bias do not give the margin"


def test_one_payment_gets_an_action_and_a_sentence_with_its_values(scorer: FraudScorer) -> None:
    # given a burst of nine payments, twice the usual amount
    burst = {"velocity_10m_count": 9, "amount_to_usual_ratio": 2.0, "segment": "retail"}

    # when
    assessment = scorer.assess(burst)

    # then
    assert assessment.action in {"review", "decline"}, f"a burst was {assessment.action}d"
    assert assessment.reason_codes[0].code == "velocity.burst_10m"
    assert assessment.reason_codes[0].description == "9 payments in the last 10 minutes"


def test_unknown_segment_and_missing_values_still_score(scorer: FraudScorer) -> None:
    odd = pd.DataFrame(
        {"velocity_10m_count": [1], "amount_to_usual_ratio": [np.nan], "segment": ["never seen"]}
    )

    assert 0 <= scorer.score(odd).score[0] <= 1


def test_a_frame_without_a_feature_is_refused(scorer: FraudScorer) -> None:
    with pytest.raises(FeatureFrameError, match="segment"):
        scorer.score(pd.DataFrame({"velocity_10m_count": [1], "amount_to_usual_ratio": [1.0]}))


def test_training_needs_both_classes() -> None:
    genuine = _payments(200, seed=5).assign(label=0)

    with pytest.raises(FraudTrainingDataError, match="both classes"):
        fit_fraud_scorer(genuine, genuine, genuine, FEATURES, CONFIG, _book())


def test_the_pickled_scorer_scores_alike(scorer: FraudScorer, tmp_path: Path) -> None:
    payments = _payments(40, seed=6)
    save_fraud_scorer(scorer, tmp_path / "scorer.pkl")

    reloaded = decisions_frame(load_fraud_scorer(tmp_path / "scorer.pkl"), payments)

    pd.testing.assert_frame_equal(reloaded, decisions_frame(scorer, payments))


def test_one_payment_scores_exactly_as_a_frame_of_one(scorer: FraudScorer) -> None:
    # given payments with gaps, unknown segments and bursts
    payments = _payments(200, seed=7)
    payments.loc[::7, "amount_to_usual_ratio"] = np.nan
    payments.loc[::11, "segment"] = "never seen"
    records = payments[FEATURES].astype(object).where(payments[FEATURES].notna(), None)
    # when each is assessed alone (the online path) and all together (pyfunc, backtests)
    framed = scorer.decide(payments)
    alone = [scorer.assess(row) for row in records.to_dict("records")]
    # then score, action and reason codes agree row by row
    np.testing.assert_allclose([a.score for a in alone], framed["score"], rtol=1e-6, atol=1e-9)
    assert [a.action for a in alone] == list(framed["action"])
    assert [[r.code for r in a.reason_codes] for a in alone] == [
        [r.code for r in row] for row in framed["reason_codes"]
    ], "the online path must give the same reasons in the same order"


def test_the_compiled_forest_equals_scikit_learn(scorer: FraudScorer) -> None:
    design = scorer.encoder.filled(scorer.encoder.matrix(_payments(300, seed=8)))

    compiled = [scorer._forest.anomaly(row) for row in design]

    np.testing.assert_array_equal(compiled, -scorer.anomaly_model.score_samples(design))


def test_serving_caches_are_not_pickled(scorer: FraudScorer, tmp_path: Path) -> None:
    scorer.assess({"velocity_10m_count": 2, "amount_to_usual_ratio": 1.0, "segment": "retail"})
    save_fraud_scorer(scorer, tmp_path / "scorer.pkl")

    reloaded = load_fraud_scorer(tmp_path / "scorer.pkl")

    assert not {"_forest", "_one_thread", "_owner_sums"} & set(vars(reloaded))


WATCH = ReviewRule(code="terminal.watch", feature="terminal_regular_frauds_10d", at_least=1)


def _watched_book() -> ReasonCodeBook:
    specs = [
        *_book().specs.values(),
        ReasonCodeSpec(
            code="terminal.fraud_history",
            source="model",
            description="Fraud at this terminal",
            features=("terminal_regular_frauds_10d",),
        ),
        ReasonCodeSpec(
            code="terminal.watch",
            source="rule",
            description="Terminal on watch",
            sentences=("{terminal_regular_frauds_10d:.0f} frauds on regulars",),
        ),
    ]
    return ReasonCodeBook(specs, version=1)


def _watched(n: int, seed: int) -> pd.DataFrame:
    """Payments of which a few are at a watched terminal, unrelated to their label."""
    rng = np.random.default_rng(seed)
    return _payments(n, seed).assign(terminal_regular_frauds_10d=(rng.random(n) < 0.03).astype(int))


@pytest.fixture(scope="module")
def watched_scorer() -> FraudScorer:
    history = _watched(600, seed=1)
    config = CONFIG.model_copy(update={"review_rules": (WATCH,)})
    features = [*FEATURES, "terminal_regular_frauds_10d"]
    return fit_fraud_scorer(history, history, _watched(300, 2), features, config, _watched_book())


def test_a_review_rule_reviews_a_quiet_payment_and_says_so_first(
    watched_scorer: FraudScorer,
) -> None:
    # given the same quiet payment at a terminal on watch and at one that is not
    quiet = {"velocity_10m_count": 1, "amount_to_usual_ratio": 1.0, "segment": "retail"}

    # when both are assessed
    watched = watched_scorer.assess({**quiet, "terminal_regular_frauds_10d": 2})
    calm = watched_scorer.assess({**quiet, "terminal_regular_frauds_10d": 0})

    # then the rule alone sends the first to review, with its own reason first
    assert calm.action == "approve", "the quiet payment must pass without the rule"
    assert watched.action == "review"
    assert watched.score == pytest.approx(calm.score, abs=0.05), "a rule must not move the score"
    first = watched.reason_codes[0]
    assert (first.code, first.source) == ("terminal.watch", "rule")
    assert first.description == "2 frauds on regulars"


def test_a_burst_the_score_reviews_anyway_keeps_its_own_reason_first(
    watched_scorer: FraudScorer,
) -> None:
    # given a burst of nine payments at a terminal on watch
    burst = {"velocity_10m_count": 9, "amount_to_usual_ratio": 2.0, "segment": "retail"}

    # when assessed
    assessment = watched_scorer.assess({**burst, "terminal_regular_frauds_10d": 1})

    # then the model's reason leads (it names the category) and the watch follows
    assert assessment.action in {"review", "decline"}
    codes = [(r.code, r.source) for r in assessment.reason_codes]
    assert codes[0] == ("velocity.burst_10m", "model")
    assert codes[-1] == ("terminal.watch", "rule")


def test_a_scorer_pickled_before_review_rules_loads_without_any(
    scorer: FraudScorer,
) -> None:
    # given the state of a scorer from before rules: no rules, thresholds without their share
    state = scorer.__getstate__()
    del state["review_rules"]
    old_thresholds = object.__new__(Thresholds)
    fields = state["thresholds"].model_dump(exclude={"rules_share"})
    object.__setattr__(old_thresholds, "__dict__", fields)
    object.__setattr__(old_thresholds, "__pydantic_fields_set__", set(fields))
    object.__setattr__(old_thresholds, "__pydantic_extra__", None)
    object.__setattr__(old_thresholds, "__pydantic_private__", None)
    state["thresholds"] = old_thresholds

    # when it is restored
    restored = object.__new__(FraudScorer)
    restored.__setstate__(state)

    # then it decides as before, with no rules and a zero rules share
    payments = _payments(50, seed=9)
    assert restored.review_rules == ()
    assert restored.thresholds.rules_share == 0.0
    pd.testing.assert_frame_equal(restored.decide(payments), scorer.decide(payments))


def test_rules_give_the_same_actions_and_reasons_online_and_in_frames(
    watched_scorer: FraudScorer,
) -> None:
    # given payments, some at watched terminals, some with a missing rule value
    payments = _watched(300, seed=8).astype({"terminal_regular_frauds_10d": "float64"})
    payments.loc[::13, "terminal_regular_frauds_10d"] = np.nan
    columns = [*FEATURES, "terminal_regular_frauds_10d"]
    records = payments[columns].astype(object).where(payments[columns].notna(), None)

    # when decided one by one and as a frame
    framed = watched_scorer.decide(payments)
    alone = [watched_scorer.assess(row) for row in records.to_dict("records")]

    # then both agree, and every watched payment is reviewed at least
    assert [a.action for a in alone] == list(framed["action"])
    assert [[(r.code, r.source) for r in a.reason_codes] for a in alone] == [
        [(r.code, r.source) for r in row] for row in framed["reason_codes"]
    ]
    watched = (payments["terminal_regular_frauds_10d"] >= 1).to_numpy()
    assert watched.sum() >= 3, "the sample must hold watched payments"
    assert (framed["action"][watched] != "approve").all()


def test_the_rules_share_of_the_validation_window_is_recorded(watched_scorer: FraudScorer) -> None:
    # given the validation payments the scorer was calibrated on (seed 2)
    ruled = watched_scorer.ruled(_watched(300, seed=2))

    # then its thresholds say how much of the budget the rules took there
    assert ruled.any()
    assert watched_scorer.thresholds.rules_share == pytest.approx(ruled.mean())


def test_a_rule_must_read_a_served_feature_and_have_a_rule_code() -> None:
    history = _watched(200, seed=3)
    config = CONFIG.model_copy(update={"review_rules": (WATCH,)})

    with pytest.raises(FraudConfigError, match="terminal_regular_frauds_10d"):
        fit_fraud_scorer(history, history, history, FEATURES, config, _watched_book())
    with pytest.raises(FraudConfigError, match=r"no rule code terminal\.watch"):
        features = [*FEATURES, "terminal_regular_frauds_10d"]
        book = ReasonCodeBook(
            [s for s in _watched_book().specs.values() if s.code != "terminal.watch"], version=1
        )
        fit_fraud_scorer(history, history, history, features, config, book)


def test_a_served_scorer_scores_from_the_tree_tables_as_it_did_without(
    scorer: FraudScorer, tmp_path: Path
) -> None:
    # given the scorer, and a copy prepared to serve (this world's trees fit the tables)
    served = pickle.loads(pickle.dumps(scorer))
    served.prepare_serving()
    assert isinstance(served._one_row, TreeTables)
    assert not isinstance(pickle.loads(pickle.dumps(scorer))._one_row, TreeTables)
    # when both assess the same payments, then they answer alike, to the bit
    rng = np.random.default_rng(8)
    for _ in range(200):
        features = {name: float(rng.normal(scale=3)) for name in scorer.features}
        assert served.assess(features) == scorer.assess(features)
