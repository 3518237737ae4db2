from pathlib import Path

import pandas as pd
import pytest

from decisioning.errors import SchemaError
from pipelines.ingest import load_events

REQUIRED_ONLY = """transaction_id,occurred_at,customer_id,terminal_id,amount,label
1,2026-05-01T10:00:00Z,c1,t1,12.50,0
2,2026-05-01 11:00:00,c1,t2,3.10,
3,2026-05-02T09:30:00+01:00,c2,t1,99,1
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
