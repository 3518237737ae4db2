"""A stop asked for while a service process starts ends it then, not once it has started.

uvicorn installs its SIGTERM and SIGINT handlers before the application's lifespan begins; they
only set a flag the server reads once start-up is over. A service's ``__init__`` runs inside that
start-up and may take long (the models, the MLflow store's migrations on first use, the prompt
registry's wait of up to 30 s; a CI run on a loaded machine saw a worker still starting 60 s after
the stop), so a worker still starting when the platform stopped the service ran all of it first.
While ``starting()`` holds, either signal ends the process at once, exit status 0, with one JSON
log line: it has served nothing, so it has nothing to flush (its audit checkpoint child, if one
started, follows its parent out). The server's own handlers are back once the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from decisioning.core.events import utc_now

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def starting() -> Iterator[None]:
    """Within the block, SIGTERM or SIGINT end the process (main thread only: elsewhere, where
    Python cannot set a handler, the block changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(signum: int, _frame: FrameType | None) -> None:
    # Written straight to stderr: the logging module may be mid-write on this very thread.
    line = {
        "ts": utc_now().isoformat(timespec="milliseconds"),
        "level": "INFO",
        "logger": __name__,
        "message": f"stopped by {signal.Signals(signum).name} while starting: exiting unserved",
    }
    os.write(2, (json.dumps(line) + "\n").encode())
    os._exit(0)
