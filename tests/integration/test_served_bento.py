"""A real ``bentoml serve`` of RiskService (no models registered): the HTTP contract of 4.6."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisioning.audit import AuditStore
from decisioning.settings import load_settings
from tests.events import PAYMENT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "test-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
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
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def post(url: str, body: object, key: str | None = KEY) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{url}/v1/decisions", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def audit_rows(home: Path) -> int:
    store = AuditStore.open(load_settings({"RISK_HOME": str(home)}).audit.url)
    try:
        return store.verify().checked
    finally:
        store.close()


def test_no_key_gets_401(service: tuple[str, Path]) -> None:
    status, _ = post(service[0], {"transaction": PAYMENT}, key=None)

    assert status == 401


def test_bad_input_gets_a_field_level_4xx_and_writes_nothing(service: tuple[str, Path]) -> None:
    url, home = service
    before = audit_rows(home)

    status, body = post(url, {"transaction": {**PAYMENT, "amount": "lots"}})

    assert 400 <= status < 500
    assert "amount" in json.dumps(body), body
    assert audit_rows(home) == before, "a refused request must leave no audit record"


def test_unknown_fields_and_labels_are_refused(service: tuple[str, Path]) -> None:
    assert post(service[0], {"transaction": {**PAYMENT, "label": 1}})[0] == 400
    assert post(service[0], {"transaction": PAYMENT, "verdict": "ok"})[0] == 400


def test_without_models_a_decision_is_degraded_to_review_and_audited(
    service: tuple[str, Path],
) -> None:
    url, home = service

    status, decision = post(url, {"transaction": PAYMENT})

    assert status == 200
    assert decision["action"] == "review", "a missing model is never a silent approval"
    assert decision["degraded"], decision
    assert audit_rows(home) >= 1
