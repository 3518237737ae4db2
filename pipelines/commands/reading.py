"""The options every command that reads an event file shares: time zone, date format, bad rows.

Defaults come from ``configs/ingest.yaml``; an option given on the command line wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from decisioning.settings import Settings
from pipelines.features.engines import Engine

if TYPE_CHECKING:  # pandas loads when a command reads a file, not for --help
    from pipelines.ingest import ReadingConfig

Timezone = Annotated[
    str | None,
    typer.Option(
        help="zone of timestamps written without one (UTC, Europe/London); "
        "default configs/ingest.yaml, which refuses them"
    ),
]
DateFormat = Annotated[
    str | None,
    typer.Option(help="strptime format of timestamps that are not ISO 8601 ('%d/%m/%Y %H:%M')"),
]
OnBadRows = Annotated[
    Literal["refuse", "quarantine"] | None,
    typer.Option(
        help="refuse the file on a bad row, or set bad rows aside beside the output and go on "
        "while they are few (configs/ingest.yaml: quarantine_max_share)"
    ),
]

EngineOption = Annotated[
    Engine,
    typer.Option(
        help="computes the feature tables: pandas (one process, the default) or spark "
        "(configs/spark.yaml's master); both give the same tables (docs/adr/0011-spark-engine.md)",
    ),
]


def reading_config(
    settings: Settings,
    timezone: str | None = None,
    date_format: str | None = None,
    on_bad_rows: str | None = None,
) -> ReadingConfig:
    """``configs/ingest.yaml`` with the options given on the command line put over it."""
    from pipelines.ingest import ReadingConfig, load_reading_config
    from pipelines.timestamps import time_zone

    config = load_reading_config(settings.config_path("configs/ingest.yaml"))
    given = {"timezone": timezone, "date_format": date_format, "on_bad_rows": on_bad_rows}
    merged = ReadingConfig.model_validate(
        {**config.model_dump(), **{key: value for key, value in given.items() if value}}
    )
    if merged.timezone is not None:
        time_zone(merged.timezone)  # an unknown zone stops the command before it reads anything
    return merged
