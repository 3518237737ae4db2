"""The fraud scorer: an anomaly detector over all payments feeding XGBoost on labelled ones.

The isolation forest needs no labels, so every payment (labelled or not) teaches it what usual
looks like; its score is one more input to XGBoost, which learns from the labels that exist.
XGBoost's margin is calibrated to a probability by Platt scaling on a later validation window:
with a week of data there are too few frauds for a stable isotonic fit. Contributions are
XGBoost's native TreeSHAP (``pred_contribs``), in log-odds, one per feature of the service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.special import expit
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression

from decisioning.core.decision import ReasonCode
from decisioning.core.policy import FraudInput
from decisioning.fraud.booster import OneRowPredictor
from decisioning.fraud.config import FraudConfig, ReviewRule
from decisioning.fraud.encoding import FeatureEncoder, fit_encoder
from decisioning.fraud.errors import FraudConfigError, FraudTrainingDataError
from decisioning.fraud.forest import CompiledForest
from decisioning.fraud.reason_codes import ReasonCodeBook
from decisioning.fraud.thresholds import Thresholds, calibrate_thresholds
from decisioning.fraud.tree_tables import TreeTables

logger = logging.getLogger(__name__)

ANOMALY_FEATURE = "anomaly_score"
MIN_POSITIVES = 2
SERVING_CACHES = ("_forest", "_one_thread", "_one_row", "_owner_sums")


@dataclass(frozen=True)
class FraudScores:
    """Scores of a frame of payments: calibrated probability, raw margin, contributions."""

    score: np.ndarray
    margin: np.ndarray
    anomaly: np.ndarray
    contributions: pd.DataFrame


@dataclass(frozen=True)
class FraudScorer:
    """Everything needed to score payments from their feature-service values; picklable."""

    encoder: FeatureEncoder
    anomaly_model: IsolationForest
    booster: xgb.Booster
    platt: tuple[float, float]
    thresholds: Thresholds
    reason_codes: ReasonCodeBook
    top_reasons: int
    review_rules: tuple[ReviewRule, ...] = ()

    @property
    def features(self) -> list[str]:
        return list(self.encoder.features)

    @property
    def contribution_names(self) -> list[str]:
        return [*self.encoder.features, ANOMALY_FEATURE]

    def score(self, features: pd.DataFrame) -> FraudScores:
        """Score every row; ``features`` holds the service's features (extra columns ignored)."""
        matrix, anomaly = self._model_input(features)
        margin = self.booster.predict(matrix, output_margin=True)
        raw = self.booster.predict(matrix, pred_contribs=True)[:, :-1]  # last column: bias
        owners = [*self.encoder.owners, ANOMALY_FEATURE]
        per_column = pd.DataFrame(raw, columns=owners)
        contributions = per_column.T.groupby(level=0, sort=False).sum().T
        a, b = self.platt
        return FraudScores(
            score=expit(a * margin + b),
            margin=margin,
            anomaly=anomaly,
            contributions=contributions.reindex(columns=self.contribution_names, fill_value=0.0),
        )

    def margin(self, features: pd.DataFrame) -> np.ndarray:
        """XGBoost's margin per row: ranks payments as the calibrated score does."""
        matrix, _ = self._model_input(features)
        return np.asarray(self.booster.predict(matrix, output_margin=True))

    def _model_input(self, features: pd.DataFrame) -> tuple[xgb.DMatrix, np.ndarray]:
        """The booster's input (encoded features and the anomaly score) and the anomaly score."""
        design = self.encoder.matrix(features)
        anomaly = -self.anomaly_model.score_samples(self.encoder.filled(design))
        return xgb.DMatrix(np.column_stack([design, anomaly]), missing=np.nan), anomaly

    def decide(self, features: pd.DataFrame, scored: FraudScores | None = None) -> pd.DataFrame:
        """Score, action and reason codes per row, in the row order of ``features``.

        Pass ``scored`` when the frame was scored already, so the models run once.
        """
        scored = scored if scored is not None else self.score(features)
        values = features[self.features].reset_index(drop=True).copy()
        values[ANOMALY_FEATURE] = scored.anomaly
        reasons = self.reason_codes.top_reasons(scored.contributions, values, self.top_reasons)
        matched = self._matched(values)
        ruled = np.asarray(matched.any(axis=1), dtype=bool)
        for row in np.flatnonzero(ruled):
            fired = [rule for rule, hit in zip(self.review_rules, matched[row], strict=True) if hit]
            rules = self._rule_reasons(fired, values.iloc[row].to_dict())
            reasons[row] = self._with_rules(reasons[row], rules, float(scored.score[row]))
        return pd.DataFrame(
            {
                "score": scored.score,
                "action": self.thresholds.actions(scored.score, ruled),
                "reason_codes": reasons,
            }
        )

    def ruled(self, features: pd.DataFrame) -> np.ndarray:
        """Which payments a review rule sends to review, whatever their score."""
        return np.asarray(self._matched(features).any(axis=1), dtype=bool)

    def _matched(self, features: pd.DataFrame) -> np.ndarray:
        """Payments x review rules: which rule fires for which payment."""
        columns = [rule.matches(features) for rule in self.review_rules]
        return np.column_stack(columns) if columns else np.zeros((len(features), 0), dtype=bool)

    def assess(self, features: Mapping[str, Any]) -> FraudInput:
        """One payment, from the feature service's values keyed by name (the online path).

        The same arithmetic as :meth:`score` and :meth:`decide` on a one-row frame (tests
        compare them) without pandas, with the compiled forest and XGBoost's C API on one thread
        (``booster.py``), or the trees' answers looked up once ``prepare_serving`` built them
        (``tree_tables.py``): about 0.3 ms where the frame path took 20-40 ms.
        """
        design = self.encoder.row(features)
        anomaly = self._forest.anomaly(self.encoder.filled(design[None, :])[0])
        margin, raw = self._one_row.margin_and_contributions(np.append(design, anomaly))
        raw = raw[:-1]  # last column: bias
        contributions = dict(zip(self.contribution_names, raw @ self._owner_sums, strict=True))
        a, b = self.platt
        score = expit(a * margin + b)
        values = {name: features.get(name) for name in self.features}
        values[ANOMALY_FEATURE] = anomaly
        fired = [rule for rule in self.review_rules if rule.matches_one(values)]
        reasons = self._with_rules(
            self.reason_codes.reasons_of(contributions, values, self.top_reasons),
            self._rule_reasons(fired, values),
            float(score[0]),
        )
        action = self.thresholds.action(float(score[0]), ruled=bool(fired))
        return FraudInput(score=float(score[0]), action=action, reason_codes=tuple(reasons))

    def _with_rules(
        self, model: list[ReasonCode], rules: list[ReasonCode], score: float
    ) -> list[ReasonCode]:
        """Rule reasons first when a rule alone sent the payment to review, else after the model's.

        The first reason names the fraud category (the policy reads it): a burst the score
        reviews anyway stays card testing even at a terminal on watch.
        """
        return [*rules, *model] if score < self.thresholds.review else [*model, *rules]

    def _rule_reasons(
        self, fired: Sequence[ReviewRule], values: Mapping[str, Any]
    ) -> list[ReasonCode]:
        """Reasons of the rules that fired; a rule moves no score, so its contribution is 0."""
        return [
            ReasonCode.model_construct(
                code=rule.code,
                description=self.reason_codes.sentence(rule.code, values),
                contribution=0.0,
                source="rule",
            )
            for rule in fired
        ]

    def prepare_serving(self) -> None:
        """Build what scoring one payment needs now, and score payments from the trees' tables
        when they apply (``tree_tables.py``: a build of ~0.4 s here, and ~0.05 ms a payment
        where XGBoost's C API takes ~0.18 ms). Only the served model pays for the build; a
        scorer loaded to replay an older version keeps the C API, whose bits are the same."""
        for cache in SERVING_CACHES:
            getattr(self, cache)
        tables = TreeTables.of(self._one_thread)
        if tables is not None:
            self.__dict__["_one_row"] = tables  # the cached_property's slot

    @cached_property
    def _forest(self) -> CompiledForest:
        return CompiledForest.of(self.anomaly_model)

    @cached_property
    def _one_thread(self) -> xgb.Booster:
        """The booster pinned to one thread: for one row, a second only waits on the first."""
        booster = self.booster.copy()
        booster.set_param({"nthread": 1})
        return booster

    @cached_property
    def _one_row(self) -> TreeTables | OneRowPredictor:
        """XGBoost's C API on one row; ``prepare_serving`` puts the trees' tables here instead.
        Both give ``Booster.predict``'s bits."""
        return OneRowPredictor(self._one_thread)

    @cached_property
    def _owner_sums(self) -> np.ndarray:
        """Design columns x contribution names: one-hot contributions add up to their feature."""
        owners = [*self.encoder.owners, ANOMALY_FEATURE]
        names = self.contribution_names
        sums = np.zeros((len(owners), len(names)), dtype="float32")
        for column, owner in enumerate(owners):
            sums[column, names.index(owner)] = 1.0
        return sums

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the fitted models only, never the serving caches derived from them."""
        return {k: v for k, v in self.__dict__.items() if k not in SERVING_CACHES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Scorers pickled before review rules existed: no rules, and thresholds without a share.
        state.setdefault("review_rules", ())
        thresholds = state.get("thresholds")
        if isinstance(thresholds, Thresholds) and "rules_share" not in thresholds.__dict__:
            state["thresholds"] = Thresholds(**thresholds.__dict__)
        self.__dict__.update(state)


def fit_fraud_scorer(
    history: pd.DataFrame,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    features: Sequence[str],
    config: FraudConfig,
    reason_codes: ReasonCodeBook,
) -> FraudScorer:
    """Fit both models, calibrate on the validation window, and set the action thresholds.

    ``history``: every payment of the training period (labels not needed); ``train``: labelled
    payments (``label`` 0/1); ``validation``: later payments, ``label`` null where unknown.
    """
    reason_codes.require_features([*features, ANOMALY_FEATURE])
    for rule in config.review_rules:
        reason_codes.require_rule(rule.code)
        if rule.feature not in features:
            raise FraudConfigError(
                f"review rule {rule.code} reads {rule.feature}, which the feature service lacks"
            )
    labels = _labels(train)
    uncalibrated = _fit_uncalibrated(history, train, features, config, reason_codes)
    platt = _fit_platt(uncalibrated, train, validation)
    calibrated = replace(uncalibrated, platt=platt)
    thresholds = _thresholds(calibrated, validation, config)
    logger.info(
        "fraud scorer fitted on %d labelled payments (%d fraud); review >= %.4f, decline >= %s",
        len(train),
        int(labels.sum()),
        thresholds.review,
        thresholds.decline,
    )
    return replace(calibrated, thresholds=thresholds)


def fold_margins(
    history: pd.DataFrame,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    features: Sequence[str],
    config: FraudConfig,
    reason_codes: ReasonCodeBook,
) -> np.ndarray:
    """XGBoost's margin on ``validation`` from models fitted as ``fit_fraud_scorer`` fits them.

    For model selection: a margin ranks payments as the calibrated score does, so average
    precision needs neither calibration, thresholds nor contributions.
    """
    return _fit_uncalibrated(history, train, features, config, reason_codes).margin(validation)


def _fit_uncalibrated(
    history: pd.DataFrame,
    train: pd.DataFrame,
    features: Sequence[str],
    config: FraudConfig,
    reason_codes: ReasonCodeBook,
) -> FraudScorer:
    """The encoder, the isolation forest and XGBoost, before Platt scaling and thresholds."""
    labels = _labels(train)
    encoder = fit_encoder(history, features)
    anomaly_model = IsolationForest(
        n_estimators=config.anomaly.n_estimators,
        max_samples=min(config.anomaly.max_samples, len(history)),
        random_state=config.anomaly.seed,
        n_jobs=1,
    ).fit(encoder.filled(encoder.matrix(history)))
    train_design = encoder.matrix(train)
    anomaly = -anomaly_model.score_samples(encoder.filled(train_design))
    if not config.anomaly.enabled:
        # Missing in every training row, the column offers XGBoost no split: the booster never
        # reads the anomaly score, whatever it is when scoring.
        anomaly = np.full(len(train), np.nan)
    booster = xgb.train(
        _booster_params(config, [*encoder.columns, ANOMALY_FEATURE]),
        xgb.DMatrix(np.column_stack([train_design, anomaly]), label=labels, missing=np.nan),
        num_boost_round=config.xgboost.rounds,
    )
    return FraudScorer(
        encoder=encoder,
        anomaly_model=anomaly_model,
        booster=booster,
        platt=(1.0, 0.0),
        thresholds=Thresholds(review=1.0, alert_budget=0.5, decline_precision=1.0),
        reason_codes=reason_codes,
        top_reasons=config.top_reasons,
        review_rules=config.review_rules,
    )


def _labels(frame: pd.DataFrame) -> np.ndarray:
    labels = frame["label"].astype("float64").to_numpy()
    if np.isnan(labels).any():
        raise FraudTrainingDataError("training payments must all be labelled")
    positives = int(labels.sum())
    if positives < MIN_POSITIVES or positives == len(labels):
        raise FraudTrainingDataError(
            f"training needs both classes: {positives} fraud and {len(labels) - positives} "
            f"genuine labelled payments before the cut-off (at least {MIN_POSITIVES} fraud)"
        )
    return labels


def _booster_params(config: FraudConfig, columns: list[str]) -> dict[str, Any]:
    booster = config.xgboost
    increasing = set(booster.monotone_increasing)
    return {
        "monotone_constraints": f"({','.join('1' if c in increasing else '0' for c in columns)})",
        "objective": "binary:logistic",
        "tree_method": "hist",
        "device": "cpu",
        "max_depth": booster.max_depth,
        "eta": booster.learning_rate,
        "subsample": booster.subsample,
        "min_child_weight": booster.min_child_weight,
        "nthread": booster.nthread,
        "seed": booster.seed,
        "verbosity": 0,
    }


def _fit_platt(
    scorer: FraudScorer, train: pd.DataFrame, validation: pd.DataFrame
) -> tuple[float, float]:
    """Platt scaling of the margin on the validation window's labelled payments.

    A window with no fraud yet (labels still pending) cannot calibrate; the training payments
    stand in then, which overstates confidence, and the log says so.
    """
    labelled = validation[validation["label"].notna()]
    if labelled["label"].astype(int).nunique() < 2:
        logger.warning("validation window has one class only; calibrating on training payments")
        labelled = train
    margin = scorer.score(labelled).margin.reshape(-1, 1)
    platt = LogisticRegression(C=1.0).fit(margin, labelled["label"].astype(int).to_numpy())
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _thresholds(scorer: FraudScorer, validation: pd.DataFrame, config: FraudConfig) -> Thresholds:
    scores = scorer.score(validation).score
    known = validation["label"].notna().to_numpy()
    return calibrate_thresholds(
        scores,
        scores[known],
        validation["label"][known].astype(int).to_numpy(),
        config.alert_budget,
        config.decline_precision,
        config.min_decline_alerts,
        ruled=scorer.ruled(validation),
    )
