"""Drift: a shifted copy is flagged, a same-distribution split is not, and both exit 0."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisioning.adapters.operations import drift_result_name, operations_store
from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.monitoring.drift import (
    EMBEDDING_FEATURE,
    event_kind,
    feature_frames,
    matching_kind,
)
from pipelines.monitoring.errors import DriftInputError
from pipelines.monitoring.evidently_reports import drift_report


@pytest.fixture(scope="module")
def windows(small_world_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The small world's payments split in time: two windows of the same behaviour."""
    payments = pd.read_parquet(small_world_dir / "transactions.parquet").sort_values("occurred_at")
    half = len(payments) // 2
    return payments.iloc[:half], payments.iloc[half:]


def test_the_kind_is_told_by_the_columns(small_world_dir: Path) -> None:
    texts = pd.read_parquet(small_world_dir / "texts.parquet")
    payments = pd.read_parquet(small_world_dir / "transactions.parquet")

    assert event_kind(payments) == "transactions" and event_kind(texts) == "texts"
    with pytest.raises(DriftInputError, match="reference holds transactions"):
        matching_kind(payments, texts)


def test_features_are_derived_and_ids_left_out(
    windows: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frames = feature_frames(*windows, "transactions")

    assert {"amount", "hour"} <= set(frames.numerical)
    assert {"channel", "country", "mcc"} <= set(frames.categorical)
    compared = set(frames.numerical) | set(frames.categorical)
    assert not {"transaction_id", "customer_id", "label", "fraud_scenario"} & compared


def test_shifted_amounts_drift_and_a_same_distribution_split_does_not(
    windows: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # given two windows of the same behaviour, and the second with amounts shifted
    reference, current = windows
    shifted = current.assign(amount=current["amount"] * 4 + 50)

    # when both are compared with the reference
    same, _ = drift_report(feature_frames(reference, current, "transactions"))
    moved, _ = drift_report(feature_frames(reference, shifted, "transactions"))

    # then only the shifted amount is flagged
    assert [r.feature for r in same if r.drifted] == [], [r.verdict() for r in same]
    assert [r.feature for r in moved if r.drifted] == ["amount"], [r.verdict() for r in moved]
    assert next(r for r in moved if r.feature == "amount").verdict().endswith("→ drift")


def test_embeddings_drift_when_the_topic_changes() -> None:
    # given vectors of one topic, and a current window where a second direction dominates
    rng = np.random.default_rng(0)
    topic = rng.normal(size=(1, 8))
    reference = pd.DataFrame(topic + rng.normal(scale=0.5, size=(120, 8)))
    same = pd.DataFrame(topic + rng.normal(scale=0.5, size=(120, 8)))
    moved = pd.DataFrame(same.to_numpy() + np.eye(8)[0] * 2)
    texts = pd.DataFrame(
        {"message_id": "m", "received_at": pd.Timestamp("2026-06-01", tz="UTC"), "text": ["x"]}
    ).loc[[0] * 120]
    frames = feature_frames(texts, texts, "texts")

    # when each current window is compared with the reference
    (*_, stable), _ = drift_report(frames, (reference.add_prefix("e"), same.add_prefix("e")))
    (*_, shifted), _ = drift_report(frames, (reference.add_prefix("e"), moved.add_prefix("e")))

    # then only the moved vectors are flagged
    assert stable.feature == EMBEDDING_FEATURE and not stable.drifted, stable.verdict()
    assert shifted.drifted, shifted.verdict()


def test_the_command_reports_stores_scores_and_exits_zero(
    windows: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    risk_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a reference and a shifted current window on disk
    reference, current = windows
    reference.to_parquet(tmp_path / "reference.parquet")
    current.assign(amount=current["amount"] * 4 + 50).to_parquet(tmp_path / "current.parquet")

    # when the drift command compares them
    code = main(
        [
            "monitor", "drift",
            "--reference", str(tmp_path / "reference.parquet"),
            "--current", str(tmp_path / "current.parquet"),
            "--out", str(tmp_path / "report"),
        ]
    )  # fmt: skip

    # then it is a report, not a gate: exit 0, verdicts printed, HTML, JSON and scores stored
    out = capsys.readouterr().out
    assert code == 0
    assert "amount: PSI" in out and "→ drift" in out and "hour: PSI" in out, out
    for name in ("drift_report.html", "drift_report.json", "drift_scores.json"):
        assert (tmp_path / "report" / name).is_file(), f"{name} missing"
    with operations_store(load_settings().operations.url) as store:
        latest = store.latest_result(drift_result_name("transactions"))
    assert latest is not None and latest["drifted"] == ["amount"], (
        "the service publishes the latest scores from the operations store"
    )


def test_files_of_different_kinds_fail_with_a_reason(
    small_world_dir: Path, tmp_path: Path, risk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "monitor", "drift",
            "--reference", str(small_world_dir / "transactions.parquet"),
            "--current", str(small_world_dir / "texts.parquet"),
            "--out", str(tmp_path / "report"),
        ]
    )  # fmt: skip

    assert code == 1
    assert "reference holds transactions but current holds texts" in capsys.readouterr().err


@pytest.mark.slow
def test_texts_about_new_topics_drift_on_real_embeddings(
    small_world_dir: Path, tmp_path: Path, risk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given everyday messages as reference and only complaints about conduct risks as current
    texts = pd.read_parquet(small_world_dir / "texts.parquet")
    texts[texts["category"] == "none"].to_parquet(tmp_path / "reference.parquet")
    texts[texts["category"] != "none"].to_parquet(tmp_path / "current.parquet")

    # when the drift command embeds and compares them
    code = main(
        [
            "monitor", "drift",
            "--reference", str(tmp_path / "reference.parquet"),
            "--current", str(tmp_path / "current.parquet"),
            "--out", str(tmp_path / "report"),
        ]
    )  # fmt: skip

    # then the embeddings test flags the change of topic
    out = capsys.readouterr().out
    assert code == 0
    assert "text_embeddings: domain-classifier ROC AUC" in out and "channel: PSI" in out, out
    scores = json.loads((tmp_path / "report" / "drift_scores.json").read_text())
    assert "text_embeddings" in scores["drifted"], out
