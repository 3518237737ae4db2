"""Refusals through RiskService's ASGI app: 415 for non-JSON, 400 out of bounds, quiet logs.

A refused request is answered with its reason, writes nothing, and is logged at INFO without its
body or a traceback, so personal data in it reaches no log line and ERROR stays for our failures.
"""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from decisioning.telemetry.observability import configure_logging
from tests.support.clock import NOW
from tests.support.events import PAYMENT
from tests.support.served import audit_rows
from tests.unit.bentos.asgi import KEY

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "Zebedee Quasimodo"


@pytest.fixture
def client(risk_app: tuple[TestClient, Path]) -> tuple[TestClient, Path]:
    return risk_app


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("risk_service", stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def now_payment(**changes: object) -> dict[str, object]:
    return {**PAYMENT, "occurred_at": NOW.isoformat(), **changes}


def personal_message() -> dict[str, object]:
    text = f"my husband {SECRET} took my card, call me on +44 7700 900123"
    return {"message_id": "m-pii", "received_at": "x", "text": text, "customer_id": "C-PII-77"}


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/vnd.bentoml+pickle",
    ],
)
def test_a_body_that_is_not_json_gets_415(
    client: tuple[TestClient, Path], content_type: str
) -> None:
    test_client, home = client
    before = audit_rows(home)

    response = test_client.post(
        "/v1/decisions", content=b"{}", headers={**AUTH, "Content-Type": content_type}
    )

    assert response.status_code == 415, response.text
    assert audit_rows(home) == before, "a refused request must write nothing"


def test_without_a_key_the_answer_is_401_whatever_the_content_type(
    client: tuple[TestClient, Path],
) -> None:
    response = client[0].post(
        "/v1/decisions", content=b"a=b", headers={"Content-Type": "multipart/form-data"}
    )

    assert response.status_code == 401


@pytest.mark.parametrize("amount", [1e39, 1e308, 1e-40, 5e-324, 1_000_001])
def test_an_amount_out_of_the_deployments_bounds_gets_400_naming_it(
    client: tuple[TestClient, Path], amount: float
) -> None:
    test_client, home = client
    before = audit_rows(home)
    body = {"transaction": now_payment(transaction_id=f"tx-{amount}", amount=amount)}

    response = test_client.post("/v1/decisions", json=body, headers=AUTH)

    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["transaction", "amount"], response.text
    assert audit_rows(home) == before, "a refused request must write nothing"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_an_event_far_from_now_gets_400(client: tuple[TestClient, Path], moment: str) -> None:
    body = {"transaction": now_payment(occurred_at=moment)}

    response = client[0].post("/v1/decisions", json=body, headers=AUTH)

    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["transaction", "occurred_at"]


def test_the_scoring_route_keeps_the_same_bounds(client: tuple[TestClient, Path]) -> None:
    body = {"transaction": now_payment(amount=1e39)}

    response = client[0].post("/v1/fraud/score", json=body, headers=AUTH)

    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["transaction", "amount"]


def test_refusals_log_their_reason_at_info_without_the_body(
    client: tuple[TestClient, Path], log_lines: io.StringIO
) -> None:
    test_client, _ = client
    form = json.dumps({"text": {**personal_message(), "received_at": "2026-06-01T10:00:00Z"}})
    bodies = [
        # a form-encoded body (curl without a content type), then JSON failing validation
        ({"Content-Type": "application/x-www-form-urlencoded"}, form.encode()),
        ({"Content-Type": "application/json"}, json.dumps({"text": personal_message()}).encode()),
        ({"Content-Type": "application/json"}, json.dumps({form: 1}).encode()),
        ({"Content-Type": "application/json"}, b"{" + form.encode()),
    ]

    statuses = [
        test_client.post("/v1/decisions", content=body, headers={**AUTH, **headers}).status_code
        for headers, body in bodies
    ]

    assert statuses == [415, 400, 400, 400]
    text = log_lines.getvalue()
    for secret in (SECRET, "Zebedee", "7700 900123", "C-PII-77", "husband"):
        assert secret not in text, f"{secret!r} reached the log:\n{text}"
    lines = [json.loads(line) for line in text.splitlines()]
    refused = [line for line in lines if str(line["message"]).startswith("refused")]
    assert len(refused) == 4, lines
    assert all(line["level"] == "INFO" and "exception" not in line for line in lines), lines
    assert "text.received_at:" in json.dumps(refused), "the reason names the field"
