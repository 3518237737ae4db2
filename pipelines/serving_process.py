"""A served process started by a caller (the demo, the benches, the tests): is its port free,
wait until it answers ``/readyz``, stop it so it never outlives its caller."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from decisioning.core.errors import RiskPlatformError

READY_TIMEOUT_S = 240


class ServiceNotReady(RiskPlatformError):
    """The served process exited, or did not answer ``/readyz`` in time."""


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` of 127.0.0.1."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Poll ``url/readyz`` each second until it answers 200; raise with the log's tail if the
    process exits first, or when ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            raise ServiceNotReady(f"the service exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise ServiceNotReady(f"the service was not ready within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 30) -> None:
    """Terminate, wait up to ``grace_s``, then kill: a server never outlives its caller."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
