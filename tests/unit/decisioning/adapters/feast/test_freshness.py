"""Feature staleness: the batch views' materialization times, read from Feast's registry."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feast import FeatureStore
from prometheus_client import REGISTRY

from decisioning.adapters.feast import freshness
from decisioning.adapters.feast.errors import FeatureStoreUnavailable
from decisioning.adapters.feast.freshness import (
    FeatureFreshnessWatch,
    materialized_until,
    not_ready_reason,
    watch_feature_freshness,
)
from decisioning.adapters.feast.store import open_feature_store
from decisioning.settings import Settings, load_settings
from feature_repo import feature_views
from pipelines.features.repo import apply_definitions

pytestmark = pytest.mark.filterwarnings(
    "ignore:On demand feature view is an experimental feature:RuntimeWarning"
)

METRIC = "risk_feature_materialized_timestamp_seconds"
START = datetime(2026, 5, 1, tzinfo=UTC)
UNTIL = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PUSH_FED = ("customer_velocity", "customer_profile", "customer_terminal_history")


def published(feature_view: str) -> float | None:
    return REGISTRY.get_sample_value(METRIC, {"feature_view": feature_view})


@pytest.fixture
def applied_registry(risk_home: Path) -> Iterator[Settings]:
    """The repository's definitions in a throw-away registry, terminal_risk materialized once."""
    settings = load_settings()
    store = open_feature_store(settings)
    apply_definitions(store)
    store.registry.apply_materialization(
        store.get_feature_view("terminal_risk"), store.project, START, UNTIL
    )
    yield settings


def test_only_batch_views_count_and_the_latest_interval_end_is_their_time() -> None:
    # given the repository's views, terminal risk materialized twice and attributes never
    terminal_risk = feature_views.terminal_risk.__copy__()
    terminal_risk.materialization_intervals = [(START, UNTIL), (START, START)]
    views = [
        feature_views.customer_velocity,
        feature_views.customer_profile,
        feature_views.customer_terminal_history,
        feature_views.customer_attributes.__copy__(),
        terminal_risk,
    ]

    times = materialized_until(views)

    assert times == {"terminal_risk": UNTIL, "customer_attributes": None}, (
        "push-fed views are refreshed by every payment, so materialization says nothing of them"
    )


def test_features_are_ready_only_once_every_batch_view_was_materialized() -> None:
    assert not_ready_reason(None) == "the Feast registry has not been read yet"
    assert "riskctl features apply" in (not_ready_reason({}) or ""), "no views: not applied"
    waiting = not_ready_reason({"terminal_risk": UNTIL, "customer_attributes": None})
    assert waiting is not None and "customer_attributes: never materialized" in waiting, (
        "one batch view with nothing online is enough to be not ready"
    )
    assert not_ready_reason({"terminal_risk": UNTIL, "customer_attributes": START}) is None


def test_the_watch_publishes_the_registry_at_once_and_stops(applied_registry: Settings) -> None:
    # given a registry where terminal_risk was materialized and customer_attributes not yet
    watch = watch_feature_freshness(applied_registry, every_seconds=0.05)
    try:
        # when the watch has had time to read it
        deadline = time.monotonic() + 60
        while published("terminal_risk") != UNTIL.timestamp() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watch.stop()

    # then each batch view has its time, and the watch ended when asked
    assert published("terminal_risk") == UNTIL.timestamp()
    assert published("customer_attributes") == 0.0, "never materialized reads as the epoch"
    assert all(published(view) is None for view in PUSH_FED)
    assert not watch.is_alive(), "stop() must end the thread"
    assert "customer_attributes: never materialized" in (watch.not_ready_reason() or ""), (
        "a batch view with nothing online keeps the service not ready, and says which"
    )


def test_a_registry_that_cannot_be_read_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a feature store that cannot be opened
    def unreachable() -> FeatureStore:
        raise FeatureStoreUnavailable("Feast registry at db:5432 unreachable")

    watch = FeatureFreshnessWatch(unreachable, every_seconds=0.05)

    # when it is read twice
    with caplog.at_level(logging.WARNING, logger=freshness.__name__):
        watch.publish_once()
        watch.publish_once()

    # then each failure is a warning, not an exception that would end the thread
    failures = [r for r in caplog.records if "feature freshness not read" in r.getMessage()]
    assert len(failures) == 2, caplog.text
