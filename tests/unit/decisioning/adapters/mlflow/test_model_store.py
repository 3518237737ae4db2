"""Model versions for serving: a version's tags (from a throw-away registry) and its features."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from decisioning.adapters.mlflow.model_store import ModelNotAvailable, version_tag
from decisioning.core.decision import ModelVersion
from decisioning.wiring import require_served_features


@pytest.fixture
def registry(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("fraud-detector")
    client.create_model_version(
        "fraud-detector", source=str(tmp_path), tags={"feature_service": "fraud_v1"}
    )
    client.create_model_version("fraud-detector", source=str(tmp_path))
    return uri


def test_a_version_names_the_feature_service_it_was_trained_on(registry: str) -> None:
    version = ModelVersion(name="fraud-detector", version="1")

    assert version_tag(registry, version, "feature_service") == "fraud_v1"


def test_a_version_without_the_tag_is_refused_by_name(registry: str) -> None:
    untagged = ModelVersion(name="fraud-detector", version="2")

    with pytest.raises(ModelNotAvailable, match="v2 has no 'feature_service' tag"):
        version_tag(registry, untagged, "feature_service")


def test_a_model_needing_features_its_service_lacks_is_not_served() -> None:
    model = ModelVersion(name="fraud-detector", version="7")
    needed = ["velocity_10m_count", "terminal_frauds_confirmed_7d"]

    with pytest.raises(ModelNotAvailable, match="needs terminal_frauds_confirmed_7d"):
        require_served_features(model, needed, "fraud_v1", ["velocity_10m_count"])
    require_served_features(model, needed, "fraud_v2", [*needed, "amount_zscore"])
