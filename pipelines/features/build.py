"""Point-in-time feature tables, built outside Feast and read by its file sources.

Every row describes one payment as of its own time: velocity counts the payment and those before
it, the profile only earlier payments, terminal risk only earlier payments and only the labels
available at that time. Windows are answered with sorted arrays and binary search (no loop per
row), so a six-month file of 1.75 million payments builds in seconds. The online counterpart,
which must give the same numbers one payment at a time, is ``decisioning.fraud.activity``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from decisioning.adapters import storage
from decisioning.adapters.storage import Location
from decisioning.fraud.activity import VELOCITY_WINDOWS

logger = logging.getLogger(__name__)

ATTRIBUTES_VALID_FROM = pd.Timestamp("1970-01-01", tz="UTC")
TERMINAL_WINDOWS = {
    "1d": pd.Timedelta(days=1),
    "7d": pd.Timedelta(days=7),
    "30d": pd.Timedelta(days=30),
}
# Chargebacks received at the terminal over these windows, whenever the frauds themselves happened:
# with labels days late, what a bank knows of a terminal is the fraud confirmed there recently.
CONFIRMED_WINDOWS = {
    "7d": pd.Timedelta(days=7),
    "14d": pd.Timedelta(days=14),
}
# Frauds that happened at the terminal in this window, on payments by its regular customers.
REGULAR_FRAUDS_WINDOW = pd.Timedelta(days=10)
# A label without a time (files lacking label_available_at) is assumed known this long after the
# payment, the chargeback delay the backtests assume, rather than at once, which would leak.
LABEL_DELAY_WHEN_UNKNOWN = pd.Timedelta(days=7)


@dataclass(frozen=True)
class FeatureTables:
    """The three tables the Feast sources in ``feature_repo.data_sources`` read."""

    customer_activity: pd.DataFrame
    customer_attributes: pd.DataFrame
    terminal_risk: pd.DataFrame

    def write(self, directory: Location) -> dict[str, str]:
        """Write each table as ``<directory>/<name>.parquet`` (a folder or an ``s3://`` prefix);
        return the locations by name."""
        return {
            name: storage.write_parquet(
                _with_plain_strings(getattr(self, name)), storage.join(directory, f"{name}.parquet")
            )
            for name in ("customer_activity", "customer_attributes", "terminal_risk")
        }


def build_feature_tables(
    transactions: pd.DataFrame, customers: pd.DataFrame | None = None
) -> FeatureTables:
    """Compute every feature table from transactions (and customers.parquet when present)."""
    frame = _with_optional_columns(transactions)
    logger.info("building features for %d payments", len(frame))
    return FeatureTables(
        customer_activity=customer_activity_table(frame),
        customer_attributes=customer_attributes_table(frame, customers),
        terminal_risk=terminal_risk_table(frame),
    )


def customer_activity_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """Velocity, profile and terminal habit of each payment's customer, as of that payment."""
    frame = _sorted(transactions, "customer_id")
    group = pd.factorize(frame["customer_id"])[0]
    times = _nanoseconds(frame["occurred_at"])
    rows = _SortedRows.of(group, times)
    amounts = frame["amount"].to_numpy(dtype="float64")
    terminals = pd.factorize(frame["terminal_id"])[0]
    position = np.arange(len(frame))
    start = _group_start(group)
    running = pd.Series(amounts).groupby(group, sort=False).cumsum().to_numpy(dtype="float64")
    before = _sum_before(amounts, group)
    next_same_terminal = _next_same_key(group, terminals)

    # amount and country ride along so the online history can be seeded from this table.
    out = frame[["customer_id", "terminal_id", "transaction_id", "amount", "country"]].copy()
    out["event_timestamp"] = frame["occurred_at"].to_numpy()
    for name, window in VELOCITY_WINDOWS.items():
        span = pd.Timedelta(window).value
        first = rows.count_before(group, times - span)
        out[f"velocity_{name}_count"] = position - first + 1
        # Per-customer running totals: the same additions, in the same order, as online.
        out[f"velocity_{name}_amount_sum"] = running[position] - before[first]
        out[f"velocity_{name}_distinct_terminals"] = _distinct_in_window(
            rows, next_same_terminal, span
        )
    previous = np.where(position > start, times - np.roll(times, 1), -1)
    out["seconds_since_previous_payment"] = np.where(previous >= 0, previous / 1e9, np.nan)
    out = out.join(_profile_before(frame, group, amounts, start, position))
    pair = group.astype(np.int64) * (terminals.max(initial=0) + 1) + terminals
    seen = pd.Series(pair).groupby(pair, sort=False).cumcount().to_numpy()
    out["payments_at_terminal_before"] = seen
    # The customer's habit where they pay: genuine amounts follow the merchant's ticket size.
    out["usual_amount_at_terminal"] = np.where(
        seen >= 1, _sum_before(amounts, pair) / np.maximum(seen, 1), np.nan
    )
    return out.reset_index(drop=True)


def customer_attributes_table(
    transactions: pd.DataFrame, customers: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per customer: segment, home country, account opening (null when unknown)."""
    ids = pd.Series(transactions["customer_id"].unique(), name="customer_id", dtype="string")
    out = pd.DataFrame({"customer_id": ids})
    if customers is not None:
        known = customers.drop_duplicates("customer_id").copy()
        known["customer_id"] = known["customer_id"].astype("string")
        columns = [c for c in ("segment", "home_country", "account_opened_at") if c in known]
        out = out.merge(known[["customer_id", *columns]], on="customer_id", how="left")
    for column in ("segment", "home_country"):
        out[column] = out.get(column, pd.Series(pd.NA, index=out.index)).astype("string")
    opened = out.get("account_opened_at", pd.Series(pd.NaT, index=out.index))
    out["account_opened_at"] = pd.to_datetime(opened, utc=True)
    out["event_timestamp"] = ATTRIBUTES_VALID_FROM
    return out


def terminal_risk_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """Payments, known-fraud rate and recent chargebacks at each payment's terminal before it."""
    frame = _sorted(transactions, "terminal_id")
    group = pd.factorize(frame["terminal_id"])[0]
    times = _nanoseconds(frame["occurred_at"])
    rows = _SortedRows.of(group, times)
    position = np.arange(len(frame))
    fraud = (frame["label"] == 1).fillna(False).to_numpy(dtype=bool)
    known_at = _label_known_at(frame)

    out = frame[["terminal_id", "transaction_id"]].copy()
    out["event_timestamp"] = frame["occurred_at"].to_numpy()
    for name, window in TERMINAL_WINDOWS.items():
        span = window.value
        earlier = position - rows.count_before(group, times - span)
        frauds = _known_frauds_until(rows, fraud, known_at, rows.times + span)
        out[f"terminal_payments_{name}_count"] = earlier
        out[f"terminal_fraud_rate_{name}"] = np.where(
            earlier > 0, frauds / np.maximum(earlier, 1), np.nan
        )
    for name, window in CONFIRMED_WINDOWS.items():
        confirmed = _known_frauds_until(rows, fraud, known_at, known_at + window.value)
        out[f"terminal_frauds_confirmed_{name}"] = confirmed
    # Frauds on the terminal's own regulars (customers who had paid there before) point to the
    # terminal as the leak; a card tested once at a random terminal does not.
    customer = pd.factorize(frame["customer_id"])[0]
    regular = pd.Series(customer).groupby([group, customer]).cumcount().to_numpy() > 0
    out["terminal_regular_frauds_10d"] = _known_frauds_until(
        rows, fraud & regular, known_at, rows.times + REGULAR_FRAUDS_WINDOW.value
    )
    return out.reset_index(drop=True)


def _with_optional_columns(transactions: pd.DataFrame) -> pd.DataFrame:
    """Bring-your-own files may lack optional columns: they become nulls, never a crash."""
    frame = transactions.copy()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    for column in ("country", "label_available_at", "label"):
        if column not in frame:
            frame[column] = pd.NA
    frame["label"] = pd.to_numeric(frame["label"], errors="coerce").astype("Int8")
    frame["label_available_at"] = pd.to_datetime(frame["label_available_at"], utc=True)
    for column in ("customer_id", "terminal_id", "transaction_id", "country"):
        frame[column] = frame[column].astype("string")
    return frame


def _with_plain_strings(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects, the dtype Feast's joins give entity keys (no mismatch)."""
    out = table.copy()
    for column in out.columns[out.dtypes == "string"]:
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows by key, then time, then id: the order payments arrive in online (ties by id).

    Sorting 1.75 million strings is slow, so rows are ordered by integer codes and only rows
    that share a key and a time are ordered by their id.
    """
    codes = pd.factorize(frame[key])[0]
    times = _nanoseconds(frame["occurred_at"])
    order = np.lexsort((times, codes))
    same = (np.diff(codes[order]) == 0) & (np.diff(times[order]) == 0)
    if same.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        slots = np.flatnonzero(tied)
        block = pd.DataFrame(
            {"code": codes[order[slots]], "time": times[order[slots]], "row": order[slots]}
        )
        block["id"] = frame["transaction_id"].to_numpy()[block["row"]]
        order[slots] = block.sort_values(["code", "time", "id"], kind="stable")["row"]
    return frame.iloc[order].reset_index(drop=True)


def _nanoseconds(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").astype("int64").to_numpy()


def _group_start(group: np.ndarray) -> np.ndarray:
    """For rows sorted by group: the position of each row's group's first row."""
    boundaries = np.flatnonzero(np.diff(group, prepend=-1))
    return boundaries[np.searchsorted(boundaries, np.arange(len(group)), side="right") - 1]


@dataclass(frozen=True)
class _SortedRows:
    """Rows sorted by (group, time), prepared for binary searches within each group.

    Times become ranks among all times, which keeps their order exactly, so (group, rank) fits
    one int64 key and one ``searchsorted`` answers a query in its own group for every row at once.
    """

    group: np.ndarray
    times: np.ndarray
    ordered: np.ndarray
    keys: np.ndarray

    @classmethod
    def of(cls, group: np.ndarray, times: np.ndarray) -> _SortedRows:
        ordered = np.sort(times)
        stride = np.int64(len(times) + 1)
        keys = group.astype(np.int64) * stride + np.searchsorted(ordered, times, side="right")
        return cls(group, times, ordered, keys)

    def count_before(
        self, query_group: np.ndarray, limits: np.ndarray, strict: bool = False
    ) -> np.ndarray:
        """Rows before each (group, limit) globally: the group's start plus its rows <= limit.

        With ``strict``, rows < limit. The result is the position of the first row after it.
        """
        stride = np.int64(len(self.times) + 1)
        side = "left" if strict else "right"
        ranks = np.searchsorted(self.ordered, limits, side=side)
        return np.searchsorted(self.keys, query_group.astype(np.int64) * stride + ranks, "right")


def _next_same_key(group: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each row, the position where its (group, key) recurs next, or the row count."""
    n = len(group)
    order = np.lexsort((np.arange(n), keys, group))
    nexts = np.full(n, n, dtype=np.int64)
    same = (group[order][1:] == group[order][:-1]) & (keys[order][1:] == keys[order][:-1])
    nexts[order[:-1][same]] = order[1:][same]
    return nexts


def _distinct_in_window(rows: _SortedRows, next_same: np.ndarray, span: int) -> np.ndarray:
    """Distinct keys among rows (t - span, t] up to each row, by interval stabbing.

    Row j is the latest of its key for every row i from j until its key recurs (``next_same``)
    or j leaves the window; counting those intervals that contain i counts each key once.
    """
    position = np.arange(len(rows.group))
    leaves_window = rows.count_before(rows.group, rows.times + span, strict=True)
    ends = np.sort(np.minimum(next_same, leaves_window))
    return position + 1 - np.searchsorted(ends, position, side="right")


def _known_frauds_until(
    rows: _SortedRows, fraud: np.ndarray, known_at: np.ndarray, until: np.ndarray
) -> np.ndarray:
    """Frauds among earlier rows whose label was available by t, each counted while t < until.

    A fraud row j counts for rows i after it, from the time its label is known until ``until[j]``
    (its payment time plus a window: frauds that happened in the window; its label time plus a
    window: chargebacks received in the window). An interval of positions per fraud, and a count
    of intervals containing each row. A label arriving after a payment never counts for it.
    """
    position = np.arange(len(rows.group))
    frauds = np.flatnonzero(fraud)
    group = rows.group[frauds]
    known_from = rows.count_before(group, known_at[frauds], strict=True)
    leaves = rows.count_before(group, until[frauds], strict=True)
    starts = np.maximum(frauds + 1, known_from)
    keep = starts < leaves
    opened = np.searchsorted(np.sort(starts[keep]), position, side="right")
    closed = np.searchsorted(np.sort(leaves[keep]), position, side="right")
    return opened - closed


def _label_known_at(frame: pd.DataFrame) -> np.ndarray:
    """When each label became known; a label without a time is assumed known after a delay."""
    assumed = frame["occurred_at"] + LABEL_DELAY_WHEN_UNKNOWN
    known = frame["label_available_at"].fillna(assumed)
    return _nanoseconds(known)


def _profile_before(
    frame: pd.DataFrame,
    group: np.ndarray,
    amounts: np.ndarray,
    start: np.ndarray,
    position: np.ndarray,
) -> pd.DataFrame:
    """Usual amount, spread and usual country from the customer's earlier payments only.

    Totals run per customer, in payment order, exactly as the online history adds them: a
    difference of file-wide running sums would lose precision to other customers' totals.
    """
    count = position - start
    safe = np.maximum(count, 1)
    mean = _sum_before(amounts, group) / safe
    variance = np.maximum(_sum_before(amounts * amounts, group) / safe - mean * mean, 0.0)
    profile = pd.DataFrame(index=frame.index)
    profile["payments_before"] = count
    profile["usual_amount"] = np.where(count >= 1, mean, np.nan)
    profile["amount_spread"] = np.where(count >= 2, np.sqrt(variance), np.nan)
    profile["usual_country"] = _usual_country_before(frame["country"], group)
    return profile


def _sum_before(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group, the sum of the values of the rows before each row (0 for a group's first)."""
    running = pd.Series(values).groupby(group, sort=False).cumsum()
    return running.groupby(group, sort=False).shift(fill_value=0.0).to_numpy(dtype="float64")


def _usual_country_before(country: pd.Series, group: np.ndarray) -> pd.Series:
    """The most frequent country among earlier payments; a tie keeps the first to get there."""
    present = country.notna().to_numpy()
    seen = country.groupby([group, country.fillna("")], sort=False).cumcount().to_numpy() + 1
    seen = np.where(present, seen, 0)
    best = pd.Series(seen).groupby(group).cummax().to_numpy()
    best_before = pd.Series(best).groupby(group).shift(1).fillna(0).to_numpy()
    leader = country.where(present & (seen > best_before))
    after = leader.groupby(group).ffill()
    return after.groupby(group).shift(1).astype("string")
