"""A bring-your-own transactions file: only the required columns plus ``label``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.clock import FRAUD_BYO_START

DAYS = 24


def byo_transactions(seed: int = 0) -> pd.DataFrame:
    """Genuine payments at habitual terminals, plus labelled bursts at unknown terminals."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(FRAUD_BYO_START, tz="UTC")
    n = 1200
    customer = rng.integers(0, 25, n)
    habit = rng.integers(0, 3, n)
    genuine = pd.DataFrame(
        {
            "occurred_at": start + pd.to_timedelta(rng.uniform(0, DAYS * 86_400, n), unit="s"),
            "customer_id": [f"cust-{c}" for c in customer],
            "terminal_id": [f"term-{c % 8}-{k}" for c, k in zip(customer, habit, strict=True)],
            "amount": np.round(rng.gamma(4, 10, n) + 1, 2),
            "label": 0,
        }
    )
    bursts = []
    for day in np.linspace(0.5, DAYS - 1, 16):
        moment = start + pd.Timedelta(days=float(day))
        size = 6
        bursts.append(
            pd.DataFrame(
                {
                    "occurred_at": moment + pd.to_timedelta(np.arange(size) * 40, unit="s"),
                    "customer_id": f"cust-{rng.integers(0, 25)}",
                    "terminal_id": [f"shop-{rng.integers(0, 10_000)}" for _ in range(size)],
                    "amount": np.round(rng.uniform(1, 3, size), 2),
                    "label": 1,
                }
            )
        )
    frame = pd.concat([genuine, *bursts]).sort_values("occurred_at").reset_index(drop=True)
    frame.insert(0, "transaction_id", [f"t{i:05d}" for i in range(len(frame))])
    return frame


@pytest.fixture(scope="session")
def byo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("byo") / "payments.csv"
    byo_transactions().to_csv(path, index=False)
    return path


@pytest.fixture
def isolated_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of configs/ as RISK_CONFIG_DIR: jobs that write thresholds write them there."""
    import shutil

    target = tmp_path / "configs"
    shutil.copytree(Path(__file__).resolve().parents[4] / "configs", target)
    monkeypatch.setenv("RISK_CONFIG_DIR", str(target))
    return target
