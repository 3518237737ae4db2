"""The child process that takes a served process's checkpoints (``checkpoint_process.py``).

A module of its own so that ``python -m`` runs it without the package having imported it first.
"""

import sys

from decisioning.adapters.audit.checkpoint_process import serve

if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
