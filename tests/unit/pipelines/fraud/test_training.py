"""``train fraud`` end to end: registered challenger, gates, champion loaded by plain MLflow."""

from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.feast.online import FRAUD_FEATURE_SERVICE
from decisioning.fraud.thresholds import read_thresholds
from decisioning.settings import load_settings
from feature_repo.feature_services import fraud_v3
from pipelines.fraud.training import train_and_register
from pipelines.simulate import SimulationConfig, simulate_world, write_world
from registry.errors import GateFailed
from registry.gates import load_gates
from registry.tracking import mlflow_session
from registry.workflow import promote_if_gates_pass
from tests.support.clock import TRAINING_WORLD_START

pytestmark = pytest.mark.calendar


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    config = SimulationConfig(customers=300, days=21, seed=11, start=TRAINING_WORLD_START)
    write_world(simulate_world(config), folder)
    return folder / "transactions.parquet"


@pytest.mark.slow
def test_trained_model_is_gated_and_plain_mlflow_scores_like_the_scorer(
    world: Path, risk_home: Path, isolated_configs: Path, fixed_now: datetime, tmp_path: Path
) -> None:
    # given a challenger trained on three simulated weeks of a world that starts from nothing,
    # with a search small enough for this world's few frauds (the default needs 20 per fold)
    fraud_yaml = isolated_configs / "fraud.yaml"
    fraud_config = yaml.safe_load(fraud_yaml.read_text())
    fraud_config["selection"] |= {
        "min_fold_frauds": 2,
        "candidates": [{"name": "configured"}, {"name": "no-anomaly", "anomaly": False}],
    }
    fraud_yaml.write_text(yaml.safe_dump(fraud_config))
    settings = load_settings()
    version, trained = train_and_register(settings, world)

    # when it goes through its gates
    audit = AuditStore.open(settings.audit.url)
    with mlflow_session(settings.mlflow) as client:
        gates = load_gates(isolated_configs / "gates.yaml", "fraud-detector")
        with pytest.raises(GateFailed, match="drift_training_vs_recent") as failed:
            promote_if_gates_pass(
                client, "fraud-detector", "test", gates, "first fraud model", audit
            )
        tags = client.get_model_version("fraud-detector", version).tags
        artifacts = [a.path for a in client.list_artifacts(trained_run(client, version), "drift")]
        champion = mlflow.pyfunc.load_model(f"models:/fraud-detector/{version}")
        run = client.get_run(trained_run(client, version))
        confusion = [a.path for a in client.list_artifacts(run.info.run_id)]
        thresholds_file = client.download_artifacts(run.info.run_id, "thresholds.yaml", tmp_path)
        children = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
        )
    refusals = [record.body for record in audit.records("promotion_refused")]
    audit.close()

    # then the drift gate alone stops it: 30-day and lifetime counters are still filling up
    assert len(failed.value.failed) == 1, failed.value.failed
    assert [body["version"] for body in refusals] == [version], "the refusal is audited"
    assert tags["drift.training_vs_recent"].startswith("failed: PSI over")
    assert "velocity_30d_count" in tags["drift.training_vs_recent"]
    assert "drift/drift_report.html" in artifacts, "the Evidently report is a run artifact"
    assert tags["gx.training_set"].startswith("passed: training-set: all")
    for gate in gates.gates:
        expected = "failed" if gate.name == "drift_training_vs_recent" else "passed"
        verdict = tags[f"gate.{gate.name}"]
        assert verdict.startswith(expected), f"{gate.name}: {verdict}"
    # then plain MLflow gives the project's scores and contributions
    holdout = trained.holdout[trained.scorer.features].head(200)
    served = champion.predict(holdout)
    expected = trained.scorer.score(holdout)
    assert (served["score"] - expected.score).abs().max() < 1e-6, "pyfunc and scorer differ"
    assert served["contribution.velocity_10m_count"].tolist() == pytest.approx(
        expected.contributions["velocity_10m_count"].tolist(), abs=1e-5
    )
    # and the version says what it was trained with
    assert tags["feature_service"] == FRAUD_FEATURE_SERVICE
    assert len(tags["training_data_hash"]) == 64
    assert "metric.average_precision" in tags and "threshold.review" in tags
    # and training used exactly the serving columns of the feature service
    serving = [f.name for p in fraud_v3.feature_view_projections for f in p.features]
    assert trained.features.features == serving
    # and the thresholds calibration found travel with the version, never into configs/
    assert read_thresholds(Path(thresholds_file)) == trained.scorer.thresholds
    assert not (isolated_configs / "thresholds").exists(), "training writes no tracked config"
    assert pd.notna(trained.metrics["roc_auc"])
    # and the run records its settings, its data with digests, and the confusion matrix
    assert run.data.params["alert_budget"] == "0.01" and "xgboost.max_depth" in run.data.params
    contexts = {
        tag.value: item.dataset.digest
        for item in run.inputs.dataset_inputs
        for tag in item.tags
        if tag.key == "mlflow.data.context"
    }
    assert set(contexts) == {"training", "validation"}, contexts
    assert all(contexts.values()), "every dataset carries a digest"
    assert "confusion_matrix.json" in confusion
    # and model selection is the registered run's children, one per candidate, the choice on it
    assert trained.selection is not None and trained.selection.chosen is not None, (
        f"the small search should have run: {trained.selection}"
    )
    chosen = trained.selection.chosen.name
    assert sorted(c.data.params["name"] for c in children) == ["configured", "no-anomaly"]
    assert [c.data.params["name"] for c in children if c.data.tags["chosen"] == "true"] == [chosen]
    for child in children:
        assert "mean_average_precision" in child.data.metrics, "each candidate's mean AP"
        folds = client.get_metric_history(child.info.run_id, "fold_average_precision")
        assert len(folds) == len(trained.selection.folds), "one AP per fold"
    assert run.data.tags["selection.chosen"] == chosen == tags["selection.chosen"]
    assert run.data.params["selection.chosen.name"] == chosen
    assert "selection.json" in confusion
    # and a reviewer sees the SHAP summary and the recall per simulated scenario
    assert "shap_summary.png" in confusion, confusion
    assert "scenario_recall.csv" in confusion, confusion
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "scenario_recall.csv", tmp_path))
    assert "all" in set(table["scenario"]) and table["recall"].between(0, 1).all()


def trained_run(client, version: str) -> str:
    return str(client.get_model_version("fraud-detector", version).run_id)
