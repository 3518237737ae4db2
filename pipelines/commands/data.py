"""``riskctl data``: simulate a world and validate event files against their contracts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from decisioning.settings import load_settings
from pipelines.commands.reading import DateFormat, OnBadRows, Timezone, reading_config

if TYPE_CHECKING:  # pandas, scipy and GX load when a command runs, not for --help
    from pipelines.simulate import SimulatedWorld, SimulationConfig

# The suites of pipelines.quality.SUITES, spelled here so --help need not load GX (a test keeps
# the two equal).
KINDS = ("transactions", "texts", "training-set")

app = typer.Typer(help="Simulate, load and validate event data.", no_args_is_help=True)
console = Console()


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="folder for the four Parquet files")],
    customers: Annotated[int, typer.Option(min=10)] = 5_000,
    days: Annotated[int, typer.Option(min=7)] = 90,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Write transactions, texts, customers and terminals of a simulated world.

    Their columns are described in docs/design.md, Contracts: events.
    """
    from pipelines.simulate import SimulationConfig

    world = simulate_with_status(SimulationConfig(customers=customers, days=days, seed=seed), out)
    console.print(summary_table(world))


@app.command()
def validate(
    kind: Annotated[str, typer.Argument(help=" | ".join(KINDS))],
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file")],
    timezone: Timezone = None,
    date_format: DateFormat = None,
    on_bad_rows: OnBadRows = None,
) -> None:
    """Check a file against its data contract; print failed expectations and exit 1 on failure.

    With ``--on-bad-rows quarantine`` the failing rows are written beside the file
    (``<name>.<kind>.quarantine.csv``) and the check passes while they are few.
    """
    from pipelines.ingest import load_events, read_table
    from pipelines.quality import validate_frame
    from pipelines.quarantine import gate_events, quarantine_path

    if kind not in KINDS:
        raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="KIND")
    reading = reading_config(load_settings(), timezone, date_format, on_bad_rows)
    frame = read_table(path) if kind == "training-set" else load_events(path, kind, reading)
    if reading.on_bad_rows == "quarantine" and kind != "training-set":
        with console.status(f"validating {len(frame):,} rows against suite {kind}"):
            checked = gate_events(frame, kind, reading, quarantine_path(path, kind))
        if checked.quarantine is not None:
            console.print(checked.quarantine.line(), highlight=False)
        return
    with console.status(f"validating {len(frame):,} rows against suite {kind}"):
        result = validate_frame(frame, kind)
    console.print(result.report(), highlight=False)
    if not result.success:
        print(f"riskctl: {result.summary()}", file=sys.stderr)
        raise typer.Exit(1)


def simulate_with_status(config: SimulationConfig, out: Path) -> SimulatedWorld:
    """Simulate and write the files under a status line, then name each file written."""
    from pipelines.jobs.demo import simulate_and_write

    with console.status("simulating") as status:
        world = simulate_and_write(config, out, progress=status.update)
    for name, path in world.files.items():
        rows = len(getattr(world, name))
        console.print(f"wrote {path} ({rows:,} rows)", highlight=False)
    return world


def summary_table(world: SimulatedWorld) -> Table:
    """Counts per fraud scenario and per text category: what the world contains."""
    table = Table(title="simulated world", show_lines=False)
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    table.add_column("labelled", justify="right")
    payments = world.transactions
    for scenario, group in payments.groupby("fraud_scenario"):
        table.add_row(
            "payments", str(scenario), f"{len(group):,}", f"{group['label'].notna().sum():,}"
        )
    for category, group in world.texts.groupby("category"):
        table.add_row("texts", str(category), f"{len(group):,}", f"{len(group):,}")
    table.add_row("customers", "vulnerable", f"{int(world.customers['vulnerable'].sum()):,}", "")
    return table
