"""``/readyz``: 503 with the reason while the served feature service has nothing online.

The check on the class called directly, then the real ASGI app BentoML builds, whose own 503 would
only say that ``__is_ready__`` returned False.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.exceptions import HTTPException
from starlette.testclient import TestClient

from bentos.service import RiskService

NOTHING_ONLINE = "nothing online for batch feature views terminal_risk: never materialized"
SERVICE_CLASS = RiskService.inner  # type: ignore[attr-defined]


def service_with(fraud: object, reason: str | None) -> SimpleNamespace:
    watch = SimpleNamespace(not_ready_reason=lambda: reason)
    service = SimpleNamespace(fraud=fraud, feature_freshness=watch)
    service.not_ready_reason = lambda: SERVICE_CLASS.not_ready_reason(service)
    return service


def test_a_served_feature_service_with_nothing_online_is_not_ready() -> None:
    service = service_with(fraud=object(), reason=NOTHING_ONLINE)

    with pytest.raises(HTTPException) as refused:
        SERVICE_CLASS.__is_ready__(service)

    assert (refused.value.status_code, refused.value.detail) == (503, NOTHING_ONLINE)


def test_materialized_features_are_ready() -> None:
    assert SERVICE_CLASS.__is_ready__(service_with(fraud=object(), reason=None)) is True


def test_without_a_fraud_pillar_no_features_are_served_so_they_do_not_hold_readiness() -> None:
    assert SERVICE_CLASS.__is_ready__(service_with(fraud=None, reason=NOTHING_ONLINE)) is True


@pytest.mark.slow
def test_the_app_answers_503_with_the_reason_then_200(
    risk_app: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = risk_app
    # given the served feature service with nothing online
    monkeypatch.setattr(SERVICE_CLASS, "not_ready_reason", lambda self: NOTHING_ONLINE)
    # when the probe asks, then it is told why not
    not_ready = client.get("/readyz")
    assert (not_ready.status_code, NOTHING_ONLINE in not_ready.text) == (503, True), not_ready.text
    # and once materialized, it is ready
    monkeypatch.setattr(SERVICE_CLASS, "not_ready_reason", lambda self: None)
    assert client.get("/readyz").status_code == 200
