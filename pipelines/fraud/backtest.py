"""``riskctl fraud backtest``: train on one window, score every payment of a later one.

Works on any bring-your-own transactions file (the required columns plus ``label``): features are
built point in time over the whole file, a label counts as known ``label_delay`` after its payment
unless the file says when it arrived, and the model sees only the training window's labels known
at ``labels_known_at``: by default the test window's start, when the model is deployed, which is
the delayed-label protocol (train, wait a gap in which labels arrive, test; docs/adr/0010).
Feature tables and the Feast registry live in a scratch home, so a backtest never touches the
environment's feature store.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from decisioning.fraud.config import FraudConfig
from decisioning.fraud.model import FraudScorer
from decisioning.settings import Settings
from pipelines.features.engines import Engine
from pipelines.features.jobs import customers_beside
from pipelines.features.spark_jobs import feature_tables_with
from pipelines.fraud.baseline import BASELINE_NAME, baseline_scores, fit_baseline
from pipelines.fraud.dataset import (
    FeatureSet,
    labels_known_at,
    point_in_time_features,
    with_label_times,
)
from pipelines.fraud.errors import BacktestWindowError, LabelsUnavailable, ScoresFileError
from pipelines.fraud.evaluation import backtest_quality, comparable_figures
from pipelines.fraud.training import fit_selected, load_fraud_settings
from pipelines.ingest import ReadingConfig, load_events, read_table
from pipelines.progress import Progress
from pipelines.quarantine import Quarantine, gate_events, quarantine_path

logger = logging.getLogger(__name__)

SCORE_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class BacktestWindows:
    """Train and test windows as whole UTC days, both ends included."""

    train_start: date
    train_end: date
    test_start: date
    test_end: date

    def train(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return _day(self.train_start), _day(self.train_end) + pd.Timedelta(days=1)

    def test(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return _day(self.test_start), _day(self.test_end) + pd.Timedelta(days=1)

    def check(self) -> None:
        """Refuse inverted windows and a test window that starts before training ends (a leak)."""
        if self.train_end < self.train_start or self.test_end < self.test_start:
            raise BacktestWindowError("a window ends before it starts")
        if self.test_start <= self.train_end:
            raise BacktestWindowError(
                f"test window starts {self.test_start}, before the training window ends "
                f"({self.train_end}): the model would be scored on what it learned from"
            )

    def labels_cutoff(self, labels_known_at: pd.Timestamp | None = None) -> pd.Timestamp:
        """When the model is trained: the test start unless given; never after it (a leak)."""
        test_start = self.test()[0]
        if labels_known_at is None:
            return test_start
        if labels_known_at > test_start:
            raise BacktestWindowError(
                f"--labels-known-at {labels_known_at.isoformat()} is after the test window starts "
                f"({test_start.isoformat()}): the deployed model would know labels from its future"
            )
        if labels_known_at <= self.train()[0]:
            raise BacktestWindowError(
                f"--labels-known-at {labels_known_at.isoformat()} is not after the training "
                f"window starts ({self.train()[0].isoformat()}): no training label is known then"
            )
        return labels_known_at


@dataclass(frozen=True)
class Backtest:
    """What a backtest produced: the test window's scores and what they were worth."""

    scores: pd.DataFrame
    quality: dict[str, Any]
    labels_known_at: pd.Timestamp
    quarantine: Quarantine | None = None


def run_backtest(
    settings: Settings,
    transactions_path: Path,
    windows: BacktestWindows,
    label_delay: pd.Timedelta,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
    labels_known_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Fit on the train window, score the test window: transaction_id, score, action, reasons."""
    return backtest(
        settings, transactions_path, windows, label_delay, progress, reading, labels_known_at
    ).scores


@dataclass(frozen=True)
class BacktestData:
    """The windows' payments with their point-in-time features, ready to fit and score."""

    features: FeatureSet
    is_test: pd.Series
    test: pd.DataFrame
    labels_known_at: pd.Timestamp
    windows: BacktestWindows
    label_delay: pd.Timedelta
    config: FraudConfig
    codes_path: Path
    quarantine: Quarantine | None = None


def backtest(
    settings: Settings,
    transactions_path: Path,
    windows: BacktestWindows,
    label_delay: pd.Timedelta,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
    labels_known_at: pd.Timestamp | None = None,
    quarantine_to: Path | None = None,
    engine: Engine = "pandas",
) -> Backtest:
    """Fit on the train window, score the test window and measure the scores.

    The model learns the training window's labels known at ``labels_known_at`` (default: the
    test window's start). Labels are checked right after reading, before the gate and features.
    Rows quarantined (``reading.on_bad_rows``) go to ``quarantine_to`` (default: beside the file).
    ``engine`` computes the feature tables (pandas, or Spark with ``configs/spark.yaml``).
    """
    data = prepare_backtest(
        settings,
        transactions_path,
        windows,
        label_delay,
        progress,
        reading,
        labels_known_at,
        quarantine_to,
        engine,
    )
    return fit_and_score(data, data.config, progress)


def prepare_backtest(
    settings: Settings,
    transactions_path: Path,
    windows: BacktestWindows,
    label_delay: pd.Timedelta,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
    labels_known_at: pd.Timestamp | None = None,
    quarantine_to: Path | None = None,
    engine: Engine = "pandas",
) -> BacktestData:
    """Read, check labels and the gate, build the features of both windows: the costly part."""
    windows.check()
    cutoff = windows.labels_cutoff(labels_known_at)
    config, codes_path = load_fraud_settings(settings)
    progress(f"reading {transactions_path}")
    reading = reading or ReadingConfig()
    events = load_events(transactions_path, "transactions", reading)
    # The cheap checks first: no labels, or none known at the cut-off, stops before any work.
    timed = with_label_times(events, label_delay)
    labels_known_at_cutoff(_within(timed, *windows.train(), "training"), cutoff, label_delay)
    progress(f"checking {len(events):,} payments against the transactions suite")
    target = quarantine_to or quarantine_path(Path(transactions_path), "transactions")
    checked = gate_events(events, "transactions", reading, target)
    transactions = with_label_times(checked.frame, label_delay)
    train = _within(transactions, *windows.train(), "training")
    train = train.assign(label=labels_known_at_cutoff(train, cutoff, label_delay))
    test = _within(transactions, *windows.test(), "test")
    customers_path = customers_beside(transactions_path)
    customers = read_table(customers_path) if customers_path is not None else None
    unknown = pd.Series(pd.NA, index=test.index, dtype="Int8")
    payments = pd.concat([train, test.assign(label=unknown)], ignore_index=True)
    progress(f"point-in-time features of {len(payments):,} payments ({engine})")
    tables = feature_tables_with(engine, settings, transactions, customers)
    features = point_in_time_features(settings, transactions, customers, payments, tables=tables)
    return BacktestData(
        features=features,
        is_test=features.frame["transaction_id"].isin(test["transaction_id"]),
        test=test,
        labels_known_at=cutoff,
        windows=windows,
        label_delay=label_delay,
        # Selection's folds and the protocol read one label delay: the backtest's.
        config=config.model_copy(update={"label_delay": label_delay}),
        codes_path=codes_path,
        quarantine=checked.quarantine,
    )


def fit_and_score(
    data: BacktestData, config: FraudConfig, progress: Progress = logger.info
) -> Backtest:
    """Fit the scorer (model selection included) and the baseline, score and measure the test."""
    is_test = data.is_test
    progress(f"fitting on {int((~is_test).sum()):,} training-window payments")
    training = FeatureSet(
        frame=data.features.frame[~is_test].reset_index(drop=True),
        features=data.features.features,
        service=data.features.service,
    )
    fitted = fit_selected(training, config, data.codes_path)
    progress(f"scoring {int(is_test.sum()):,} test-window payments")
    test_features = data.features.frame[is_test].reset_index(drop=True)
    scores = score_payments(fitted.scorer, test_features)
    k, budget = config.card_precision_k, config.alert_budget
    quality = backtest_quality(scores, data.test, k, budget)
    labelled = training.frame[training.frame["label"].notna()]
    baseline = fit_baseline(training.frame, labelled, training.features)
    quality["baseline"] = {
        "model": BASELINE_NAME,
        **comparable_figures(
            backtest_quality(baseline_scores(baseline, test_features, budget), data.test, k, budget)
        ),
    }
    windows = data.windows
    quality |= {
        "train_window": [windows.train_start.isoformat(), windows.train_end.isoformat()],
        "test_window": [windows.test_start.isoformat(), windows.test_end.isoformat()],
        "labels_known_at": data.labels_known_at.isoformat(),
        "label_delay": _days(data.label_delay),
        "selection": fitted.selection.summary(),
    }
    if data.quarantine is not None:
        quality["quarantined_rows"] = data.quarantine.rows
    return Backtest(scores, quality, data.labels_known_at, data.quarantine)


def labels_known_at_cutoff(
    train: pd.DataFrame, cutoff: pd.Timestamp, label_delay: pd.Timedelta
) -> pd.Series:
    """The training window's labels as known at ``cutoff``; refuses what cannot be trained on.

    Cheap, so it runs before the gate and the features: a file without labels, or a cut-off
    before any label arrives, stops the backtest at once with what to change.
    """
    if train["label"].isna().all():
        raise LabelsUnavailable(
            f"the training window's {len(train):,} payments have no label: a backtest needs a "
            "label column (1 fraud, 0 genuine) to learn from"
        )
    known = labels_known_at(train, cutoff)
    classes = set(known.dropna().astype(int))
    if classes != {0, 1}:
        later = int((train["label"].notna() & known.isna()).sum())
        found = "no label" if not classes else f"only label {classes.pop()}"
        raise LabelsUnavailable(
            f"{found} of a training payment is known at {cutoff.isoformat()} (labels without "
            f"label_available_at arrive --label-delay {_days(label_delay)} after the payment; "
            f"{later:,} "
            "arrive later): pass a later --labels-known-at (at most the test start) or a shorter "
            "--label-delay"
        )
    return known


def score_payments(scorer: FraudScorer, frame: pd.DataFrame) -> pd.DataFrame:
    """The backtest's output rows: reasons as a JSON list of code, description, contribution."""
    decided = scorer.decide(frame)
    return pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].astype(str).to_numpy(),
            "score": decided["score"].to_numpy(),
            "action": decided["action"].to_numpy(),
            "reason_codes": [
                json.dumps([reason.model_dump() for reason in row])
                for row in decided["reason_codes"]
            ],
        }
    )


def check_scores_path(out: Path) -> None:
    """Refuse an output suffix other than .parquet or .csv before any work is done."""
    if out.suffix.lower() not in SCORE_SUFFIXES:
        raise ScoresFileError(f"--out {out}: expected a .parquet or .csv file")


def write_scores(scores: pd.DataFrame, out: Path) -> Path:
    """Parquet or CSV, chosen by the file's suffix."""
    check_scores_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        scores.to_parquet(out, index=False)
    else:
        scores.to_csv(out, index=False)
    return out


def _within(
    transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, name: str
) -> pd.DataFrame:
    inside = transactions[
        (transactions["occurred_at"] >= start) & (transactions["occurred_at"] < end)
    ]
    if inside.empty:
        raise BacktestWindowError(f"the {name} window {start.date()}..{end.date()} has no payments")
    return inside


def _day(value: date) -> pd.Timestamp:
    return pd.Timestamp(value.isoformat(), tz="UTC")


def _days(delay: pd.Timedelta) -> str:
    hours = delay / pd.Timedelta(hours=1)
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"
