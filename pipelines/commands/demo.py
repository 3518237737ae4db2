"""``riskctl demo``: the main job end to end on the embedded default (DESIGN section 2).

Each stage is a function of the settings and what earlier stages made; the demo only wires them
and prints what happened. Later stages (features, training, serving, audit) join this list as the
platform grows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from decisioning.settings import load_settings
from pipelines.commands.data import simulate_and_write, summary_table
from pipelines.ingest import load_checked
from pipelines.simulate import SimulationConfig

console = Console()


def demo(
    customers: Annotated[int, typer.Option(min=10)] = 5_000,
    days: Annotated[int, typer.Option(min=7)] = 90,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Simulate, validate and summarise a world (then features, models, decisions as they land)."""
    settings = load_settings()
    data_dir: Path = settings.data_path
    started = time.perf_counter()

    console.rule(f"1. simulate ({customers:,} customers, {days} days, seed {seed}) → {data_dir}")
    world = simulate_and_write(
        SimulationConfig(customers=customers, days=days, seed=seed), data_dir
    )

    console.rule("2. quality gate (Great Expectations)")
    for kind in ("transactions", "texts"):
        with console.status(f"validating {kind}"):
            frame = load_checked(data_dir / f"{kind}.parquet", kind)
        console.print(f"{kind}: {len(frame):,} rows passed the {kind} suite", highlight=False)

    console.rule("summary")
    console.print(summary_table(world))
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s", highlight=False)
