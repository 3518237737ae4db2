"""Training sets: point-in-time joins of the feature service onto labelled payments."""

from __future__ import annotations

import pandas as pd
from feast import FeatureStore

from decisioning.adapters.feast.online import (
    FRAUD_FEATURE_SERVICE,
    feature_names,
    get_feature_service,
)
from pipelines.features.errors import EntityFrameInvalid

ENTITY_COLUMNS = ("customer_id", "terminal_id", "occurred_at", "amount")


def entity_frame(transactions: pd.DataFrame) -> pd.DataFrame:
    """The entity frame for a set of payments: keys, event time, request fields, and the rest.

    Extra columns (transaction_id, label) pass through the join, so the result is ready to train.
    """
    missing = [column for column in ENTITY_COLUMNS if column not in transactions]
    if missing:
        raise EntityFrameInvalid(f"entity frame lacks {', '.join(missing)}")
    frame = transactions.copy()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["event_timestamp"] = frame["occurred_at"]
    if "country" not in frame:
        frame["country"] = None
    # Plain objects: Feast's joins read entity keys from parquet as objects, not pandas strings.
    for column in ("customer_id", "terminal_id", "country"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def training_frame(
    store: FeatureStore, entity_df: pd.DataFrame, service: str = FRAUD_FEATURE_SERVICE
) -> pd.DataFrame:
    """Point-in-time features of the service for each payment of ``entity_df``.

    ``entity_df`` is what :func:`entity_frame` makes from transactions. Columns: the entity
    frame's, then the service's features in its own order (the serving order too).
    """
    result = store.get_historical_features(
        entity_df=entity_df, features=get_feature_service(store, service)
    ).to_df()
    names = feature_names(store, service)
    passthrough = [column for column in entity_df.columns if column not in names]
    return result[[*passthrough, *names]].reset_index(drop=True)
