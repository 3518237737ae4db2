"""Every service task publishes what the batch jobs stored: drift, flag quality, job successes.

Read from the operations store now and every minute after, in a thread that never stops the
service: a failed read is logged and retried, and the gauges keep their last values (a job's
last-success time then stops moving, so the lateness alert fires if the store stays away).
"""

from __future__ import annotations

import atexit
import logging
import threading

from decisioning.adapters.operations import OperationsStore
from decisioning.settings import Settings
from decisioning.telemetry.metrics import publish_stored_results

logger = logging.getLogger(__name__)

# Jobs run hourly at most often; a minute's delay on a gauge is nothing to an alert.
REFRESH_SECONDS = 60.0


class StoredResultsWatch(threading.Thread):
    """Publish at once, then every ``every_seconds`` until :meth:`stop`."""

    def __init__(self, url: str, every_seconds: float = REFRESH_SECONDS) -> None:
        super().__init__(name="stored-results", daemon=True)
        self._url = url
        self._every_seconds = every_seconds
        self._stopped = threading.Event()
        self._store: OperationsStore | None = None
        self.published = threading.Event()

    def run(self) -> None:
        while True:
            self.publish_once()
            if self._stopped.wait(self._every_seconds):
                if self._store is not None:
                    self._store.close()
                return

    def publish_once(self) -> bool:
        """Read and publish once; False (and a warning) when the store cannot be read."""
        try:
            if self._store is None:
                self._store = OperationsStore.open(self._url)
            publish_stored_results(self._store)
        except Exception as exc:  # a monitoring thread must outlive a database outage
            logger.warning("stored results not read: %s: %s", type(exc).__name__, exc)
            return False
        self.published.set()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self.join(timeout)


def watch_stored_results(
    settings: Settings, every_seconds: float = REFRESH_SECONDS
) -> StoredResultsWatch:
    """Start publishing the operations store's results for this process."""
    watch = StoredResultsWatch(settings.operations.url, every_seconds)
    watch.start()
    atexit.register(watch.stop)
    return watch
