"""A served process the demo, the benches and the tests start: it is waited for and stopped."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.serving_process import ServiceNotReady, stop_process, wait_until_ready

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ignoring', "
    "flush=True); time.sleep(60)"
)


def test_a_process_that_exits_before_it_is_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    log.write_text("address already in use\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)

    with pytest.raises(ServiceNotReady, match="exited with 3: address already in use"):
        wait_until_ready("http://127.0.0.1:9", process, log, timeout_s=5)


def test_a_process_that_ignores_terminate_is_killed_after_the_grace_period() -> None:
    with subprocess.Popen([sys.executable, "-c", IGNORES_TERM], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stdout.readline() == b"ignoring\n"

        stop_process(process, grace_s=0.5)

    assert process.returncode == -9, "terminate was ignored: the process must be killed"
