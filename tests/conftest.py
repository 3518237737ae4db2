"""Shared fixtures: a small simulated world, made once per session, and an isolated RISK_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.simulate import SimulatedWorld, SimulationConfig, simulate_world, write_world

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
