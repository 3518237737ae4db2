"""Fraud backtest at handbook size (~1.75M payments over 6 months; train 1 week, test 1 week).

Times ``riskctl fraud backtest``'s job end to end (read + GX, point-in-time features over the whole
file, Feast join, model selection, fit, score) and compares, on each world's test week, three
models fitted in the same run on the same labels: the scorer with prequential model selection
(the product default), the previous scorer (selection off: configs/fraud.yaml's values as they
are) and the backtest's baseline, a logistic regression on the same features. Worlds: the
handbook-size one (seed 7) and two other seeds, not used when the candidates were chosen.
Target (issue 4): a backtest under 10 minutes.
Run: .venv/bin/python bench/fraud_bench.py [--seeds 7 13 29] [--customers 6500]
"""

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from decisioning.core.events import utc_now
from decisioning.settings import load_settings
from pipelines.fraud.backtest import BacktestWindows, fit_and_score, prepare_backtest
from pipelines.fraud.dataset import labels_known_at, with_label_times
from pipelines.simulate import SimulationConfig, simulate_world, write_world

LABEL_DELAY = pd.Timedelta(days=7)
TARGET_SECONDS = 600
SEEDS = (7, 13, 29)


def handbook_world(folder: Path, seed: int, customers: int) -> Path:
    """Customers over 183 days, ending yesterday (the GX gate refuses future payments)."""
    start = (utc_now() - timedelta(days=184)).date().isoformat()
    config = SimulationConfig(customers=customers, days=183, seed=seed, start=start)
    write_world(simulate_world(config), folder)
    return folder / "transactions.parquet"


def figures(quality: dict[str, Any]) -> str:
    k = quality.get("card_precision_k", 100)
    shown = {
        "AP": quality["average_precision"],
        "ROC AUC": quality["roc_auc"],
        f"card precision@{k}": quality[f"card_precision_at_{k}"],
        "recall at budget": quality["recall_at_alert_budget"],
    }
    return "   ".join(f"{name} {'n/a' if v is None else f'{v:.3f}'}" for name, v in shown.items())


def world_figures(seed: int, customers: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        path = handbook_world(folder, seed, customers)
        print(f"\n== seed {seed}: simulated in {time.perf_counter() - started:.1f} s")
        transactions = pd.read_parquet(path)
        first = transactions["occurred_at"].min().normalize()
        day = lambda n: (first + pd.Timedelta(days=n)).date()  # noqa: E731
        windows = BacktestWindows(day(120), day(126), day(134), day(140))
        settings = load_settings({"RISK_HOME": scratch, "RISK_ENV": "local"})

        started = time.perf_counter()
        data = prepare_backtest(settings, path, windows, LABEL_DELAY)
        prepared = time.perf_counter() - started
        fits = {}
        for name, config in (
            ("selection on", data.config),
            ("selection off", _selection_off(data.config)),
        ):
            started = time.perf_counter()
            fits[name] = (fit_and_score(data, config), time.perf_counter() - started)
        selected, off = fits["selection on"][0].quality, fits["selection off"][0].quality
        print(f"{len(transactions):,} payments; {selected['test_payments']:,} test-week payments")
        print(f"{'read + GX + features + Feast join':<36} {prepared:7.1f} s")
        for name, (_, seconds) in fits.items():
            print(f"{'fit + score, ' + name:<36} {seconds:7.1f} s")
        total = prepared + fits["selection on"][1]
        met = "met" if total < TARGET_SECONDS else "NOT met"
        print(f"backtest end to end {total:.1f} s: target under {TARGET_SECONDS} s {met}")

        summary = selected["selection"]
        print(f"chosen: {summary['chosen']} ({summary['note']})")
        for candidate in summary["candidates"]:
            folds = ", ".join(f"{v:.3f}" for v in candidate["fold_average_precision"])
            print(f"  {candidate['name']:<12} mean AP {candidate['mean_average_precision']:.3f}")
            print(f"  {'':<12} per fold {folds}")
        print(f"{'scorer, selection on':<28} {figures(selected)}")
        print(f"{'scorer, selection off':<28} {figures(off)}")
        print(f"{'baseline: LR, same features':<28} {figures(selected['baseline'])}")

        scores = fits["selection on"][0].scores
        truth = transactions.merge(scores, on="transaction_id")
        truth = truth[truth["label"] == 1]
        for scenario, rows in truth.groupby("fraud_scenario"):
            flagged = (rows["action"] != "approve").mean()
            print(f"  {scenario:<22} {len(rows):5d} frauds, {flagged:6.1%} reviewed or declined")
        _print_training_frauds(transactions, windows)


def _selection_off(config: Any) -> Any:
    return config.model_copy(
        update={"selection": config.selection.model_copy(update={"enabled": False})}
    )


def _print_training_frauds(transactions: pd.DataFrame, windows: BacktestWindows) -> None:
    cutoff = pd.Timestamp(windows.test_start, tz="UTC")
    start = pd.Timestamp(windows.train_start, tz="UTC")
    end = pd.Timestamp(windows.train_end, tz="UTC") + pd.Timedelta(days=1)
    known = with_label_times(transactions, LABEL_DELAY)
    train = known[(known["occurred_at"] >= start) & (known["occurred_at"] < end)]
    train = train.assign(label=labels_known_at(train, cutoff)).dropna(subset=["label"])
    learnt = train[train["label"] == 1]["fraud_scenario"].value_counts()
    print(
        "training frauds known at the test start: "
        + ", ".join(f"{k} {v}" for k, v in learnt.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--customers", type=int, default=6500)
    args = parser.parse_args()
    for seed in args.seeds:
        world_figures(seed, args.customers)


if __name__ == "__main__":
    main()
