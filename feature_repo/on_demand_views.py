"""On-demand features: transformations of the request against stored features.

Feast runs these same functions for training sets and online fetches, so the arithmetic exists
once. Unknown inputs (a file without ``country``, a customer without history) give NaN, not errors.
"""

import pandas as pd
from feast.field import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

from feature_repo.data_sources import payment_request
from feature_repo.feature_views import (
    customer_attributes,
    customer_profile,
    customer_terminal_history,
)


@on_demand_feature_view(
    sources=[payment_request, customer_profile, customer_terminal_history, customer_attributes],
    schema=[
        Field(name="amount_to_usual_ratio", dtype=Float64),
        Field(name="amount_zscore", dtype=Float64),
        Field(name="event_hour", dtype=Int64),
        Field(name="is_night", dtype=Int64),
        Field(name="is_weekend", dtype=Int64),
        Field(name="is_first_payment_at_terminal", dtype=Int64),
        Field(name="country_differs_from_home", dtype=Float64),
        Field(name="account_age_days", dtype=Float64),
    ],
    mode="pandas",
    description="The payment against the customer's norm, its time of day, and novelty.",
)
def payment_context(inputs: pd.DataFrame) -> pd.DataFrame:
    # Feast ships this function's source alone: imports and helpers must live inside it.
    import numpy as np
    import pandas as pd

    def number(column: str) -> pd.Series:
        return pd.to_numeric(inputs[column], errors="coerce").astype("float64")

    amount, usual, spread = number("amount"), number("usual_amount"), number("amount_spread")
    occurred_at = pd.to_datetime(inputs["occurred_at"], utc=True)
    opened_at = pd.to_datetime(inputs["account_opened_at"], utc=True)
    seen_before = number("payments_at_terminal_before")
    country = inputs["country"].astype("object")
    home = inputs["home_country"].astype("object")
    home = home.where(home.notna(), inputs["usual_country"].astype("object"))
    known_country = (country.notna() & home.notna()).to_numpy()
    hour = occurred_at.dt.hour
    out = pd.DataFrame(index=inputs.index)
    out["amount_to_usual_ratio"] = amount / usual.where(usual > 0)
    out["amount_zscore"] = (amount - usual) / spread.where(spread > 0)
    out["event_hour"] = hour.astype("int64")
    out["is_night"] = (hour < 6).astype("int64")
    out["is_weekend"] = (occurred_at.dt.dayofweek >= 5).astype("int64")
    out["is_first_payment_at_terminal"] = (seen_before.fillna(0) == 0).astype("int64")
    differs = (country.to_numpy() != home.to_numpy()).astype("float64")
    out["country_differs_from_home"] = np.where(known_country, differs, np.nan)
    out["account_age_days"] = (occurred_at - opened_at).dt.total_seconds() / 86_400
    return out
