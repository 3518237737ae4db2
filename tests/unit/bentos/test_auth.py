"""The API-key middleware as ASGI: refuses without a valid key, lets health checks through."""

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bentos.auth import ApiKeyMiddleware


def ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RISK_API_KEYS", "alpha,beta")
    app = Starlette(routes=[Route("/v1/decisions", ok, methods=["POST"]), Route("/readyz", ok)])
    app.add_middleware(ApiKeyMiddleware)
    with TestClient(app) as test_client:
        yield test_client


def test_no_key_is_refused_with_401(client: TestClient) -> None:
    response = client.post("/v1/decisions")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer gamma", "Basic alpha", "alpha", "Bearer "])
def test_a_wrong_key_or_scheme_is_refused(client: TestClient, header: str) -> None:
    assert client.post("/v1/decisions", headers={"Authorization": header}).status_code == 401


@pytest.mark.parametrize("key", ["alpha", "beta"])
def test_every_configured_key_is_accepted(client: TestClient, key: str) -> None:
    response = client.post("/v1/decisions", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200


def test_health_checks_need_no_key(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_with_no_keys_configured_everything_protected_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RISK_API_KEYS", "")
    app = Starlette(routes=[Route("/v1/decisions", ok, methods=["POST"])])
    app.add_middleware(ApiKeyMiddleware)

    with TestClient(app) as client:
        assert client.post("/v1/decisions", headers={"Authorization": "Bearer "}).status_code == 401
