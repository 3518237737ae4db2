"""A real ``bentoml serve`` of RiskService (no models registered): the HTTP contract of 4.6."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.events import PAYMENT
from tests.support.served import audit_rows, free_port, post_decision

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "test-key"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    home = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "RISK_HOME": str(home), "RISK_ENV": "local", "RISK_API_KEYS": KEY}
    log = open(home / "serve.log", "w")  # noqa: SIM115 - closed in teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, (home / "serve.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("service not ready in 240 s")
        yield url, home, process
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


@pytest.fixture
def service(served: tuple[str, Path, subprocess.Popen[bytes]]) -> tuple[str, Path]:
    return served[0], served[1]


def test_no_key_gets_401(service: tuple[str, Path]) -> None:
    status, _ = post_decision(service[0], {"transaction": PAYMENT}, None)

    assert status == 401


def test_bad_input_gets_a_field_level_4xx_and_writes_nothing(service: tuple[str, Path]) -> None:
    url, home = service
    before = audit_rows(home)

    status, body = post_decision(url, {"transaction": {**PAYMENT, "amount": "lots"}}, KEY)

    assert 400 <= status < 500
    assert "amount" in json.dumps(body), body
    assert audit_rows(home) == before, "a refused request must leave no audit record"


def test_unknown_fields_and_labels_are_refused(service: tuple[str, Path]) -> None:
    assert post_decision(service[0], {"transaction": {**PAYMENT, "label": 1}}, KEY)[0] == 400
    assert post_decision(service[0], {"transaction": PAYMENT, "verdict": "ok"}, KEY)[0] == 400


def test_without_models_a_decision_is_degraded_to_review_and_audited(
    service: tuple[str, Path],
) -> None:
    url, home = service

    status, decision = post_decision(url, {"transaction": PAYMENT}, KEY)

    assert status == 200
    assert decision["action"] == "review", "a missing model is never a silent approval"
    assert decision["degraded"], decision
    assert audit_rows(home) >= 1


def test_a_graceful_stop_anchors_every_record_it_wrote(
    served: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    # given decisions made within one checkpoint interval (60 s) of the process's first record,
    # which the background checkpointer leaves unanchored until the next trigger
    url, home, process = served
    for _ in range(2):
        assert post_decision(url, {"transaction": PAYMENT}, KEY)[0] == 200

    # when the service is stopped the way a platform stops it (SIGTERM, then a grace period)
    process.terminate()
    assert process.wait(timeout=60) is not None

    # then its shutdown hook took a last checkpoint: nothing is left unanchored (--strict exits 3
    # for an unanchored tail)
    env = {**os.environ, "RISK_HOME": str(home), "RISK_ENV": "local"}
    verify = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "audit", "verify", "--strict"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # and no checkpoint failed on the way: the stop signal reaches the workers' checkpoint
    # children too, which must outlive it to take that last checkpoint
    assert "audit checkpoint failed" not in (home / "serve.log").read_text()
