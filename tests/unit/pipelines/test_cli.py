"""The CLI's contract: exit codes and a one-line reason on stderr.

The contract is described in docs/design.md, Contracts: CLI.
"""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main


def test_simulate_writes_the_four_files(tmp_path: Path) -> None:
    code = main(["data", "simulate", "--out", str(tmp_path), "--customers", "30", "--days", "7"])

    assert code == 0
    for name in ("transactions", "texts", "customers", "terminals"):
        assert (tmp_path / f"{name}.parquet").is_file(), f"{name}.parquet not written"


def test_validate_accepts_simulated_data(small_world_dir: Path) -> None:
    assert (
        main(["data", "validate", "transactions", str(small_world_dir / "transactions.parquet")])
        == 0
    )
    assert main(["data", "validate", "texts", str(small_world_dir / "texts.parquet")]) == 0


def test_validate_fails_with_a_reason_on_stderr(
    small_world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_parquet(small_world_dir / "transactions.parquet")
    frame.loc[frame.index[:4], "amount"] = -1.0
    frame.to_parquet(tmp_path / "negative.parquet")

    code = main(["data", "validate", "transactions", str(tmp_path / "negative.parquet")])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "amount" in err[0], err


def test_validate_refuses_a_missing_column_before_the_suite(
    small_world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pd.read_parquet(small_world_dir / "transactions.parquet").drop(
        columns=["customer_id"]
    ).to_parquet(tmp_path / "nocol.parquet")

    code = main(["data", "validate", "transactions", str(tmp_path / "nocol.parquet")])

    assert code == 1
    assert "missing required column customer_id" in capsys.readouterr().err


def test_missing_file_and_unknown_kind_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "validate", "transactions", str(tmp_path / "none.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["data", "validate", "payments", str(tmp_path / "none.csv")]) == 2


def test_no_command_shows_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) != 0


def test_validate_names_exactly_the_quality_suites() -> None:
    from pipelines.commands.data import KINDS
    from pipelines.quality import SUITES

    assert KINDS == SUITES


def test_help_loads_no_data_or_model_library() -> None:
    # riskctl --help imports every command module; their heavy imports wait for the command
    heavy = (
        "pandas",
        "pyarrow",
        "scipy",
        "great_expectations",
        "feast",
        "mlflow",
        "torch",
        "xgboost",
    )
    probe = f"import sys, pipelines.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()

    assert loaded == "", f"importing the CLI loaded {loaded}"


def test_monitor_reads_a_zone_less_export_only_with_a_timezone(
    small_world_dir: Path, tmp_path: Path, risk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two weeks of payments exported with times that carry no zone
    frame = pd.read_parquet(small_world_dir / "transactions.parquet")
    frame["occurred_at"] = frame["occurred_at"].dt.tz_localize(None).astype(str)
    middle = frame["occurred_at"].sort_values().iloc[len(frame) // 2]
    reference, current = tmp_path / "first.csv", tmp_path / "second.csv"
    frame[frame["occurred_at"] < middle].to_csv(reference, index=False)
    frame[frame["occurred_at"] >= middle].to_csv(current, index=False)
    drift = ["monitor", "drift", "--reference", str(reference), "--current", str(current)]

    # then drift refuses to guess their zone, and runs once told it
    assert main([*drift, "--out", str(tmp_path / "refused")]) == 1
    assert "--timezone" in capsys.readouterr().err, "the refusal says what to pass"
    assert main([*drift, "--out", str(tmp_path / "report"), "--timezone", "UTC"]) == 0
