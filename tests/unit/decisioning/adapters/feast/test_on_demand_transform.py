"""The on-demand view called without typeguard gives what Feast's ``transform_dict`` gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from decisioning.adapters.feast.online import OnDemandTransform
from feature_repo.on_demand_views import payment_context


def _inputs(rng: np.random.Generator, full_names: bool) -> dict[str, Any]:
    """One payment's request fields and stored features, some of them missing."""
    transform = OnDemandTransform.of(payment_context)
    row: dict[str, Any] = {
        "amount": float(rng.uniform(1, 900)),
        "occurred_at": datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=int(rng.integers(1e5))),
        "country": str(rng.choice(["FR", "DE", "GB"])),
        "customer_id": "C1",
        "terminal_id": "T1",
    }
    for full, short in transform.aliases:
        if short in row:
            continue  # a request field, given above
        value: Any = float(rng.uniform(0, 500)) if rng.random() > 0.2 else None
        if short.endswith("country"):
            value = str(rng.choice(["FR", "DE", None]))
        if "opened" in short or short.endswith("_at"):
            value = datetime(2025, 1, 1, tzinfo=UTC) if rng.random() > 0.3 else None
        row[full if full_names else short] = value
    return row


@pytest.mark.parametrize("full_names", [False, True], ids=["short names", "full names"])
def test_outputs_equal_feasts_transform_dict(full_names: bool) -> None:
    # given payments keyed as the online read keys them (short names) or by full reference
    rng = np.random.default_rng(11)
    transform = OnDemandTransform.of(payment_context)
    for _ in range(50):
        inputs = _inputs(rng, full_names)
        # when both run the view's function
        ours = transform.outputs_of(inputs)
        feasts = payment_context.transform_dict({k: [v] for k, v in inputs.items()})
        # then every output is the same value (NaN where Feast's is NaN)
        assert list(ours) == [feature.name for feature in payment_context.features]
        for name, value in ours.items():
            expected = feasts[name][0]
            same = value == expected or (math.isnan(value) and math.isnan(expected))
            assert same, f"{name}: {value!r} here, {expected!r} from Feast"
