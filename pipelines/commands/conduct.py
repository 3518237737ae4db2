"""``riskctl conduct``: k-fold evaluation of the conduct classifier on any labelled table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from decisioning.settings import load_settings
from pipelines.progress import rich_progress

app = typer.Typer(help="Conduct risk on text: evaluate the classifier.", no_args_is_help=True)


@app.command()
def evaluate(
    texts: Annotated[Path, typer.Option(help="CSV or Parquet table of labelled texts")],
    text_column: Annotated[str, typer.Option(help="column holding the text")],
    label_column: Annotated[str, typer.Option(help="column holding the label")],
    out: Annotated[Path, typer.Option(help="where to write the JSON report")],
    folds: Annotated[int, typer.Option(min=2, max=20, help="stratified folds")] = 5,
) -> None:
    """K-fold accuracy, macro-F1 and a per-class report of the conduct classifier."""
    # torch and the embeddings model load when the command runs, not for --help.
    from pipelines.conduct.jobs import evaluate_table, read_text_table, settings_embedder

    settings = load_settings()
    table = read_text_table(texts, (text_column, label_column))
    embedder = settings_embedder(settings)
    report = evaluate_table(table, text_column, label_column, folds, embedder, rich_progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    typer.echo(
        f"accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}  "
        f"({report.folds}-fold, {report.rows} rows) -> {out}"
    )
