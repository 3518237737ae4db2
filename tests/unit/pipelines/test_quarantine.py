"""Quarantine: one bad row in 10,000 is set aside, not a reason to refuse the file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.errors import QualityGateFailed, TooManyBadRows
from pipelines.ingest import ReadingConfig, conform
from pipelines.quarantine import gate_events
from tests.support.clock import FRAUD_BYO_START

pytestmark = pytest.mark.usefixtures("fixed_now")  # the gate's "not in the future"

ROWS = 10_000
BAD_ROW = 4_321  # counted from 1, as the quarantine file counts
QUARANTINE = ReadingConfig(on_bad_rows="quarantine", quarantine_max_share=0.001)


def payments(bad_rows: tuple[int, ...] = (BAD_ROW,)) -> pd.DataFrame:
    """10,000 valid payments, then a refund (negative amount) at each of ``bad_rows``."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp(FRAUD_BYO_START, tz="UTC")
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i:05d}" for i in range(ROWS)],
            "occurred_at": start + pd.to_timedelta(np.arange(ROWS) * 60, unit="s"),
            "customer_id": [f"c{i % 300}" for i in range(ROWS)],
            "terminal_id": [f"t{i % 50}" for i in range(ROWS)],
            "amount": np.round(rng.gamma(4, 10, ROWS), 2),
        }
    )
    for row in bad_rows:
        frame.loc[row - 1, "amount"] = -25.0
    return conform(frame, "transactions")


def test_refuse_mode_refuses_the_file_for_one_bad_row(tmp_path: Path) -> None:
    with pytest.raises(QualityGateFailed, match="amount"):
        gate_events(payments(), "transactions", ReadingConfig(), tmp_path / "q.csv")

    assert not (tmp_path / "q.csv").exists(), "refuse mode writes no quarantine"


def test_quarantine_mode_sets_the_row_aside_and_goes_on(tmp_path: Path) -> None:
    # given one refund among 10,000 payments, and quarantine on with a 0.1% ceiling
    target = tmp_path / "out" / "scores.transactions.quarantine.csv"

    # when the gate runs
    checked = gate_events(payments(), "transactions", QUARANTINE, target)

    # then the job goes on with the 9,999 good rows, and the bad one is written with its reason
    assert len(checked.frame) == ROWS - 1
    assert (checked.frame["amount"] >= 0).all()
    quarantined = pd.read_csv(target)
    assert quarantined["row"].tolist() == [BAD_ROW], "the row is named as the file counts it"
    assert quarantined["failed_expectations"].tolist() == [
        "amount: expect_column_values_to_be_between"
    ]
    assert quarantined["transaction_id"].tolist() == [f"t{BAD_ROW - 1:05d}"]
    assert checked.quarantine is not None
    assert "quarantined 1 of 10,000 rows" in checked.quarantine.line()


def test_quarantine_refuses_more_bad_rows_than_the_ceiling(tmp_path: Path) -> None:
    # given 11 refunds in 10,000 rows (0.11%), above the 0.1% ceiling
    bad = tuple(range(100, 1_200, 100))
    target = tmp_path / "q.csv"

    with pytest.raises(TooManyBadRows, match=r"11 of 10,000 rows .*above the quarantine ceiling"):
        gate_events(payments(bad), "transactions", QUARANTINE, target)

    assert len(pd.read_csv(target)) == 11, "the refused rows are written for the user to see"


def test_a_failure_not_about_rows_still_refuses_the_file(tmp_path: Path) -> None:
    without_terminals = payments().drop(columns="terminal_id")

    with pytest.raises(QualityGateFailed, match="expect_table_columns_to_match_set"):
        gate_events(without_terminals, "transactions", QUARANTINE, tmp_path / "q.csv")


def test_validate_quarantines_on_request_and_says_so(
    tmp_path: Path, risk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a CSV of 10,000 payments with one refund
    path = tmp_path / "payments.csv"
    payments().to_csv(path, index=False)

    # when validated as configured (refuse), and then with quarantine on
    refused = main(["data", "validate", "transactions", str(path)])
    capsys.readouterr()
    quarantined = main(
        ["data", "validate", "transactions", str(path), "--on-bad-rows", "quarantine"]
    )

    # then
    assert refused == 1, "the default refuses the file"
    assert quarantined == 0, "one row in 10,000 is under the ceiling"
    assert "quarantined 1 of 10,000 rows" in capsys.readouterr().out.replace("\n", " ")
    assert (tmp_path / "payments.transactions.quarantine.csv").is_file()
