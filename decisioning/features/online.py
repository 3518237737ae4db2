"""Online features at decision time: push the payment's velocity, then fetch by feature service.

The decision service calls :func:`push_payment` and then :func:`online_features` for each
payment, in that order: velocity counts the payment being decided (the tenth payment of a burst
sees itself and the nine before it), exactly as the offline tables count it for training.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode
from feast.errors import FeatureServiceNotFoundException

from decisioning.events import TransactionEvent
from decisioning.features.activity import CustomerHistory, record_payment
from decisioning.features.errors import FeatureServiceNotFound
from decisioning.features.history import PaymentHistory

logger = logging.getLogger(__name__)

CUSTOMER_ACTIVITY_PUSH = "customer_activity_push"
FRAUD_FEATURE_SERVICE = "fraud_v1"


def push_payment(
    store: FeatureStore, history: PaymentHistory, event: TransactionEvent
) -> dict[str, Any]:
    """Add the payment to its customer's history and push the new activity row online."""

    def change(customer: CustomerHistory) -> dict[str, Any]:
        return record_payment(customer, event)

    row = history.update(event.customer_id, change)
    frame = pd.DataFrame([{**row, "event_timestamp": pd.Timestamp(event.occurred_at)}])
    store.push(CUSTOMER_ACTIVITY_PUSH, frame, to=PushMode.ONLINE)
    logger.debug("pushed activity of %s as of %s", event.customer_id, event.occurred_at)
    return row


def request_row(event: TransactionEvent) -> dict[str, Any]:
    """The entity keys and request fields a feature service needs for one payment."""
    return {
        "customer_id": event.customer_id,
        "terminal_id": event.terminal_id,
        "amount": event.amount,
        "occurred_at": event.occurred_at,
        "country": event.country,
    }


def online_features(
    store: FeatureStore, event: TransactionEvent, service: str = FRAUD_FEATURE_SERVICE
) -> dict[str, Any]:
    """The feature service's values for this payment, keyed by feature name."""
    features = store.get_online_features(
        features=get_feature_service(store, service), entity_rows=[request_row(event)]
    ).to_dict()
    names = feature_names(store, service)
    return {name: features[name][0] for name in names}


def feature_names(store: FeatureStore, service: str = FRAUD_FEATURE_SERVICE) -> list[str]:
    """The service's feature names in its own order: the one list training and serving share."""
    projections = get_feature_service(store, service).feature_view_projections
    return [feature.name for projection in projections for feature in projection.features]


def get_feature_service(store: FeatureStore, service: str) -> Any:
    try:
        return store.get_feature_service(service)
    except FeatureServiceNotFoundException as exc:
        raise FeatureServiceNotFound(
            f"feature service {service!r} is not registered; run `riskctl features apply`"
        ) from exc
