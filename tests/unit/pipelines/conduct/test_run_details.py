"""``train conduct``'s MLflow run: what a reviewer finds beside the registered model.

The job runs for real (reading, training, registering) on a small hand-made table; only the
sentence encoder is the tests' hashing stand-in, so the run takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow.models.utils
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from decisioning.conduct.embeddings import Embedder
from decisioning.settings import load_settings
from pipelines.conduct import jobs
from pipelines.conduct.run_details import (
    confusion_table,
    expected_calibration_error,
    per_class_report,
    reliability_table,
)
from registry.names import CONDUCT_CLASSIFIER
from registry.tracking import mlflow_session
from tests.support.encoders import HashingEncoder

PHRASES = {
    "none": ["please update my address", "what time does the branch open", "thanks for the help"],
    "conduct.financial_difficulty": [
        "I cannot afford my loan repayments this month",
        "I lost my job and I am behind on the mortgage",
        "the debt keeps growing and I cannot pay the bills",
    ],
    "conduct.scam_report": [
        "someone called pretending to be the bank and took my money",
        "a fake investment site took my savings",
        "I paid an invoice to a fraudulent account after a phishing email",
    ],
}


def labelled_texts() -> pd.DataFrame:
    """Twenty messages per category, each a category phrase with a numbered detail."""
    rows = [
        {
            "message_id": f"m-{label}-{n}",
            "text": f"{PHRASES[label][n % 3]}, case {n}",
            "label": label,
        }
        for label in PHRASES
        for n in range(20)
    ]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TrainedRun:
    run: Run
    client: MlflowClient
    texts: list[str]
    source: Path
    holdout_rows: int
    train_rows: int

    def json_artifact(self, path: str) -> dict:
        local = self.client.download_artifacts(self.run.info.run_id, path)
        return json.loads(Path(local).read_text())

    def artifact_bytes(self, path: str) -> bytes:
        return Path(self.client.download_artifacts(self.run.info.run_id, path)).read_bytes()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedRun]:
    """Given a labelled CSV, when ``train_conduct`` registers the challenger: its run (trained
    once for the module, in a throw-away RISK_HOME)."""
    folder = tmp_path_factory.mktemp("conduct-run")
    source = folder / "labelled.csv"
    table = labelled_texts()
    table.to_csv(source, index=False)
    embedder = Embedder(load_encoder=HashingEncoder, model_id="test/hashing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISK_HOME", str(folder / "home"))
        patch.setenv("RISK_ENV", "local")
        patch.setattr(jobs, "settings_embedder", lambda settings: embedder)
        # MLflow's serving check of the input example loads the real sentence encoder (half a
        # minute); tests/integration/test_conduct_cli.py keeps it, this run is about the records.
        patch.setattr(mlflow.models.utils, "_validate_serving_input", lambda **kwargs: None)
        settings = load_settings()
        registered, trained = jobs.train_conduct(settings, source, "text", "label")
        with mlflow_session(settings.mlflow) as client:
            version = client.get_model_version(CONDUCT_CLASSIFIER, registered.version)
            yield TrainedRun(
                run=client.get_run(version.run_id),
                client=client,
                texts=table["text"].tolist(),
                source=source,
                holdout_rows=len(trained.holdout),
                train_rows=trained.train_rows,
            )


def test_the_run_records_every_tunable_and_where_the_texts_came_from(
    trained_run: TrainedRun,
) -> None:
    params = trained_run.run.data.params
    assert params["classifier.svm_c"] == "1.0", params
    assert params["classifier.use_tfidf"] == "True"
    assert params["classifier.calibration_folds"] == "3"
    assert params["holdout_share"] == "0.2"
    assert params["rule_hit_score"] == "0.8"
    assert params["texts_file"] == str(trained_run.source)
    assert (params["text_column"], params["label_column"]) == ("text", "label")


def test_the_run_lists_training_and_holdout_datasets_with_digests(
    trained_run: TrainedRun,
) -> None:
    datasets = {
        tag.value: item.dataset
        for item in trained_run.run.inputs.dataset_inputs
        for tag in item.tags
        if tag.key == "mlflow.data.context"
    }
    assert set(datasets) == {"training", "holdout"}, datasets
    rows = {"training": trained_run.train_rows, "holdout": trained_run.holdout_rows}
    for context, dataset in datasets.items():
        assert dataset.digest, f"the {context} dataset has no digest"
        assert json.loads(dataset.source)["uri"] == str(trained_run.source)
        assert json.loads(dataset.profile)["num_rows"] == rows[context], context
        columns = {c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert {"message_id", "label"} <= columns, columns


def test_no_message_text_reaches_params_tags_or_dataset_records(trained_run: TrainedRun) -> None:
    # the texts are customers' personal data: the run may hold their digest, never the words
    run = trained_run.run
    recorded = [
        *run.data.params.values(),
        *run.data.tags.values(),
        *(str(item.dataset.to_dictionary()) for item in run.inputs.dataset_inputs),
    ]
    leaked = [text for text in trained_run.texts if any(text in value for value in recorded)]
    assert not leaked, f"message texts in the run's records: {leaked[:3]}"


def test_the_per_class_report_and_metrics_cover_the_holdout(trained_run: TrainedRun) -> None:
    report = trained_run.json_artifact("per_class_report.json")
    metrics = trained_run.run.data.metrics
    assert set(PHRASES) <= set(report), report
    assert sum(scores["support"] for scores in report.values()) == trained_run.holdout_rows
    for label, scores in report.items():
        assert metrics[f"class.{label}.f1"] == pytest.approx(scores["f1"]), label
        assert metrics[f"class.{label}.recall"] == pytest.approx(scores["recall"]), label


def test_the_confusion_matrix_counts_every_holdout_message(trained_run: TrainedRun) -> None:
    confusion = trained_run.json_artifact("confusion_matrix.json")
    matrix = np.asarray(confusion["matrix"])
    assert matrix.shape == (len(confusion["labels"]),) * 2
    assert matrix.sum() == trained_run.holdout_rows
    accuracy = np.trace(matrix) / matrix.sum()
    assert accuracy == pytest.approx(trained_run.run.data.metrics["accuracy"]), (
        "the matrix and the run's accuracy describe the same predictions"
    )
    assert trained_run.artifact_bytes("confusion_matrix.png").startswith(b"\x89PNG")


def test_calibration_is_a_diagram_and_a_metric(trained_run: TrainedRun) -> None:
    calibration = trained_run.json_artifact("calibration.json")
    error = trained_run.run.data.metrics["calibration_error"]
    assert 0.0 <= error <= 1.0
    assert calibration["expected_calibration_error"] == pytest.approx(error)
    assert sum(b["messages"] for b in calibration["bins"]) == trained_run.holdout_rows
    assert trained_run.artifact_bytes("reliability_diagram.png").startswith(b"\x89PNG")


def test_per_class_report_scores_each_category() -> None:
    report = per_class_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["b"]["precision"] == pytest.approx(2 / 3) and report["b"]["recall"] == 1.0


def test_confusion_table_has_labels_down_and_predictions_across() -> None:
    table = confusion_table(["a", "a", "b"], ["b", "a", "c"])
    assert table.loc["a", "b"] == 1, "an `a` predicted as `b` is row a, column b"
    assert table.loc["b", "c"] == 1 and table.loc["c"].sum() == 0
    assert table.index.tolist() == table.columns.tolist() == ["a", "b", "c"]


def test_expected_calibration_error_is_the_gap_between_confidence_and_accuracy() -> None:
    # overconfident: 0.95 sure, right half the time
    overconfident = reliability_table(np.array([1, 0, 1, 0]), np.full(4, 0.95))
    assert expected_calibration_error(overconfident) == pytest.approx(0.45)
    # calibrated: 0.75 sure, right three times in four
    calibrated = reliability_table(np.array([1, 1, 1, 0]), np.full(4, 0.75))
    assert expected_calibration_error(calibrated) == pytest.approx(0.0)
    # two bins weigh by their messages: 3 × |1 − 0.9| and 1 × |0 − 0.6| over 4
    mixed = reliability_table(np.array([1, 1, 1, 0]), np.array([0.9, 0.9, 0.9, 0.6]))
    assert mixed["messages"].tolist() == [1, 3]
    assert expected_calibration_error(mixed) == pytest.approx((3 * 0.1 + 0.6) / 4)
