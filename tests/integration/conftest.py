"""The trained world of the modules that serve one, built once a session (worlds.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.worlds import TrainedWorld, build_trained_world, drop_databases


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedWorld]:
    world = build_trained_world(tmp_path_factory.mktemp("world"))
    try:
        yield world
    finally:
        drop_databases(list(world.databases))
