"""Comparing one engine's feature table with another's, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The column that names a row in each table.
KEYS = {
    "customer_activity": "transaction_id",
    "terminal_risk": "transaction_id",
    "customer_attributes": "customer_id",
}


def assert_same_values(expected: pd.Series, actual: pd.Series, name: str) -> None:
    """Equal values, nulls in the same rows; floats within 1e-9, times to the microsecond."""
    missing = expected.isna().to_numpy()
    assert (actual.isna().to_numpy() == missing).all(), f"{name}: nulls in different rows"
    left, right = expected[~missing], actual[~missing]
    if isinstance(expected.dtype, pd.DatetimeTZDtype):
        # Spark keeps microseconds; pandas keeps the contract's nanoseconds.
        left = left.dt.floor("us")
        right = pd.to_datetime(right, utc=True)
        differ = (left != right).to_numpy()
    elif pd.api.types.is_float_dtype(expected):
        differ = ~np.isclose(
            left.to_numpy("float64"), right.to_numpy("float64"), rtol=1e-9, atol=1e-9
        )
    else:
        differ = left.astype(object).to_numpy() != right.astype(object).to_numpy()
    rows = list(left.index[differ][:3])
    assert not differ.any(), (
        f"{name}: {differ.sum()} of {len(left)} rows differ, e.g. {rows}: "
        f"pandas {list(left[differ][:3])}, spark {list(right[differ][:3])}"
    )
