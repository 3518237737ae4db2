"""Online features at decision time: push the payment's velocity, then read by feature service.

:class:`OnlineFeatureService` is what the decision service uses. It resolves a feature service
once, at start-up, into the online store reads and writes one payment needs, and does them
through the provider Feast itself uses, so any online store works and the values are Feast's
(the integration tests compare it with :func:`online_features`, Feast's own read). Feast's
``get_online_features`` and ``push`` re-plan every call (projections, protos, pandas): 13-20 ms a
read and 25-45 ms a push here, against a 2 ms budget (docs/benchmarks.md).

Read as if pushed: velocity counts the payment being decided (the tenth payment of a burst sees
itself and the nine before it), exactly as the offline tables count it for training; the push
itself waits until the decision is audited (``read``; ADR 0012).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from feast import FeatureStore, FeatureView, OnDemandFeatureView, RepoConfig
from feast.data_source import PushSource
from feast.errors import FeatureServiceNotFoundException
from feast.protos.feast.types.Value_pb2 import Value
from feast.value_type import ValueType

from decisioning.adapters.feast.errors import FeatureServiceNotFound
from decisioning.adapters.feast.history import PaymentHistory, RedisPaymentHistory
from decisioning.adapters.feast.materialized import marker_row
from decisioning.adapters.feast.redis_payment import RedisPaymentRoundTrips, shares_feast_redis
from decisioning.adapters.feast.values import _entity_key, _proto, _python, scalar_encoder
from decisioning.core.events import TransactionEvent
from decisioning.core.names import CUSTOMER_ACTIVITY_PUSH, FRAUD_FEATURE_SERVICE
from decisioning.fraud.activity import record_payment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineRead:
    """A payment's feature values as if it were pushed, the push, and what the store lacked."""

    values: dict[str, Any]
    push: Callable[[], None]
    # Batch features with no online row for the payment's entities (never materialized, or the
    # store lost its memory).
    missing: tuple[str, ...] = ()
    # Batch features whose row is older than its view's TTL at the payment's time (a terminal idle
    # for a month, or tables no longer built): their windows ended long before the payment, so
    # they are served as unknown (None), as Feast's point-in-time join would leave them.
    stale: tuple[str, ...] = ()


class OnlineFeatureService:
    """A feature service resolved once into direct online reads and writes for one payment.

    ``fetch`` records the payment in the customer's history, writes the views fed by the push
    source (their values come from that history, so they are not read back), reads the batch
    views of the payment's entities, and runs the on-demand views' own functions. When the
    history and Feast's online store share one Redis, the first three take two round trips
    (:mod:`decisioning.adapters.feast.redis_payment`); ``two_round_trips=False`` keeps the general
    path, view by view through Feast's provider (tests compare the two).
    """

    def __init__(
        self,
        store: FeatureStore,
        history: PaymentHistory,
        service: str = FRAUD_FEATURE_SERVICE,
        push_source: str = CUSTOMER_ACTIVITY_PUSH,
        two_round_trips: bool = True,
    ) -> None:
        feature_service = get_feature_service(store, service)
        self.service = service
        self.names = feature_names(store, service)
        self._history = history
        self._config = store.config
        # Feast has no public handle on its provider; this is the one place that uses it.
        self._provider = store._get_provider()
        on_demand = {view.name: view for view in store.list_on_demand_feature_views()}
        served = [projection.name for projection in feature_service.feature_view_projections]
        transforms = [on_demand[name] for name in served if name in on_demand]
        self._transforms = [OnDemandTransform.of(view) for view in transforms]
        needed = set(served) - on_demand.keys()
        for transform in transforms:
            needed |= set(transform.source_feature_view_projections)
        views = {view.name: view for view in store.list_feature_views()}
        # A push writes every view on its source, as ``FeatureStore.push`` does.
        self._pushed = [view for view in views.values() if _pushed_from(view, push_source)]
        pushed = {view.name for view in self._pushed}
        self._stored = [views[name] for name in sorted(needed - pushed)]
        self._round_trips = (
            _two_round_trips(history, self._config, self._pushed, self._stored)
            if two_round_trips
            else None
        )
        logger.info(
            "feature service %s served %s",
            service,
            "in two Redis round trips" if self._round_trips else "view by view (general path)",
        )

    def fetch(self, event: TransactionEvent) -> dict[str, Any]:
        """Push the payment, then return the service's values for it, keyed by feature name."""
        read = self.read(event)
        read.push()
        return read.values

    def read(self, event: TransactionEvent) -> OnlineRead:
        """The service's values for the payment as if it were pushed, and the push itself.

        Nothing is written until the push is called: the decision service calls it only once
        the decision is in the audit store, so a refused, failed or repeated payment is never
        counted (docs/adr/0012-idempotent-decisions.md). A what-if (``/v1/fraud/score``) never
        calls it.
        """
        inputs = request_row(event)
        if self._round_trips is not None:
            record = partial(record_payment, event=event)
            values, push, written_at, marked = self._round_trips.read(
                event.customer_id, inputs, event.occurred_at, record
            )
        else:
            values, push, written_at, marked = self._read_view_by_view(event)
        stale_views = _stale_views(self._stored, written_at, event.occurred_at)
        for view in stale_views:  # unknown, as Feast's point-in-time join would leave them
            values.update({feature.name: None for feature in view.features})
        inputs = {**inputs, **values}
        for transform in self._transforms:
            values.update(transform.stored_outputs(inputs))
        values = {name: values.get(name) for name in self.names}
        missing = self._served_of(
            v for v in self._stored if written_at.get(v.name) is None and v.name not in marked
        )
        stale = self._served_of(stale_views)
        return OnlineRead(values, push, missing, stale)

    def _served_of(self, views: Iterable[FeatureView]) -> tuple[str, ...]:
        """The features of ``views`` that the service serves, in the views' order."""
        served = set(self.names)
        return tuple(f.name for view in views for f in view.features if f.name in served)

    def _read_view_by_view(
        self, event: TransactionEvent
    ) -> tuple[dict[str, Any], Callable[[], None], dict[str, datetime | None], set[str]]:
        """Any online store: the history read and its row computed on a copy, Feast's provider
        view by view; the push is the history's own update and the pushed views' writes."""
        row = record_payment(self._history.read(event.customer_id), event)
        values: dict[str, Any] = {}
        written_at: dict[str, datetime | None] = {}
        marked: set[str] = set()
        for view in self._pushed:
            values.update({name: _python(p) for name, p in self._protos(view, row).items()})
        for view in self._stored:
            found, written_at[view.name] = self._read(view, row)
            values.update(found)
            if written_at[view.name] is None and self._read(view, marker_row(view))[1] is not None:
                marked.add(view.name)

        def push() -> None:
            stored = self._history.update(event.customer_id, partial(record_payment, event=event))
            for view in self._pushed:
                self._write(view, stored, event.occurred_at)

        return values, push, written_at, marked

    def _protos(self, view: FeatureView, row: Mapping[str, Any]) -> dict[str, Value]:
        return {
            field.name: _proto(row.get(field.name), field.dtype.to_value_type())
            for field in view.features
        }

    def _write(self, view: FeatureView, row: Mapping[str, Any], at: datetime) -> None:
        protos = self._protos(view, row)
        self._provider.online_write_batch(
            self._config, view, [(_entity_key(view, row), protos, at, None)], progress=None
        )

    def _read(
        self, view: FeatureView, row: Mapping[str, Any]
    ) -> tuple[dict[str, Any], datetime | None]:
        [(written, found)] = self._provider.online_read(
            self._config, view, [_entity_key(view, row)], [f.name for f in view.features]
        )
        found = found or {}
        values = {
            field.name: _python(found[field.name]) if field.name in found else None
            for field in view.features
        }
        if written is not None and written.tzinfo is None:
            written = written.replace(tzinfo=UTC)
        # Feast's Redis store answers a key it does not hold with the epoch and empty values: no
        # row. (Rows of static attributes are stamped at the epoch too, but carry values; a
        # marker row carries none, but its materialization time.)
        empty = all(value is None for value in values.values())
        absent = not found or (written in (None, _EPOCH) and empty)
        return values, None if absent else written


def _stale_views(
    views: Iterable[FeatureView], written_at: Mapping[str, datetime | None], at: datetime
) -> list[FeatureView]:
    """Views whose online row is older than their TTL at ``at`` (a TTL of zero never expires).

    The row's time is its event time (what the build computed it as of), not when it was
    materialized: a row materialized today from a month-old build is a month old.
    """
    return [
        view
        for view in views
        if view.ttl
        and (written := written_at.get(view.name)) is not None
        and at - written > view.ttl
    ]


def _two_round_trips(
    history: PaymentHistory,
    config: RepoConfig,
    pushed: list[FeatureView],
    stored: list[FeatureView],
) -> RedisPaymentRoundTrips | None:
    """The two-round-trip path when the history and Feast share one Redis, else None."""
    if not isinstance(history, RedisPaymentHistory) or not shares_feast_redis(history, config):
        return None
    keys = {column.name for view in [*pushed, *stored] for column in view.entity_columns}
    if not keys <= REQUEST_ENTITIES:
        return None
    return RedisPaymentRoundTrips(history, config, pushed, stored)


def _pushed_from(view: FeatureView, push_source: str) -> bool:
    source = view.stream_source
    return isinstance(source, PushSource) and source.name == push_source


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class OnDemandTransform:
    """An on-demand view's function called as ``OnDemandFeatureView.transform_dict`` calls it.

    Feast declares the view class ``@typechecked``, so each ``transform_dict`` runs typeguard's
    runtime checks on its arguments and those of its helper (about 0.1 ms of a payment's CPU);
    the names and types they derive are worked out once here instead. A test compares the two.
    """

    transformation: Any  # the view's PythonTransformation: its udf, as the view calls it
    singleton: bool
    # (name present, name added): each source feature under its full and its short name.
    aliases: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, ValueType], ...]
    # Each output's stored_scalar, chosen once by its type (values.scalar_encoder)
    encoders: tuple[tuple[str, Callable[[Any], tuple[Any, bytes]]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        encoders = tuple((name, scalar_encoder(kind)) for name, kind in self.outputs)
        object.__setattr__(self, "encoders", encoders)

    @classmethod
    def of(cls, view: OnDemandFeatureView) -> OnDemandTransform:
        aliases = []
        for projection in view.source_feature_view_projections.values():
            for feature in projection.features:
                aliases.append((f"{projection.name}__{feature.name}", feature.name))
        return cls(
            transformation=view.feature_transformation,
            singleton=bool(view.singleton and view.mode == "python"),
            aliases=tuple(aliases),
            outputs=tuple((f.name, f.dtype.to_value_type()) for f in view.features),
        )

    def outputs_of(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The view's outputs for one row of inputs, as ``transform_dict`` returns them."""
        columns = {name: [value] for name, value in inputs.items()}
        added = dict(columns)
        cleanup = []
        for full, short in self.aliases:
            if full in columns:
                added[short] = columns[full]
                cleanup.append(short)
            elif short in columns:
                added[full] = columns[short]
                cleanup.append(full)
        if self.singleton:
            output = self.transformation.transform_singleton(added)
        else:
            output = self.transformation.transform(added)
        for name in cleanup:
            output.pop(name, None)
        return {name: output[name][0] for name, _ in self.outputs}

    def stored_outputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs as Feast serves them: through their declared types."""
        values = self.outputs_of(inputs)
        return {name: encode(values[name])[0] for name, encode in self.encoders}


REQUEST_ENTITIES = frozenset({"customer_id", "terminal_id"})


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
    """Feast's own read of the service for this payment: the reference the fast path matches."""
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
