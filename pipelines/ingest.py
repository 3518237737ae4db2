"""Bring-your-own ingestion: any CSV or Parquet with the contract's columns becomes a typed frame.

The columns are described in docs/design.md, Contracts: events.

This is the point where unchecked input becomes checked: structure and types here (a one-line
``SchemaError`` naming the column), then content through the quality gate (``pipelines.quality``).
Times without a zone, and times not in ISO 8601, are read only as ``ReadingConfig`` says
(``configs/ingest.yaml``, overridden by ``--timezone`` and ``--date-format``).
Nothing is written by these functions; a refused file leaves no trace.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decisioning.adapters import storage
from decisioning.adapters.storage import Location
from decisioning.core.errors import SchemaError
from decisioning.core.events import (
    TEXT_OPTIONAL,
    TEXT_REQUIRED,
    TRANSACTION_OPTIONAL,
    TRANSACTION_REQUIRED,
    ColumnKind,
)
from pipelines.timestamps import parse_timestamps, time_zone

CONTRACTS: dict[str, tuple[dict[str, ColumnKind], dict[str, ColumnKind]]] = {
    "transactions": (TRANSACTION_REQUIRED, TRANSACTION_OPTIONAL),
    "texts": (TEXT_REQUIRED, TEXT_OPTIONAL),
}


class ReadingConfig(BaseModel):
    """How event files are read (``configs/ingest.yaml``); commands override it per run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str | None = None
    date_format: str | None = None
    on_bad_rows: Literal["refuse", "quarantine"] = "refuse"
    quarantine_max_share: float = Field(default=0.001, ge=0, le=1)


def load_reading_config(path: Path) -> ReadingConfig:
    """``configs/ingest.yaml`` as a ``ReadingConfig``; an unknown zone or key is refused."""
    try:
        config = ReadingConfig.model_validate(yaml.safe_load(Path(path).read_text()) or {})
    except (OSError, ValidationError) as exc:
        raise SchemaError(f"{path}: not a valid reading config ({exc})") from exc
    if config.timezone is not None:
        time_zone(config.timezone)
    return config


def read_table(path: Location) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is, refusing other formats and unreadable files.

    ``path`` is a local path or an ``s3://`` URI (``decisioning.adapters.storage``).
    """
    location = storage.as_location(path)
    if not storage.is_file(location):
        raise SchemaError(f"{location}: no such file")
    suffix = PurePosixPath(storage.name_of(location)).suffix.lower()
    try:
        if suffix == ".parquet":
            return storage.read_parquet(location)
        if suffix in (".csv", ".gz"):
            return pd.read_csv(
                io.BytesIO(storage.read_bytes(location)),
                dtype=str,
                keep_default_na=True,
                compression="gzip" if suffix == ".gz" else None,
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SchemaError(f"{location}: cannot be read ({exc})") from exc
    raise SchemaError(f"{location}: expected a .csv or .parquet file, got {suffix or 'no suffix'}")


def conform(frame: pd.DataFrame, kind: str, reading: ReadingConfig | None = None) -> pd.DataFrame:
    """Check required columns and coerce every known column to its contract type.

    Missing optional columns are added as nulls, so features built from them are null rather
    than a crash. Unknown columns are kept (labels, scenario names) for the jobs that want them.
    Timestamps come out in UTC; how zone-less and non-ISO times are read is ``reading``'s say.
    """
    reading = reading or ReadingConfig()
    required, optional = CONTRACTS[kind]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise SchemaError(f"{kind}: missing required column {', '.join(missing)}")
    out = frame.copy()
    for column, column_kind in {**required, **optional}.items():
        if column not in out.columns:
            out[column] = _empty(column_kind, len(out))
            continue
        out[column] = _coerce(out[column], column, column_kind, reading)
        if column in required and out[column].isna().any():
            rows = int(out[column].isna().sum())
            raise SchemaError(f"{kind}: column {column} has {rows} empty values")
    return out.reset_index(drop=True)


def load_events(path: Location, kind: str, reading: ReadingConfig | None = None) -> pd.DataFrame:
    """Read and conform an event file (structure and types only; run the gate for content)."""
    return conform(read_table(path), kind, reading)


def _empty(kind: ColumnKind, length: int) -> pd.Series:
    if kind == "timestamp":
        return pd.Series(pd.NaT, index=range(length), dtype="datetime64[ns, UTC]")
    if kind == "float":
        return pd.Series(float("nan"), index=range(length), dtype="float64")
    if kind == "label":
        return pd.Series(pd.NA, index=range(length), dtype="Int8")
    return pd.Series(pd.NA, index=range(length), dtype="string")


def _coerce(values: pd.Series, column: str, kind: ColumnKind, reading: ReadingConfig) -> pd.Series:
    present = values.notna()
    if kind == "timestamp":
        return parse_timestamps(values, column, reading.timezone, reading.date_format)
    if kind == "float":
        parsed = pd.to_numeric(values, errors="coerce").astype("float64")
        return _refuse_unparsed(values, parsed, present, column, "numbers")
    if kind == "label":
        parsed = pd.to_numeric(values, errors="coerce")
        bad = present & ~parsed.isin([0, 1])
        if bad.any():
            raise SchemaError(
                f"column {column}: {int(bad.sum())} values are not 0, 1 or empty "
                f"(first: {values[bad].iloc[0]!r})"
            )
        return parsed.astype("Int8")
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        # Integer identifiers stored as floats (1.0) would not join with their string form ("1").
        values = values.astype("Int64")
    return values.astype("string").str.strip()


def _refuse_unparsed(
    raw: pd.Series, parsed: pd.Series, present: pd.Series, column: str, what: str
) -> pd.Series:
    bad = present & parsed.isna()
    if bad.any():
        raise SchemaError(
            f"column {column}: {int(bad.sum())} values are not {what} (first: {raw[bad].iloc[0]!r})"
        )
    return parsed


def load_checked(path: Location, kind: str, reading: ReadingConfig | None = None) -> pd.DataFrame:
    """What every pipeline step calls to read events: conform, then the quality gate.

    Raises ``SchemaError`` or ``QualityGateFailed``; the step stops before using the data.
    """
    from pipelines.quality import require_valid

    frame = load_events(path, kind, reading)
    require_valid(frame, kind)
    return frame
