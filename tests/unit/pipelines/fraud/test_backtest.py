"""The backtest on a bring-your-own file, and the label delay it must respect."""

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from decisioning.fraud import model
from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.fraud.backtest import BacktestWindows, run_backtest
from pipelines.fraud.dataset import labels_known_at, with_label_times
from pipelines.fraud.errors import BacktestWindowError

# The byo world is fixed in time (conftest); the gate's "not in the future" reads tests.clock.NOW.
pytestmark = [pytest.mark.calendar, pytest.mark.usefixtures("fixed_now")]


def _payments(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True, format="mixed"))


def _windows(csv: Path) -> BacktestWindows:
    first = _payments(csv)["occurred_at"].min().date()
    day = lambda n: date.fromordinal(first.toordinal() + n)  # noqa: E731
    return BacktestWindows(day(0), day(13), day(17), day(23))


@pytest.mark.slow
def test_backtest_scores_every_test_payment_of_a_byo_csv(
    byo_csv: Path, risk_home: Path, tmp_path: Path
) -> None:
    # given a file with only the required columns plus label
    windows = _windows(byo_csv)
    out = tmp_path / "scores.csv"

    # when
    code = main(
        [
            "fraud", "backtest", "--transactions", str(byo_csv),
            "--train-start", str(windows.train_start), "--train-end", str(windows.train_end),
            "--test-start", str(windows.test_start), "--test-end", str(windows.test_end),
            "--label-delay", "3d", "--out", str(out),
        ]
    )  # fmt: skip

    # then
    assert code == 0
    scores = pd.read_csv(out)
    payments = _payments(byo_csv)
    start, end = windows.test()
    expected = payments[(payments["occurred_at"] >= start) & (payments["occurred_at"] < end)]
    assert list(scores.columns) == ["transaction_id", "score", "action", "reason_codes"]
    assert sorted(scores["transaction_id"]) == sorted(expected["transaction_id"]), "rows differ"
    assert set(scores["action"]) <= {"approve", "review", "decline"}
    assert scores["score"].between(0, 1).all()
    first_reason = json.loads(scores.sort_values("score")["reason_codes"].iloc[-1])[0]
    assert set(first_reason) == {"code", "description", "contribution", "source"}


@pytest.mark.slow
def test_no_label_known_after_the_training_cut_off_is_used(
    byo_csv: Path, risk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a spy on what the scorer is trained and calibrated on
    seen: dict[str, pd.DataFrame] = {}
    real_fit = model.fit_fraud_scorer

    def spy(
        history: pd.DataFrame, train: pd.DataFrame, validation: pd.DataFrame, *args: object
    ) -> model.FraudScorer:
        seen["labelled"] = pd.concat([train, validation[validation["label"].notna()]])
        seen["all"] = pd.concat([history, validation])
        return real_fit(history, train, validation, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("pipelines.fraud.training.fit_fraud_scorer", spy)
    windows = _windows(byo_csv)
    delay = pd.Timedelta(days=3)

    # when
    run_backtest(load_settings(), byo_csv, windows, delay)

    # then: every label used was known (payment time + delay) by the end of the train window
    cutoff = windows.train()[1]
    latest = seen["labelled"]["occurred_at"].max()
    assert latest + delay <= cutoff, f"label of a payment at {latest} used before it was known"
    assert seen["all"]["occurred_at"].max() < cutoff, "a test-window payment reached training"
    assert seen["all"]["label"].isna().any(), "late labels were not hidden"


def test_labels_arrive_after_the_delay_unless_the_file_says_when() -> None:
    # given two fraud payments, one with its own label time
    payments = pd.DataFrame(
        {
            "occurred_at": pd.to_datetime(["2026-01-01", "2026-01-01"], utc=True),
            "label": pd.array([1, 1], dtype="Int8"),
            "label_available_at": pd.to_datetime([None, "2026-01-02"], utc=True),
        }
    )

    # when the cut-off is two days later and the delay three days
    known = labels_known_at(
        with_label_times(payments, pd.Timedelta(days=3)), pd.Timestamp("2026-01-03", tz="UTC")
    )

    # then
    assert known.isna().tolist() == [True, False]


def test_a_test_window_before_training_ends_is_refused() -> None:
    windows = BacktestWindows(
        date(2026, 1, 1), date(2026, 1, 7), date(2026, 1, 5), date(2026, 1, 9)
    )

    with pytest.raises(BacktestWindowError, match="before the training window ends"):
        windows.check()
