"""``riskctl train``: train a model and register it as the new ``challenger``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decisioning.settings import load_settings
from pipelines.commands.reading import DateFormat, OnBadRows, Timezone, reading_config
from pipelines.progress import rich_progress

app = typer.Typer(help="Train models and register them as challengers.", no_args_is_help=True)


@app.command("conduct")
def conduct_command(
    texts: Annotated[
        Path | None, typer.Option(help="labelled texts (default: <data dir>/texts.parquet)")
    ] = None,
    text_column: Annotated[str, typer.Option(help="column holding the text")] = "text",
    label_column: Annotated[str, typer.Option(help="column holding the label")] = "category",
) -> None:
    """Train the conduct classifier and register it as the conduct-classifier challenger."""
    from pipelines.conduct.jobs import train_conduct

    settings = load_settings()
    path = texts if texts is not None else settings.data_path / "texts.parquet"
    registered, trained = train_conduct(settings, path, text_column, label_column, rich_progress)
    metrics = "  ".join(f"{key} {value:.4f}" for key, value in sorted(trained.metrics.items()))
    typer.echo(
        f"{registered.name} v{registered.version} registered as challenger "
        f"(holdout {len(trained.holdout)} rows: {metrics})"
    )


@app.command("fraud")
def fraud_command(
    transactions: Annotated[
        Path | None,
        typer.Option(help="payments file (default: <data dir>/transactions.parquet)"),
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
    on_bad_rows: OnBadRows = None,
) -> None:
    """Train the fraud scorer and register it as the fraud-detector challenger.

    Rows quarantined (``--on-bad-rows quarantine``) are written beside the payments file.
    """
    from pipelines.fraud.training import thresholds_summary, train_and_register

    settings = load_settings()
    path = transactions if transactions is not None else settings.data_path / "transactions.parquet"
    reading = reading_config(settings, timezone, date_format, on_bad_rows)
    version, trained = train_and_register(settings, path, progress=typer.echo, reading=reading)
    metrics = "  ".join(f"{key} {value:.4f}" for key, value in sorted(trained.metrics.items()))
    typer.echo(f"fraud-detector v{version} registered as challenger ({metrics})")
    typer.echo(f"thresholds: {thresholds_summary(trained.scorer.thresholds)}")
    if trained.selection is not None:
        chosen = trained.selection.chosen
        typer.echo(
            f"model selection: {'none' if chosen is None else chosen.name} "
            f"({trained.selection.note})"
        )
    if trained.quarantine is not None:
        typer.echo(trained.quarantine.line())
