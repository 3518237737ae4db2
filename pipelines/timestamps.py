"""Event times from files: ISO 8601 with a zone, or a format and a zone the user names.

A time written without a zone is refused rather than taken as UTC: a file of local times read as
UTC moves every payment by hours and no check downstream can tell. Formats other than ISO 8601
need ``--date-format``, because a file of ``03/01/2024`` cannot say whether it means 3 January or
1 March; when it is refused, the message names rows that settle the order, or that disagree.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from decisioning.core.errors import SchemaError

# A clock time followed by a zone: Z, UTC or an offset (+01, +0100, +01:00).
ZONE_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|UTC|[+-]\d{2}(?::?\d{2})?)$"
DAY_MONTH = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")
SHOWN_ROWS = 3
HOW_TO_ZONE = (
    "pass --timezone with the zone they were written in (UTC, Europe/London, America/New_York), "
    "or write them with an offset (2024-01-03T10:00:00+00:00)"
)


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``--timezone``); refuses names the zone database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SchemaError(
            f"--timezone {name!r} is not a time zone (try UTC or Europe/London)"
        ) from exc


def parse_timestamps(
    values: pd.Series, column: str, timezone: str | None = None, date_format: str | None = None
) -> pd.Series:
    """``values`` as UTC timestamps; empty stays empty.

    Times with a zone are converted to UTC; times without one are read in ``timezone`` and
    refused when none is given. Text is read as ISO 8601 unless ``date_format`` (strptime) says
    otherwise. Raises ``SchemaError`` naming the column and the first offending rows.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return _localize(values, values.notna(), column, timezone)
    # Positions, not the caller's index labels, so messages count rows as the file does.
    text = values.reset_index(drop=True).astype("string").str.strip()
    present = (text.notna() & (text != "")).fillna(False)
    if date_format is not None:
        parsed = _parse_with_format(text, present, column, timezone, date_format)
    else:
        parsed = _parse_iso(text, present, column, timezone)
    return parsed.set_axis(values.index)


def _parse_iso(text: pd.Series, present: pd.Series, column: str, timezone: str | None) -> pd.Series:
    zoned = present & text.str.contains(ZONE_SUFFIX, regex=True).fillna(False)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    parsed[zoned] = pd.to_datetime(text[zoned], format="ISO8601", utc=True, errors="coerce")
    naive = pd.to_datetime(text.where(present & ~zoned), format="ISO8601", errors="coerce")
    unparsed = present & parsed.isna() & naive.isna()
    if unparsed.any():
        raise SchemaError(
            f"column {column}: {int(unparsed.sum()):,} values are not ISO 8601 timestamps "
            f"({_rows(text, unparsed)}); {_format_advice(text, unparsed)}"
        )
    local = present & ~zoned
    if local.any():
        parsed[local] = _localize(naive, local, column, timezone)[local]
    return parsed


def _parse_with_format(
    text: pd.Series, present: pd.Series, column: str, timezone: str | None, date_format: str
) -> pd.Series:
    has_zone = "%z" in date_format or "%Z" in date_format
    try:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=has_zone)
    except ValueError as exc:
        raise SchemaError(
            f"--date-format {date_format!r} is not a strptime format ({exc})"
        ) from exc
    unparsed = present & parsed.isna()
    if unparsed.any():
        raise SchemaError(
            f"column {column}: {int(unparsed.sum()):,} values do not match --date-format "
            f"{date_format!r} ({_rows(text, unparsed)})"
        )
    return parsed if has_zone else _localize(parsed, present, column, timezone)


def _localize(naive: pd.Series, rows: pd.Series, column: str, timezone: str | None) -> pd.Series:
    """Read zone-less times in ``timezone``; refuse them without one, or at a clock change."""
    if timezone is None:
        raise SchemaError(
            f"column {column} has no time zone on {int(rows.sum()):,} timestamps "
            f"({_rows(naive.astype('string'), rows)}); {HOW_TO_ZONE}"
        )
    local = naive.dt.tz_localize(time_zone(timezone), ambiguous="NaT", nonexistent="NaT")
    unclear = rows & local.isna()
    if unclear.any():
        raise SchemaError(
            f"column {column}: {int(unclear.sum()):,} local times occur twice or never in "
            f"{timezone} (a clock change: {_rows(naive.astype('string'), unclear)}); "
            "write them with an offset or in UTC"
        )
    return local.dt.tz_convert("UTC")


def _format_advice(text: pd.Series, refused: pd.Series) -> str:
    """What to pass instead, with the rows that settle (or break) the order of day and month."""
    parts = text[refused].str.extract(DAY_MONTH).dropna().astype(int)
    if parts.empty:
        return "pass --date-format with their strptime format (e.g. '%Y/%m/%d %H:%M')"
    day_first = text.index.isin(parts.index[parts[0] > 12])
    month_first = text.index.isin(parts.index[parts[1] > 12])
    if day_first.any() and month_first.any():
        return (
            "rows disagree on the order of day and month: "
            f"{_rows(text, day_first)} can only be day/month, "
            f"{_rows(text, month_first)} only month/day; correct the file, then pass --date-format"
        )
    if day_first.any():
        order, rows = "day/month", day_first
    elif month_first.any():
        order, rows = "month/day", month_first
    else:
        return (
            "no row tells day from month (each part is 12 or less): pass --date-format "
            "naming the order ('%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M')"
        )
    example = "%d/%m/%Y %H:%M" if order == "day/month" else "%m/%d/%Y %H:%M"
    return (
        f"such dates could be read either way; {_rows(text, rows)} "
        f"can only be {order}: pass --date-format '{example}' to read every row that way"
    )


def _rows(text: pd.Series, which: pd.Series | np.ndarray) -> str:
    """ "row 4: '13/01/2024'" for the first few rows selected, counted from 1 after the header."""
    positions = np.flatnonzero(np.asarray(which, dtype=bool))
    shown = [f"row {p + 1}: {text.iloc[p]!r}" for p in positions[:SHOWN_ROWS]]
    more = f" and {len(positions) - SHOWN_ROWS:,} more" if len(positions) > SHOWN_ROWS else ""
    return ", ".join(shown) + more
