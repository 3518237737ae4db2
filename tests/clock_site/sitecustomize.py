"""Moves the clock of a process the tests start (``riskctl``, the served bento and its workers).

Python imports ``sitecustomize`` at start-up from the path; ``subprocess_env`` of
``tests.support.clock`` puts this folder first on ``PYTHONPATH`` and names the instant in
``RISK_TEST_CLOCK``. Production never sets either, and nothing in the platform imports this
module.
"""

import os

if os.environ.get("RISK_TEST_CLOCK"):
    from datetime import datetime

    import time_machine

    time_machine.travel(datetime.fromisoformat(os.environ["RISK_TEST_CLOCK"]), tick=True).start()
