"""The backtest on a bring-your-own file, and the label delay it must respect."""

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisioning.fraud import model
from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.fraud.backtest import BacktestWindows, labels_known_at_cutoff, run_backtest
from pipelines.fraud.dataset import labels_known_at, with_label_times
from pipelines.fraud.errors import BacktestWindowError, LabelsUnavailable
from tests.support.clock import FRAUD_BYO_START

# The byo world is fixed in time (conftest); the gate's "not in the future" reads
# tests.support.clock.NOW.
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
    quality = json.loads((tmp_path / "scores.metrics.json").read_text())
    for figure in (
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
        "recall_at_alert_budget",
    ):
        assert figure in quality, f"the backtest's JSON lacks {figure}: {sorted(quality)}"
    assert quality["labels_known_at"] == windows.test()[0].isoformat(), "default: the test start"
    # and a baseline fitted in the same run is measured beside the scorer
    baseline = quality["baseline"]
    assert baseline["model"].startswith("logistic regression"), baseline
    for figure in ("roc_auc", "average_precision", "card_precision_at_100"):
        assert 0 <= baseline[figure] <= 1, f"the baseline's {figure}: {baseline.get(figure)}"
    assert quality["selection"]["note"], "the JSON says whether and how a model was selected"


@pytest.mark.slow
def test_the_model_learns_labels_arriving_in_the_gap_and_none_after_the_test_start(
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
    delay = pd.Timedelta(days=5)  # longer than the 3-day gap: some labels arrive after it

    # when the backtest runs with the default cut-off, the test start (a gap of 3 days)
    run_backtest(load_settings(), byo_csv, windows, delay)

    # then labels that arrived during the gap were used, and none that arrived after it
    train_end, test_start = windows.train()[1], windows.test()[0]
    arrivals = seen["labelled"]["occurred_at"] + delay
    assert (arrivals > train_end).any(), "no label that arrived in the gap was used"
    assert (arrivals <= test_start).all(), "a label that arrived after the test start was used"
    assert seen["all"]["occurred_at"].max() < train_end, "a test-window payment reached training"
    assert seen["all"]["label"].isna().any(), "labels arriving after the test start were not hidden"


DAY = pd.Timedelta(days=1)
TRAIN_START = pd.Timestamp(FRAUD_BYO_START, tz="UTC")
payment_offsets = st.floats(min_value=0, max_value=10 * 86_400 - 1)  # the 10-day training window
arrival_delays = st.none() | st.floats(min_value=0, max_value=30 * 86_400)


@settings(max_examples=200, deadline=None)
@given(
    payments=st.lists(
        st.tuples(payment_offsets, arrival_delays, st.sampled_from([0, 1])), min_size=1, max_size=40
    ),
    cutoff_hours=st.floats(min_value=0, max_value=10 * 24),
)
def test_labels_at_a_cut_off_are_exactly_those_arrived_by_then(
    payments: list[tuple[float, float | None, int]], cutoff_hours: float
) -> None:
    # given training payments whose labels arrive at any time, or never
    frame = pd.DataFrame(
        {
            "occurred_at": [TRAIN_START + pd.Timedelta(seconds=p) for p, _, _ in payments],
            "label": pd.array([y if d is not None else None for _, d, y in payments], "Int8"),
            "label_available_at": pd.to_datetime(
                [
                    None if d is None else TRAIN_START + pd.Timedelta(seconds=p + d)
                    for p, d, _ in payments
                ],
                utc=True,
            ),
        }
    )
    # and a cut-off somewhere in the gap between the training end (day 10) and the test start
    cutoff = TRAIN_START + 10 * DAY + pd.Timedelta(hours=cutoff_hours)
    arrived = frame["label_available_at"] <= cutoff

    # when the labels known at the cut-off are taken
    try:
        known = labels_known_at_cutoff(frame, cutoff, pd.Timedelta(days=3))
    except LabelsUnavailable:
        # then a refusal means the labels known then miss a class
        assert set(frame.loc[arrived, "label"].dropna().astype(int)) != {0, 1}
        return

    # then every label that arrived by then is kept, and every later one is hidden
    assert known[arrived].tolist() == frame.loc[arrived, "label"].tolist()
    assert known[~arrived].isna().all(), "a label arriving after the cut-off was used"


def test_a_file_without_labels_stops_before_the_gate_and_the_features(
    tmp_path: Path, risk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a payments file with no label column at all
    csv = tmp_path / "unlabelled.csv"
    _unlabelled(csv)
    expensive = []
    for step in ("pipelines.fraud.backtest.gate_events",
                 "pipelines.fraud.backtest.point_in_time_features"):  # fmt: skip
        monkeypatch.setattr(step, lambda *a, step=step, **k: expensive.append(step))
    windows = BacktestWindows(*((TRAIN_START + n * DAY).date() for n in (0, 9, 12, 18)))

    # when the backtest runs
    with pytest.raises(LabelsUnavailable, match="no label"):
        run_backtest(load_settings(), csv, windows, pd.Timedelta(days=3))

    # then it stopped before any expensive step
    assert expensive == [], f"ran {expensive} before finding there are no labels"


def _unlabelled(csv: Path) -> None:
    times = TRAIN_START + pd.to_timedelta(range(0, 20 * 86_400, 3_600), unit="s")
    pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(times))],
            "occurred_at": times,
            "customer_id": "c1",
            "terminal_id": "t1",
            "amount": 10.0,
        }
    ).to_csv(csv, index=False)


def test_labels_known_after_the_test_start_are_refused() -> None:
    windows = BacktestWindows(
        date(2026, 1, 1), date(2026, 1, 7), date(2026, 1, 10), date(2026, 1, 12)
    )

    assert windows.labels_cutoff() == pd.Timestamp("2026-01-10", tz="UTC")
    with pytest.raises(BacktestWindowError, match="know labels from its future"):
        windows.labels_cutoff(pd.Timestamp("2026-01-10T00:00:01", tz="UTC"))


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
