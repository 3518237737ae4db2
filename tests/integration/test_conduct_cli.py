"""``riskctl train conduct`` → ``registry list`` → ``promote`` on simulated texts, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipelines.cli import main
from registry.names import CONDUCT_CLASSIFIER, model_uri

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).parent / "data" / "banking77_sample.csv"


def test_train_register_promote_and_load_by_alias(
    small_world_dir: Path, risk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given simulated texts, when the conduct model is trained, then it is the challenger
    assert main(["train", "conduct", "--texts", str(small_world_dir / "texts.parquet")]) == 0
    assert main(["registry", "list"]) == 0
    assert "conduct-classifier" in capsys.readouterr().out
    # when promoted, then plain MLflow loads the champion and scores text
    promote = ["registry", "promote", CONDUCT_CLASSIFIER, "--approver", "alice"]
    assert main(promote) == 2, "a promotion without a reason is refused"
    assert main([*promote, "--reason", "first conduct model"]) == 0
    # Both URIs: an earlier test may have left the registry URI on its own store.
    mlflow.set_tracking_uri(f"sqlite:///{risk_home}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{risk_home}/mlflow.db")
    model = mlflow.pyfunc.load_model(model_uri(CONDUCT_CLASSIFIER))
    scored = model.predict(pd.DataFrame({"text": ["I was scammed by a fake bank caller."]}))
    assert scored.loc[0, "category"] == "conduct.scam_report"
    spans = json.loads(scored.loc[0, "spans"])
    assert spans and spans[0]["span"]["text"] in "I was scammed by a fake bank caller."
    # and the training run says with what and on which texts, and how good per category
    client = mlflow.MlflowClient()
    run = client.get_run(client.get_model_version_by_alias(CONDUCT_CLASSIFIER, "champion").run_id)
    assert run.data.params["texts_file"] == str(small_world_dir / "texts.parquet")
    assert len(run.inputs.dataset_inputs) == 2, "training and holdout texts as datasets"
    assert {"class.conduct.scam_report.f1", "calibration_error"} <= set(run.data.metrics)
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    expected = {"per_class_report.json", "confusion_matrix.json", "confusion_matrix.png",
                "calibration.json", "reliability_diagram.png"}  # fmt: skip
    assert expected <= logged, f"missing from the run: {expected - logged}"


def test_evaluate_writes_the_report(tmp_path: Path, risk_home: Path) -> None:
    table = pd.read_csv(SAMPLE)
    out = tmp_path / "m.json"
    args = ["conduct", "evaluate", "--texts", str(SAMPLE), "--text-column", "text",
            "--label-column", "category", "--folds", "3", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert {"accuracy", "macro_f1", "per_class"} <= set(report)
    assert set(report["per_class"]) == set(table.category)
    assert report["accuracy"] > 0.5, "four distinct intents should mostly separate"


def test_missing_column_fails_with_one_line(tmp_path: Path, risk_home: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"body": ["a"], "category": ["x"]}).to_csv(path, index=False)
    args = ["conduct", "evaluate", "--texts", str(path), "--text-column", "text",
            "--label-column", "category", "--out", str(tmp_path / "m.json")]  # fmt: skip
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == f"riskctl: {path} has no column(s) text"
