"""How fresh the online store is: when each batch feature view was last materialized.

Push-fed views (velocity, profile, terminal history of a customer) are updated online by the
payment being decided, just before the fetch. Batch views (terminal risk, customer attributes)
change online only when ``riskctl features materialize`` runs, so their staleness is the time
since the end of their latest materialization, which Feast's registry keeps per view. The
service publishes that time, and dashboards and the alert compute the age with PromQL. A batch
view never materialized has nothing online, so the service answers ``/readyz`` with 503 until
every one has been (:func:`not_ready_reason`).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from decisioning.settings import Settings
from decisioning.telemetry.metrics import publish_materialization_times

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

logger = logging.getLogger(__name__)

# Materialization runs hourly; reading the registry once a minute is plenty and costs little.
REFRESH_SECONDS = 60.0


def materialized_until(views: Iterable[FeatureView]) -> dict[str, datetime | None]:
    """Per online batch feature view, the end of its latest materialization (None: never)."""
    return {
        view.name: view.most_recent_end_time
        for view in views
        if view.online and view.stream_source is None
    }


def publish_feature_freshness(store: FeatureStore) -> dict[str, datetime | None]:
    """Read the registry afresh (not Feast's cache) and publish the batch views' times."""
    materialized = materialized_until(store.list_feature_views(allow_cache=False))
    publish_materialization_times(materialized)
    return materialized


def not_ready_reason(materialized: Mapping[str, datetime | None] | None) -> str | None:
    """Why batch features cannot be served online yet, or None once every batch view has been
    materialized. ``materialized`` is None until the registry has been read once."""
    if materialized is None:
        return "the Feast registry has not been read yet"
    if not materialized:
        return "no batch feature views are registered; run riskctl features apply"
    never = sorted(view for view, until in materialized.items() if until is None)
    if never:
        return (
            f"nothing online for batch feature views {', '.join(never)}: never materialized; "
            "run riskctl features materialize"
        )
    return None


class FeatureFreshnessWatch(threading.Thread):
    """Publish at once, then every ``every_seconds`` until :meth:`stop`; never stops the service.

    A failed read is logged and retried at the next tick: the published times then stop moving,
    so the age PromQL computes keeps growing and the staleness alert fires if it lasts.
    """

    def __init__(
        self, open_store: Callable[[], FeatureStore], every_seconds: float = REFRESH_SECONDS
    ) -> None:
        super().__init__(name="feature-freshness", daemon=True)
        self._open_store = open_store
        self._every_seconds = every_seconds
        self._stopped = threading.Event()
        self._store: FeatureStore | None = None
        self._materialized: dict[str, datetime | None] | None = None

    def run(self) -> None:
        while True:
            self.publish_once()
            if self._stopped.wait(self._every_seconds):
                return

    def publish_once(self) -> None:
        try:
            if self._store is None:
                self._store = self._open_store()
            self._materialized = publish_feature_freshness(self._store)
        except Exception as exc:  # a monitoring thread must outlive a registry outage
            logger.warning(
                "feature freshness not read from the Feast registry: %s: %s",
                type(exc).__name__,
                exc,
            )

    def not_ready_reason(self) -> str | None:
        """See :func:`not_ready_reason`, on the last successful read of the registry."""
        return not_ready_reason(self._materialized)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end and wait for it, at most ``timeout`` seconds."""
        self._stopped.set()
        self.join(timeout)


def watch_feature_freshness(
    settings: Settings, every_seconds: float = REFRESH_SECONDS
) -> FeatureFreshnessWatch:
    """Publish the batch views' materialization times now and every ``every_seconds``, in a
    thread that ends before the process does."""
    # Feast loads here, in the caller's thread: an import still running in the watch's thread
    # would hold up the service worker's shutdown until it ended (tens of seconds, measured).
    from decisioning.adapters.feast.store import open_feature_store

    watch = FeatureFreshnessWatch(partial(open_feature_store, settings), every_seconds)
    watch.start()
    atexit.register(watch.stop)
    return watch
