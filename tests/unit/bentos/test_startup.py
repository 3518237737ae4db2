"""A stop asked for while a service starts ends the start-up, in a real process."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from bentos.startup import starting

# A process whose start-up takes a minute (as a worker's may: models, migrations, the prompt
# registry's wait) and that says when it is in it.
_SLOW_START = """
import time
from bentos.startup import starting
with starting():
    print("starting", flush=True)
    time.sleep(60)
print("started", flush=True)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_start_up_ends_the_process_then(stop: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_START], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdout.readline() == b"starting\n"

    process.send_signal(stop)
    out, err = process.communicate(timeout=20)  # the start-up had 60 s to go

    assert b"started" not in out
    assert f"stopped by {stop.name} while starting".encode() in err
    assert process.returncode == 0, "a stop asked for is not a failure"


def test_the_handlers_before_start_up_are_back_after_it() -> None:
    def mine(_signum: int, _frame: object) -> None:
        pass

    before = {s: signal.signal(s, mine) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with starting():
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
