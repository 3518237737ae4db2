"""The child process that takes a served process's checkpoints (``checkpoint_process.py``).

A module of its own so that ``python -m`` runs it without the package having imported it first.
Its life is its parent's: end of input stops it, and so does the parent's death, even in the middle
of a checkpoint (a thread watches the parent's pid; a forked process of the parent's may hold the
pipe open after it died). So it ignores SIGTERM and SIGINT: a supervisor stopping the service
signals a worker's children too (BentoML's circus watchers stop with ``stop_children``), and a
child that died then left the worker's last checkpoint to a new child started from cold, with an
ERROR line at every stop. The parent starts it with both signals blocked, so one that arrives while
the package imports (about a second) waits here and is discarded.
"""

import os
import signal
import sys
import threading
import time

PARENT_CHECK_S = 0.5


def _exit_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the process that started this one is gone
            os._exit(1)
        time.sleep(PARENT_CHECK_S)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    threading.Thread(
        target=_exit_with_parent, args=(int(sys.argv[1]),), name="parent-watch", daemon=True
    ).start()

    from decisioning.adapters.audit.checkpoint_process import serve

    serve(sys.stdin, sys.stdout)
