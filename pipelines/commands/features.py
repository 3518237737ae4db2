"""``riskctl features``: build point-in-time tables, register definitions, fill the online store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from decisioning.settings import load_settings
from pipelines.commands.reading import (
    DateFormat,
    EngineOption,
    OnBadRows,
    Timezone,
    reading_config,
)

app = typer.Typer(help="Feature store: build, apply, materialize.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def build(
    transactions: Annotated[Path, typer.Option(help="CSV or Parquet file of payments")],
    customers: Annotated[
        Path | None, typer.Option(help="customers file; default: customers.parquet beside")
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
    on_bad_rows: OnBadRows = None,
    engine: EngineOption = "pandas",
) -> None:
    """Compute the point-in-time feature tables the Feast sources read (under RISK_HOME)."""
    # Feast and pyspark load when a command runs, not for --help.
    from pipelines.features.jobs import customers_beside
    from pipelines.features.spark_jobs import build_features_with

    settings = load_settings()
    started = time.perf_counter()
    with console.status(f"building features ({engine})") as status:
        built = build_features_with(
            engine,
            settings,
            transactions,
            customers or customers_beside(transactions),
            progress=lambda step: status.update(step),
            reading=reading_config(settings, timezone, date_format, on_bad_rows),
        )
    for name, path in built.paths.items():
        console.print(f"wrote {name}: {path}", highlight=False)
    if built.quarantine is not None:
        console.print(built.quarantine.line(), highlight=False)
    console.print(f"built in {time.perf_counter() - started:.1f} s", highlight=False)


@app.command()
def apply() -> None:
    """Register entities, sources, views and feature services in the profile's registry."""
    from pipelines.features.jobs import apply_features

    settings = load_settings()
    with console.status(f"applying feature definitions ({settings.name})"):
        services = apply_features(settings)
    console.print(f"registered feature services: {', '.join(services)}", highlight=False)


@app.command()
def materialize(
    end: Annotated[
        datetime | None, typer.Option(help="load values up to this time (UTC); default now")
    ] = None,
) -> None:
    """Load the latest feature values into the online store and seed streaming velocity."""
    from pipelines.features.jobs import materialize_features

    settings = load_settings()
    until = end.replace(tzinfo=UTC) if end is not None and end.tzinfo is None else end
    with console.status(f"materializing into the {settings.feast.online_store} online store"):
        customers = materialize_features(settings, until)
    console.print(f"online store filled; velocity history seeded for {customers:,} customers")
