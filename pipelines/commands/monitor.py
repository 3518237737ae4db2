"""``riskctl monitor``: drift between two windows of events, and decisions against late labels.

Both are reports, not gates: they exit 0 whatever they find (alerts fire on the published
scores), and non-zero only when the inputs cannot be read or compared. The work is in
``pipelines.monitoring.runs``, shared with the scheduled jobs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from decisioning.core.events import utc_now
from decisioning.settings import load_settings
from pipelines.commands.reading import DateFormat, Timezone, reading_config

app = typer.Typer(help="Monitor drift and outcomes; reports, never gates.", no_args_is_help=True)
console = Console()


@app.command()
def drift(
    reference: Annotated[Path, typer.Option(help="reference window: CSV or Parquet events")],
    current: Annotated[Path, typer.Option(help="current window, same kind as the reference")],
    out: Annotated[
        Path | None,
        typer.Option(help="report folder or s3:// URI (default <reports dir>/drift/<time>)"),
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
) -> None:
    """PSI per structured feature and, for texts, a test on embeddings; one verdict per line."""
    from pipelines.monitoring.runs import run_drift_on_files

    settings = load_settings()
    reading = reading_config(settings, timezone, date_format)
    with console.status("comparing the two windows"):
        run = run_drift_on_files(settings, reference, current, reading, out)
    for result in run.results:
        typer.echo(result.verdict())
    typer.echo(f"report: {', '.join(run.written)}")


@app.command()
def outcomes(
    labels: Annotated[Path, typer.Option(help="transactions with label and label_available_at")],
    out: Annotated[
        Path | None,
        typer.Option(help="report folder or s3:// URI (default <reports dir>/outcomes/<time>)"),
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="count labels known by this UTC time (default now)")
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
) -> None:
    """Precision and recall of review and decline, by category and customer cohort."""
    from pipelines.monitoring.runs import run_outcomes

    settings = load_settings()
    reading = reading_config(settings, timezone, date_format)
    run = run_outcomes(settings, labels, as_of or utc_now(), reading, out)
    rows = run.document["rows"]
    console.print(_table(rows))
    typer.echo(
        f"{run.document['labelled_decisions']:,} of {run.document['decisions']:,} payment "
        f"decisions labelled; report: {run.report}"
    )


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="flag precision and recall")
    for column in ("action", "category", "cohort", "flagged", "fraud", "precision", "recall"):
        table.add_column(
            column, justify="left" if column in ("action", "category", "cohort") else "right"
        )
    for row in rows:
        table.add_row(
            *(str(row[c]) for c in ("action", "category", "cohort", "flagged", "fraud")),
            *(_share(row[c]) for c in ("precision", "recall")),
        )
    return table


def _share(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "—"
