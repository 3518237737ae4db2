"""The child process that takes a served process's checkpoints (``checkpoint_process.py``).

A module of its own so that ``python -m`` runs it without the package having imported it first.
Its life is its parent's pipe (end of input stops it, a parent killed outright included), so it
ignores SIGTERM and SIGINT: a supervisor stopping the service signals a worker's children too
(BentoML's circus watchers stop with ``stop_children``), and a child that died then left the
worker's last checkpoint to a new child started from cold, with an ERROR line at every stop. The
parent starts it with both signals blocked, so one that arrives while the package imports (about
a second) waits here and is discarded.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

if __name__ == "__main__":
    import sys

    from decisioning.adapters.audit.checkpoint_process import serve

    serve(sys.stdin, sys.stdout)
