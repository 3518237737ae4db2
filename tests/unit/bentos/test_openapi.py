"""The served OpenAPI document: 3.1, nullable where null is returned, every status, bearer."""

from pathlib import Path

from starlette.testclient import TestClient

from tests.support.events import PAYMENT
from tests.unit.bentos.asgi import KEY

AUTH = {"Authorization": f"Bearer {KEY}"}


def test_the_document_is_openapi_3_1_with_every_status_and_the_bearer_scheme(
    risk_app: tuple[TestClient, Path],
) -> None:
    document = risk_app[0].get("/docs.json", headers=AUTH).json()

    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    statuses = set(document["paths"]["/v1/decisions"]["post"]["responses"])
    assert {"200", "400", "401", "409", "415", "503"} <= statuses, statuses
    decision = document["components"]["schemas"]["RiskDecision"]["properties"]
    for optional in ("feature_service", "prompt_version", "rules_version"):
        assert {"type": "null"} in decision[optional]["anyOf"], decision[optional]
    refusal = document["components"]["schemas"]["Refusal"]["properties"]
    assert refusal["detail"]["type"] == "array"


def test_a_refusal_matches_its_declared_shape(risk_app: tuple[TestClient, Path]) -> None:
    response = risk_app[0].post(
        "/v1/decisions", json={"transaction": {**PAYMENT, "amount": True}}, headers=AUTH
    )

    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["detail"], list)
    assert {"type", "loc", "msg"} <= set(body["detail"][0])
