"""``riskctl fraud``: backtests of the fraud scorer on any transactions file.

Heavy libraries (XGBoost, Feast, scikit-learn) are imported inside the command, so ``riskctl
--help`` stays fast.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:  # pandas loads when the backtest runs, not for --help
    import pandas as pd

app = typer.Typer(help="Fraud scorer: backtests.", no_args_is_help=True)
console = Console(stderr=True)
DAY = ["%Y-%m-%d"]


@app.command()
def backtest(
    transactions: Annotated[Path, typer.Option(help="CSV or Parquet file of payments")],
    train_start: Annotated[datetime, typer.Option(formats=DAY, help="first training day")],
    train_end: Annotated[datetime, typer.Option(formats=DAY, help="last training day")],
    test_start: Annotated[datetime, typer.Option(formats=DAY, help="first test day")],
    test_end: Annotated[datetime, typer.Option(formats=DAY, help="last test day")],
    out: Annotated[Path, typer.Option(help="scores file, .parquet or .csv")],
    label_delay: Annotated[
        str, typer.Option(help="label known this long after the payment (7d, 36h)")
    ] = "7d",
    labels_known_at: Annotated[
        str | None,
        typer.Option(
            help="train on the labels known at this time (ISO 8601, UTC unless it has an offset); "
            "default: the test window's start, when the model would be deployed"
        ),
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
    on_bad_rows: OnBadRows = None,
    engine: EngineOption = "pandas",
) -> None:
    """Train on one window, score every payment of the test window, write the scores.

    The delayed-label protocol: the model is deployed at the test start knowing the training
    labels that arrived by then, gap included (docs/adr/0010-byo-data.md).
    """
    from decisioning.fraud.config import parse_label_delay
    from pipelines.fraud.backtest import BacktestWindows, backtest, check_scores_path, write_scores
    from pipelines.fraud.evaluation import (
        baseline_line,
        quality_line,
        quality_path,
        write_quality,
    )
    from pipelines.quarantine import quarantine_path

    settings = load_settings()
    reading = reading_config(settings, timezone, date_format, on_bad_rows)
    delay = parse_label_delay(label_delay)
    cutoff = None if labels_known_at is None else _instant(labels_known_at, "--labels-known-at")
    check_scores_path(out)
    windows = BacktestWindows(
        train_start.date(), train_end.date(), test_start.date(), test_end.date()
    )
    started = time.perf_counter()
    with console.status("backtest") as status:
        result = backtest(
            settings,
            transactions,
            windows,
            delay,
            progress=lambda step: status.update(step),
            reading=reading,
            labels_known_at=cutoff,
            quarantine_to=quarantine_path(out, "transactions"),
            engine=engine,
        )
        write_scores(result.scores, out)
        figures = write_quality(result.quality, quality_path(out))
    actions = result.scores["action"].value_counts().to_dict()
    console.print(
        f"trained on labels known at {result.labels_known_at.isoformat()}; "
        f"wrote {len(result.scores):,} scores to {out} in {time.perf_counter() - started:.1f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(actions.items()))})",
        highlight=False,
    )
    console.print(f"quality: {quality_line(result.quality)}", highlight=False)
    console.print(f"baseline: {baseline_line(result.quality)}", highlight=False)
    chosen = result.quality["selection"]
    console.print(f"model selection: {chosen['chosen'] or 'none'} ({chosen['note']})")
    console.print(f"wrote the quality figures to {figures}", highlight=False)
    if result.quarantine is not None:
        console.print(result.quarantine.line(), highlight=False)


def _instant(value: str, option: str) -> pd.Timestamp:
    """An ISO 8601 time from the command line; one without an offset is UTC, as the help says."""
    import pandas as pd

    try:
        moment = pd.Timestamp(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from exc
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
