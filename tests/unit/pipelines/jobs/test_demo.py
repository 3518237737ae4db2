"""The demo's first step as a library call: a simulated world written, its steps reported."""

from pathlib import Path

import pandas as pd

from pipelines.jobs.demo import simulate_and_write
from pipelines.simulate import SimulationConfig

TINY_WORLD = SimulationConfig(customers=10, days=7, seed=3)


def test_simulate_and_write_reports_its_steps_and_names_each_file_it_wrote(
    tmp_path: Path,
) -> None:
    told: list[str] = []

    world = simulate_and_write(TINY_WORLD, tmp_path, progress=told.append)

    assert told[0].startswith("simulating "), f"each stage is told as it starts: {told}"
    assert told[-1] == "writing Parquet files", told
    assert set(world.files) == {"transactions", "texts", "customers", "terminals"}
    for name, path in world.files.items():
        assert path.parent == tmp_path
        assert len(pd.read_parquet(path)) == len(getattr(world, name)), f"{name} as simulated"
