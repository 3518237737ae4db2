"""Shared fixtures: a small simulated world, made once per session, an isolated RISK_HOME and
the platform's clock frozen at the tests' fixed "now" (tests/clock.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from pipelines.simulate import SimulatedWorld, SimulationConfig, simulate_world, write_world
from tests.clock import at_now

SMALL_WORLD = SimulationConfig(customers=120, days=14, seed=3)


@pytest.fixture(scope="session")
def small_world() -> SimulatedWorld:
    return simulate_world(SMALL_WORLD)


@pytest.fixture(scope="session")
def small_world_dir(small_world: SimulatedWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(small_world, out)
    return out


@pytest.fixture
def risk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point RISK_HOME at a throw-away folder and use the embedded default profile."""
    monkeypatch.setenv("RISK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RISK_ENV", "local")
    yield tmp_path / "home"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--today",
        metavar="YYYY-MM-DD",
        help="run the whole session as if the calendar said this day (make test-calendar)",
    )


@pytest.fixture(scope="session", autouse=True)
def calendar_day(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``--today``, the session's clock starts at that day's noon and runs on from there."""
    today = request.config.getoption("--today")
    if today is None:
        yield
        return
    day = datetime.fromisoformat(today).replace(hour=12, tzinfo=UTC)
    with time_machine.travel(day, tick=True):
        yield


@pytest.fixture
def fixed_now() -> Iterator[datetime]:
    """The platform's clock starts at ``tests.clock.NOW`` for the test (see ``at_now``)."""
    with at_now() as now:
        yield now
