"""Simulator and quality gate at the demo's default size, against the floor of writing the files.

Target (foundation issue): about 5,000 customers over 90 days generated in under a minute.
Run: .venv/bin/python bench/simulate_bench.py
"""

import tempfile
import time
from pathlib import Path

from pipelines.ingest import conform
from pipelines.quality import validate_frame
from pipelines.simulate import SimulationConfig, simulate_world, write_world


def timed(label: str, action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:7.2f} s")
    return result, seconds


def main() -> None:
    config = SimulationConfig()
    world, simulate_s = timed(
        f"simulate {config.customers:,} customers x {config.days} days",
        lambda: simulate_world(config),
    )
    rows = len(world.transactions)
    print(f"{'':<44} {rows:,} payments, {rows / simulate_s:,.0f} payments/s")
    with tempfile.TemporaryDirectory() as folder:
        timed("floor: write the four Parquet files", lambda: write_world(world, Path(folder)))
    frame = conform(world.transactions, "transactions")
    result, _ = timed(
        "GX transactions suite on all payments", lambda: validate_frame(frame, "transactions")
    )
    assert result.success, result.report()
    print(f"target: simulate under 60 s -> {'met' if simulate_s < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
