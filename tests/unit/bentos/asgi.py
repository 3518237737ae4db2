"""One RiskService ASGI app per test process: BentoML registers its Prometheus series when the
app is built, and a second build in the same process fails on the duplicated series."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

KEY = "asgi-key"


@pytest.fixture(scope="session")
def risk_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """RiskService's real app in this process (``local`` profile, no models) and its RISK_HOME."""
    from bentos.service import RiskService

    home = tmp_path_factory.mktemp("asgi")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISK_HOME", str(home))
        patch.setenv("RISK_ENV", "local")
        patch.setenv("RISK_API_KEYS", KEY)
        patch.setenv("RISK_TRACE_EXPORTER", "none")
        with TestClient(RiskService.to_asgi()) as test_client:  # type: ignore[attr-defined]
            yield test_client, home
