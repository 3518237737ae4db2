"""``riskctl fraud``: backtests of the fraud scorer on any transactions file.

Heavy libraries (XGBoost, Feast, scikit-learn) are imported inside the command, so ``riskctl
--help`` stays fast.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from decisioning.settings import load_settings
from pipelines.commands.reading import DateFormat, Timezone, reading_config

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
    timezone: Timezone = None,
    date_format: DateFormat = None,
) -> None:
    """Train on one window, score every payment of the test window, write the scores."""
    from decisioning.fraud.config import parse_label_delay
    from pipelines.fraud.backtest import (
        BacktestWindows,
        check_scores_path,
        run_backtest,
        write_scores,
    )

    settings = load_settings()
    reading = reading_config(settings, timezone, date_format)
    delay = parse_label_delay(label_delay)
    check_scores_path(out)
    windows = BacktestWindows(
        train_start.date(), train_end.date(), test_start.date(), test_end.date()
    )
    started = time.perf_counter()
    with console.status("backtest") as status:
        scores = run_backtest(
            settings,
            transactions,
            windows,
            delay,
            progress=lambda step: status.update(step),
            reading=reading,
        )
        write_scores(scores, out)
    actions = scores["action"].value_counts().to_dict()
    console.print(
        f"wrote {len(scores):,} scores to {out} in {time.perf_counter() - started:.1f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(actions.items()))})",
        highlight=False,
    )
