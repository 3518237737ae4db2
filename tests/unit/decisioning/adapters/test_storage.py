"""Locations: local paths behave as before, URIs keep their ``//``, files round-trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from decisioning.adapters import storage


def test_a_uri_keeps_its_double_slash_where_path_would_fold_it() -> None:
    assert storage.join("s3://bucket/data", "features", "t.parquet") == (
        "s3://bucket/data/features/t.parquet"
    )
    assert storage.as_location(Path("s3://bucket/key")) == "s3://bucket/key", (
        "a Path-typed option turns s3://bucket into s3:/bucket; the location repairs it"
    )
    assert storage.parent_of("s3://bucket/a/b.json") == "s3://bucket/a"
    assert storage.name_of("s3://bucket/a/b.json") == "b.json"


def test_local_paths_stay_local_paths(tmp_path: Path) -> None:
    assert not storage.is_remote(tmp_path)
    assert storage.join(tmp_path, "a", "b") == str(tmp_path / "a" / "b")
    assert storage.parent_of(tmp_path / "a" / "b") == str(tmp_path / "a")


def test_files_round_trip_on_local_disk_with_folders_made(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "report.json"
    storage.write_text(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert storage.read_text(target) == '{"a": 1}'
    assert storage.is_file(target) and storage.exists(target.parent)
    assert not storage.exists(tmp_path / "missing")


def test_parquet_round_trips_and_upload_copies_a_folder(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": ["c1", "c2"], "amount": [1.5, 2.0]})
    written = storage.write_parquet(frame, tmp_path / "t" / "table.parquet")
    pd.testing.assert_frame_equal(storage.read_parquet(written), frame)
    copies = storage.upload_folder(tmp_path / "t", tmp_path / "copy")
    assert copies == [str(tmp_path / "copy" / "table.parquet")]


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(tmp_path / "nothing.json")
