"""Fraud training sets: label timing, point-in-time features from the feature service, time splits.

Labels arrive late (chargebacks), so a model trained at a cut-off may only see labels known by
then: each label's time is ``label_available_at`` or, when a file lacks it, the payment time plus
a delay. The same label times feed the terminal fraud-rate features, so features and training
labels obey one clock.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from decisioning.adapters.feast.online import FRAUD_FEATURE_SERVICE, feature_names
from decisioning.adapters.feast.store import open_feature_store
from decisioning.fraud.errors import FraudTrainingDataError
from decisioning.settings import Settings
from pipelines.features.build import FeatureTables, build_feature_tables
from pipelines.features.repo import apply_definitions
from pipelines.features.training import entity_frame, training_frame
from pipelines.quality import require_valid

logger = logging.getLogger(__name__)

# Columns carried beside the features: keys for metrics (card, day) and the label's timing.
# label_available_at lets model selection's folds learn only the labels known at their start.
CONTEXT_COLUMNS = (
    "transaction_id",
    "occurred_at",
    "customer_id",
    "card_id",
    "label",
    "label_available_at",
)
ENTITY_COLUMNS = (
    "transaction_id",
    "customer_id",
    "terminal_id",
    "occurred_at",
    "amount",
    "country",
)


@dataclass(frozen=True)
class FeatureSet:
    """Payments with their point-in-time features; ``features`` in the service's order."""

    frame: pd.DataFrame
    features: list[str]
    service: str


@dataclass(frozen=True)
class TimeSplit:
    """The fit's three frames: all period payments, labelled earlier ones, the later window."""

    history: pd.DataFrame
    train: pd.DataFrame
    validation: pd.DataFrame


def with_label_times(transactions: pd.DataFrame, delay: pd.Timedelta) -> pd.DataFrame:
    """Fill missing ``label_available_at`` of labelled payments with payment time plus delay."""
    out = transactions.copy()
    assumed = out["occurred_at"] + delay
    known = out["label_available_at"].fillna(assumed)
    out["label_available_at"] = known.where(out["label"].notna())
    return out


def labels_known_at(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """The label of each payment as known at ``cutoff``; null where it arrives later."""
    known = transactions["label_available_at"] <= cutoff
    return transactions["label"].where(known.fillna(False)).astype("Int8")


def point_in_time_features(
    settings: Settings,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    payments: pd.DataFrame,
    service: str = FRAUD_FEATURE_SERVICE,
    tables: FeatureTables | None = None,
) -> FeatureSet:
    """Features of ``payments`` as of each payment, from tables built over all ``transactions``
    (``tables`` when they were built already, by either engine).

    The tables are joined through Feast's historical retrieval with the feature service, as the
    online path reads them, in a scratch Feast repo so the environment's tables stay untouched.
    Only the rows of ``payments`` are written: the build gives each payment its own row, as of
    its own time, so each join lands on that row, and Feast never loads six months to join one.
    """
    tables = tables or build_feature_tables(transactions, customers)
    wanted = payments["transaction_id"]
    needed = FeatureTables(
        customer_activity=_rows_of(tables.customer_activity, wanted),
        customer_attributes=tables.customer_attributes,
        terminal_risk=_rows_of(tables.terminal_risk, wanted),
    )
    with tempfile.TemporaryDirectory(prefix="fraud-features-") as scratch:
        scratch_settings = settings.model_copy(update={"home": Path(scratch)})
        needed.write(Path(scratch) / "features")
        store = open_feature_store(scratch_settings)
        apply_definitions(store)
        names = feature_names(store, service)
        joined = training_frame(store, entity_frame(payments[list(ENTITY_COLUMNS)]), service)
    joined = joined.drop_duplicates("transaction_id").set_index("transaction_id")[names]
    context = payments[list(CONTEXT_COLUMNS)].set_index("transaction_id", drop=False)
    frame = context.join(joined).reset_index(drop=True)
    logger.info("features of %d payments from service %s", len(frame), service)
    return FeatureSet(frame=frame, features=names, service=service)


def _rows_of(table: pd.DataFrame, transaction_ids: pd.Series) -> pd.DataFrame:
    return table[table["transaction_id"].isin(transaction_ids)].reset_index(drop=True)


def split_by_time(frame: pd.DataFrame, validation_share: float) -> TimeSplit:
    """Train on the earlier labelled payments, calibrate on the later window.

    The split time is the quantile of labelled payment times, so the validation window holds
    about ``validation_share`` of the labels; it keeps every payment after the split, labelled or
    not, because the alert budget is a share of all traffic.
    """
    labelled = frame[frame["label"].notna()]
    if labelled.empty:
        raise FraudTrainingDataError("no payment has a label known at the training cut-off")
    split = labelled["occurred_at"].quantile(1.0 - validation_share)
    earlier = frame["occurred_at"] < split
    return TimeSplit(
        history=frame[earlier].reset_index(drop=True),
        train=frame[earlier & frame["label"].notna()].reset_index(drop=True),
        validation=frame[~earlier].reset_index(drop=True),
    )


def check_training_set(train: pd.DataFrame) -> str:
    """The GX training-set suite on what the model learns from; returns its one-line summary."""
    checked = train.assign(event_timestamp=train["occurred_at"], label=train["label"].astype(int))
    result = require_valid(checked[["transaction_id", "event_timestamp", "label"]], "training-set")
    return result.summary()


def training_data_hash(frame: pd.DataFrame, columns: list[str]) -> str:
    """A content hash of the rows trained on, so a version names the exact data behind it."""
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()
