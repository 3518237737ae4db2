"""The demo's sample of events: a burst in time order first, and never a label."""

import shutil
from pathlib import Path

import pandas as pd

from decisioning.core.engine import DecisionRequest
from pipelines.decision_requests import sample_requests


def test_samples_are_valid_requests_with_no_ground_truth(small_world_dir: Path) -> None:
    requests = sample_requests(small_world_dir, 9)

    for body in requests:
        DecisionRequest.model_validate(body)  # refuses labels and unknown fields
        assert "fraud_scenario" not in body.get("transaction", {})
        assert "category" not in body.get("text", {})
    assert any("text" in body for body in requests) and any("transaction" in b for b in requests)


def test_a_card_testing_burst_comes_first_and_in_time_order(
    small_world_dir: Path, tmp_path: Path
) -> None:
    # given a world whose last day holds a card-testing burst
    payments = pd.read_parquet(small_world_dir / "transactions.parquet")
    burst = payments["fraud_scenario"] == "card_testing"
    shift = payments["occurred_at"].max() - payments.loc[burst, "occurred_at"].max()
    payments.loc[burst, "occurred_at"] += shift
    payments.to_parquet(tmp_path / "transactions.parquet")
    shutil.copy(small_world_dir / "texts.parquet", tmp_path / "texts.parquet")

    requests = sample_requests(tmp_path, 3)

    leading = []
    for body in requests:
        if set(body) != {"transaction"}:
            break
        leading.append(body["transaction"])

    first_card = leading[0]["card_id"]
    burst_part = [p for p in leading if p["card_id"] == first_card]
    times = [payment["occurred_at"] for payment in burst_part]
    assert len(burst_part) >= 6, "the whole burst is sent, not a payment of it"
    assert times == sorted(times), "oldest first, so later payments see the earlier ones"
