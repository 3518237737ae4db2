"""Shared fixtures: a small simulated world, made once per session, an isolated RISK_HOME and
the platform's clock frozen at the tests' fixed "now" (tests/support/clock.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from pipelines.simulate import SimulatedWorld, SimulationConfig, simulate_world, write_world
from tests.support.clock import NOW, at_now, subprocess_env

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
        help="start the session's clock at this day's noon, not at tests.support.clock.NOW",
    )


@pytest.fixture(scope="session", autouse=True)
def session_clock(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """The whole session runs on a clock that starts at ``tests.support.clock.NOW`` (or
    ``--today``'s noon) and ticks on, in this process and in every Python process a test
    starts."""
    today = request.config.getoption("--today")
    start = NOW if today is None else datetime.fromisoformat(today).replace(hour=12, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as environment:
        for name, value in subprocess_env(start).items():
            environment.setenv(name, value)
        with time_machine.travel(start, tick=True):
            yield start


@pytest.fixture
def fixed_now() -> Iterator[datetime]:
    """The platform's clock starts at ``tests.support.clock.NOW`` for the test (see ``at_now``)."""
    with at_now() as now:
        yield now


# Fixtures that take minutes and are shared by several modules: the modules that use them run on
# one worker under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``), so each is built
# once per session, as in a serial run.
_SHARED_GROUPS = {
    "trained_world": "trained-world",  # a served world: train, materialize (tests/integration)
}
_DIRECTORY_GROUPS = ("tests/spark/", "tests/infra/", "tests/aws/", "tests/model/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every test in an xdist group: its module's (module fixtures are built once), or the
    group of an expensive session fixture it shares with other modules."""
    for item in items:
        module = item.nodeid.split("::")[0]
        group = next(
            (name for fixture, name in _SHARED_GROUPS.items() if fixture in item.fixturenames),
            next((prefix for prefix in _DIRECTORY_GROUPS if module.startswith(prefix)), module),
        )
        item.add_marker(pytest.mark.xdist_group(group))
