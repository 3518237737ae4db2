from pathlib import Path

import pandas as pd
import pytest

from decisioning.core.errors import SchemaError
from pipelines.cli import main
from pipelines.ingest import ReadingConfig, load_events, load_reading_config

REQUIRED_ONLY = """transaction_id,occurred_at,customer_id,terminal_id,amount,label
1,2026-05-01T10:00:00Z,c1,t1,12.50,0
2,2026-05-01 11:00:00+00:00,c1,t2,3.10,
3,2026-05-02T09:30:00+01:00,c2,t1,99,1
"""
NAIVE = REQUIRED_ONLY.replace("2026-05-01 11:00:00+00:00", "2026-05-01 11:00:00")
DAY_FIRST = """transaction_id,occurred_at,customer_id,terminal_id,amount
1,03/01/2024 10:00,c1,t1,12.50
2,13/01/2024 11:00,c1,t2,3.10
"""


def write(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_with_only_required_columns_loads_with_typed_nulls(tmp_path: Path) -> None:
    frame = load_events(write(tmp_path, REQUIRED_ONLY), "transactions")

    assert str(frame["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["occurred_at"][2] == pd.Timestamp("2026-05-02T08:30:00Z")
    assert frame["amount"].dtype == "float64"
    assert frame["transaction_id"].tolist() == ["1", "2", "3"]
    assert frame["label"].tolist()[:1] == [0] and pd.isna(frame["label"][1])
    assert frame["device_id"].isna().all(), "missing optional columns become null"
    assert frame["label_available_at"].isna().all()


def test_parquet_and_csv_give_the_same_frame(tmp_path: Path) -> None:
    from_csv = load_events(write(tmp_path, REQUIRED_ONLY), "transactions")
    pd.read_csv(tmp_path / "events.csv").to_parquet(tmp_path / "events.parquet")

    from_parquet = load_events(tmp_path / "events.parquet", "transactions")

    pd.testing.assert_frame_equal(from_csv, from_parquet, check_dtype=False)


@pytest.mark.parametrize(
    ("content", "column"),
    [
        (REQUIRED_ONLY.replace("customer_id,", ""), "customer_id"),
        (REQUIRED_ONLY.replace("2026-05-01T10:00:00Z", "yesterday"), "occurred_at"),
        (REQUIRED_ONLY.replace("12.50", "lots"), "amount"),
        (REQUIRED_ONLY.replace(",0\n", ",2\n"), "label"),
        (REQUIRED_ONLY.replace("c2,t1", ",t1"), "customer_id"),
    ],
    ids=["missing column", "unparseable timestamp", "not a number", "bad label", "empty id"],
)
def test_bad_input_is_refused_naming_the_column(tmp_path: Path, content: str, column: str) -> None:
    with pytest.raises(SchemaError, match=column):
        load_events(write(tmp_path, content), "transactions")


def test_other_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"\.csv or \.parquet"):
        load_events(write(tmp_path, "{}", "events.json"), "transactions")


def test_a_time_without_a_zone_is_refused_naming_the_zone_and_the_row(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as refused:
        load_events(write(tmp_path, NAIVE), "transactions")

    message = str(refused.value)
    assert "has no time zone" in message and "--timezone" in message, message
    assert "row 2: '2026-05-01 11:00:00'" in message, f"the row should be named: {message}"


def test_a_named_zone_reads_local_times_and_converts_them_to_utc(tmp_path: Path) -> None:
    # given a file in London summer time, one row with its own offset
    frame = load_events(
        write(tmp_path, NAIVE), "transactions", ReadingConfig(timezone="Europe/London")
    )

    # then the zone-less row moved by the hour of BST; the others kept their own offsets
    assert frame["occurred_at"].tolist() == [
        pd.Timestamp("2026-05-01T10:00:00Z"),
        pd.Timestamp("2026-05-01T10:00:00Z"),
        pd.Timestamp("2026-05-02T08:30:00Z"),
    ]


def test_a_local_time_that_happens_twice_is_refused(tmp_path: Path) -> None:
    # 01:30 happened twice in London on 27 October 2024, when the clocks went back
    content = NAIVE.replace("2026-05-01 11:00:00", "2024-10-27 01:30:00")

    with pytest.raises(SchemaError, match="occur twice or never in Europe/London"):
        load_events(
            write(tmp_path, content), "transactions", ReadingConfig(timezone="Europe/London")
        )


def test_an_unknown_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not a time zone"):
        load_events(write(tmp_path, NAIVE), "transactions", ReadingConfig(timezone="Mars/Olympus"))


def test_day_and_month_are_not_guessed(tmp_path: Path) -> None:
    # given 03/01/2024 (either order) and 13/01/2024 (day first only)
    with pytest.raises(SchemaError) as refused:
        load_events(write(tmp_path, DAY_FIRST), "transactions", ReadingConfig(timezone="UTC"))

    # then the file is refused, naming the row that settles the order and the option to pass
    message = str(refused.value)
    assert "not ISO 8601" in message and "--date-format" in message, message
    assert "row 2: '13/01/2024 11:00' can only be day/month" in message, message


def test_rows_that_disagree_on_day_and_month_are_named(tmp_path: Path) -> None:
    content = DAY_FIRST + "3,01/13/2024 12:00,c2,t1,5.00\n"

    with pytest.raises(SchemaError) as refused:
        load_events(write(tmp_path, content), "transactions", ReadingConfig(timezone="UTC"))

    message = str(refused.value)
    assert "rows disagree on the order of day and month" in message, message
    assert "row 2: '13/01/2024 11:00'" in message and "row 3: '01/13/2024 12:00'" in message


def test_a_date_format_reads_every_row_one_way_and_refuses_rows_that_break_it(
    tmp_path: Path,
) -> None:
    day_first = ReadingConfig(timezone="UTC", date_format="%d/%m/%Y %H:%M")
    month_first = ReadingConfig(timezone="UTC", date_format="%m/%d/%Y %H:%M")

    frame = load_events(write(tmp_path, DAY_FIRST), "transactions", day_first)

    assert frame["occurred_at"].dt.strftime("%d %B").tolist() == ["03 January", "13 January"]
    with pytest.raises(SchemaError, match=r"do not match --date-format .*row 2: '13/01/2024"):
        load_events(write(tmp_path, DAY_FIRST), "transactions", month_first)


def test_the_shipped_reading_config_refuses_naive_times_and_bad_rows() -> None:
    config = load_reading_config(Path(__file__).resolve().parents[3] / "configs" / "ingest.yaml")

    assert config.timezone is None and config.date_format is None
    assert config.on_bad_rows == "refuse"


BACKTEST = [
    "fraud", "backtest", "--train-start", "2026-05-01", "--train-end", "2026-05-01",
    "--test-start", "2026-05-02", "--test-end", "2026-05-02", "--out", "scores.csv",
]  # fmt: skip
COMMANDS_READING_A_FILE = {
    "data validate": ["data", "validate", "transactions"],
    "features build": ["features", "build", "--transactions"],
    "train fraud": ["train", "fraud", "--transactions"],
    "fraud backtest": [*BACKTEST, "--transactions"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS_READING_A_FILE))
def test_every_command_that_reads_a_file_refuses_naive_times_unless_given_a_zone(
    name: str,
    tmp_path: Path,
    risk_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, NAIVE)

    code = main([*COMMANDS_READING_A_FILE[name], str(path)])

    err = capsys.readouterr().err
    assert code == 1, "a naive time must stop the command"
    assert "has no time zone" in err and "--timezone" in err, err


@pytest.mark.usefixtures("fixed_now")
def test_validate_reads_naive_times_in_the_zone_given(tmp_path: Path, risk_home: Path) -> None:
    path = write(tmp_path, NAIVE)

    assert main(["data", "validate", "transactions", str(path), "--timezone", "UTC"]) == 0
