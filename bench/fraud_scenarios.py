"""Share of each fraud scenario sent to review by the backtest, on worlds of several seeds.

The minimum-function bar of issue 4 (each simulated scenario reaches review for most of its
payments), measured the way ``tests/model`` measures it, on more than one world: per seed, a
world at the simulator's own incident rates, ``riskctl fraud backtest``'s job trained on four
weeks and deciding the two after. Beside compromised terminals, the share of their payments that
follow a fraud already known at the terminal: the most any terminal feature can see.
Run: .venv/bin/python bench/fraud_scenarios.py [--seeds 5,11,23] [--customers 2000] [--days 60]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from decisioning.core.events import utc_now
from decisioning.settings import load_settings
from pipelines.fraud.backtest import BacktestWindows, run_backtest
from pipelines.fraud.metrics import after_known_terminal_fraud
from pipelines.simulate import SimulationConfig, simulate_world, write_world

SCENARIOS = ("card_testing", "account_takeover", "compromised_terminal", "above_habit", "none")


def backtest_world(config: SimulationConfig) -> pd.DataFrame:
    """The world's payments with the backtest's action for its last two weeks."""
    with tempfile.TemporaryDirectory() as folder:
        world = simulate_world(config)
        path = write_world(world, Path(folder))["transactions"]
        first = world.transactions["occurred_at"].min().normalize()
        day = lambda n: (first + pd.Timedelta(days=n)).date()  # noqa: E731
        last = config.days - 1
        windows = BacktestWindows(day(last - 41), day(last - 14), day(last - 13), day(last))
        settings = load_settings({"RISK_HOME": folder, "RISK_ENV": "local"})
        decided = run_backtest(settings, path, windows, pd.Timedelta(days=7))
    payments = world.transactions.assign(
        after_known_terminal_fraud=after_known_terminal_fraud(world.transactions)
    )
    return payments.merge(decided, on="transaction_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="5,11,23")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = (utc_now() - timedelta(days=args.days + 1)).date().isoformat()
    print(
        f"reviewed or declined, share of the two test weeks' payments ({args.customers:,} "
        f"customers x {args.days} days)"
    )
    print(f"{'seed':>4}  " + "  ".join(f"{s:>22}" for s in SCENARIOS) + "  ceiling (CT)  seconds")
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        config = SimulationConfig(customers=args.customers, days=args.days, seed=seed, start=start)
        decided = backtest_world(config)
        cells = []
        for scenario in SCENARIOS:
            rows = decided[decided["fraud_scenario"] == scenario]
            share = (rows["action"] != "approve").mean()
            cells.append(f"{share:>15.1%} of {len(rows):>4}")
        ct = decided[decided["fraud_scenario"] == "compromised_terminal"]
        ceiling = ct["after_known_terminal_fraud"].mean()
        elapsed = time.perf_counter() - started
        print(f"{seed:>4}  " + "  ".join(cells) + f"  {ceiling:>12.1%}  {elapsed:7.0f}")


if __name__ == "__main__":
    main()
