"""Checkpoints in the background: every N records appended or T seconds, never on a request.

The audit writer tells it how many records each commit added (a counter and, past N, an event:
nothing else happens on the writer's thread); its own thread verifies, signs and anchors. A
checkpoint that fails is logged and tried again at the next trigger: a decision never waits for,
or fails because of, the anchor. ``riskctl audit verify`` reports what is still unanchored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BackgroundCheckpointer:
    """Runs ``take_checkpoint`` on its own thread every ``every_records`` or ``every_seconds``.

    A record appended when no checkpoint was taken for ``every_seconds`` (the process's first, or
    the first after a quiet spell) is anchored at once: verification measures how long the tail
    has gone unanchored from the latest signed checkpoint, which a quiet spell leaves old.
    """

    def __init__(
        self,
        take_checkpoint: Callable[[], object],
        every_records: int,
        every_seconds: float,
        name: str = "audit-checkpointer",
    ) -> None:
        self._take_checkpoint = take_checkpoint
        self._every_records = every_records
        self._every_seconds = every_seconds
        self._appended = 0
        self._lock = threading.Lock()
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._last_failure: str | None = None
        self._last_taken = -float("inf")  # monotonic time of the latest checkpoint attempt

    def start(self) -> None:
        self._thread.start()

    def appended(self, count: int) -> None:
        """Count records just committed; wake the thread once a checkpoint's worth is reached,
        or at once when none was taken for ``every_seconds``."""
        with self._lock:
            self._appended += count
            quiet = time.monotonic() - self._last_taken >= self._every_seconds
            due = self._appended >= self._every_records or quiet
        if due:
            self._due.set()

    def close(self) -> None:
        """Stop the thread after one last checkpoint of what was appended since the previous."""
        if self._thread.is_alive():
            self._stopping = True
            self._due.set()
            self._thread.join()
        with self._lock:  # appended while the thread's last checkpoint was being written
            left, self._appended = self._appended, 0
        if left:
            self._checkpoint()

    def _run(self) -> None:
        while True:
            self._due.wait(timeout=self._every_seconds)
            self._due.clear()
            with self._lock:
                appended, self._appended = self._appended, 0
            if appended and not self._checkpoint():
                with self._lock:  # still unanchored: try again at the next trigger
                    self._appended += appended
            if self._stopping:
                return

    def _checkpoint(self) -> bool:
        self._last_taken = time.monotonic()
        try:
            self._take_checkpoint()
        except Exception as exc:  # the request path must never see an anchor failure
            kind = getattr(exc, "kind", type(exc).__name__)  # a child process's names its own
            failure = f"{kind}: {exc}"
            if failure != self._last_failure:  # once per kind of failure, not every interval
                # The kind is an argument of its own: a log filter may mask the prose after it.
                logger.error("audit checkpoint failed: %s: %s", kind, exc)
            self._last_failure = failure
            return False
        self._last_failure = None
        return True
