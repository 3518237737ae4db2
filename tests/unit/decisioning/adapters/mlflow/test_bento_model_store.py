"""A version imported into BentoML's model store serves without MLflow, checked file by file.

A real registration on a throw-away MLflow store (a lookup model), imported into a
throw-away BentoML model store, then read through ``ServedModels``, the one door serving uses
(docs/adr/0013-artifact-integrity.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bentoml._internal.models import ModelStore
from mlflow import MlflowClient

from decisioning.adapters.mlflow.model_store import (
    ARTIFACT_MANIFEST_TAG,
    ArtifactIntegrityError,
    ModelNotAvailable,
    ServedModels,
    import_to_bento_store,
    served_models,
    verified_model_dir,
)
from decisioning.core.decision import ModelVersion
from decisioning.settings import MlflowSettings
from registry.names import CONDUCT_CLASSIFIER
from registry.tracking import mlflow_session
from tests.support.lookup_models import register_lookup_model

pytestmark = pytest.mark.slow  # a real MLflow store and a pyfunc round trip: seconds per test

PICKLED = "python_model.pkl"  # the logged model itself, unpickled when it is loaded
TAG, TAG_VALUE = "training_data_hash", "sha256:0"  # a version tag lookup models are registered with


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ModelVersion]]:
    """A throw-away MLflow store holding one registered lookup model: its URI and the version."""
    monkeypatch.chdir(tmp_path)
    settings = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "artifacts")
    )
    with mlflow_session(settings) as client:
        version = register_lookup_model(client, CONDUCT_CLASSIFIER, settings.artifact_root, 0)
        yield settings.tracking_uri, ModelVersion(name=CONDUCT_CLASSIFIER, version=version)


@pytest.fixture
def bento_store(tmp_path: Path) -> ModelStore:
    (tmp_path / "bentoml-models").mkdir()
    return ModelStore(tmp_path / "bentoml-models")


@pytest.fixture
def unreachable(tmp_path: Path) -> str:
    """A tracking URI every call to fails: its SQLite file's folder does not exist."""
    return f"sqlite:///{tmp_path}/no-such-folder/mlflow.db"


def test_an_imported_version_is_stored_by_name_and_version_with_its_registry_record(
    registry: tuple[str, ModelVersion], bento_store: ModelStore
) -> None:
    tracking_uri, version = registry

    tag = import_to_bento_store(tracking_uri, version, bento_store)

    assert tag == f"{CONDUCT_CLASSIFIER}:{version.version}"
    assert [str(model.tag) for model in bento_store.list()] == [tag], "as `bentoml models list`"
    record = bento_store.get(tag).info.metadata
    registered = MlflowClient(tracking_uri=tracking_uri).get_model_version(
        version.name, version.version
    )
    assert record["mlflow_version"] == version.version
    assert record["run_id"] == registered.run_id and record["run_id"], record
    assert record[ARTIFACT_MANIFEST_TAG] == json.loads(registered.tags[ARTIFACT_MANIFEST_TAG])
    assert record["version_tags"][TAG] == TAG_VALUE
    stored = Path(bento_store.get(tag).path)
    assert sorted(path.name for path in stored.iterdir() if path.name != "model.yaml") == sorted(
        record[ARTIFACT_MANIFEST_TAG]
    ), "exactly the registered files, beside BentoML's own model.yaml"


def test_a_stored_version_serves_with_the_tracking_server_unreachable(
    registry: tuple[str, ModelVersion], bento_store: ModelStore, unreachable: str
) -> None:
    # given a version imported into the model store, and the tracking server gone
    tracking_uri, version = registry
    import_to_bento_store(tracking_uri, version, bento_store)
    registered_bytes = (verified_model_dir(tracking_uri, version) / PICKLED).read_bytes()
    models = ServedModels(unreachable, bento_store)

    # then its files and tags come from the store
    assert (models.model_dir(version) / PICKLED).read_bytes() == registered_bytes
    assert models.tag(version, TAG) == TAG_VALUE
    with pytest.raises(ModelNotAvailable, match="v1: 'artifacts'"):  # its MLmodel, read there
        models.pyfunc_artifact(version, "conduct_model")  # names none: a lookup model logs none
    with pytest.raises(ModelNotAvailable, match="has no 'retired_by' tag"):
        models.tag(version, "retired_by")
    # and a version the store does not hold is asked of the (unreachable) registry
    with pytest.raises(ModelNotAvailable):
        models.tag(ModelVersion(name=version.name, version="99"), TAG)


def test_a_version_missing_from_the_store_is_read_from_mlflow(
    registry: tuple[str, ModelVersion], bento_store: ModelStore
) -> None:
    tracking_uri, version = registry
    models = ServedModels(tracking_uri, bento_store)

    assert (models.model_dir(version) / PICKLED).is_file()
    assert models.tag(version, TAG) == TAG_VALUE


def test_a_file_changed_in_the_bento_model_store_is_refused(
    registry: tuple[str, ModelVersion], bento_store: ModelStore, unreachable: str
) -> None:
    # given a stored version with one byte of its pickled model changed afterwards
    tracking_uri, version = registry
    tag = import_to_bento_store(tracking_uri, version, bento_store)
    stored = Path(bento_store.get(tag).path) / PICKLED
    tampered = bytearray(stored.read_bytes())
    tampered[0] ^= 0x01
    stored.write_bytes(bytes(tampered))

    # when serving loads it, then it is refused as unavailable, naming the file
    with pytest.raises(ArtifactIntegrityError, match=f"{PICKLED} does not match"):
        ServedModels(unreachable, bento_store).model_dir(version)

    # and the next build replaces the changed copy with the registered files
    import_to_bento_store(tracking_uri, version, bento_store)
    assert (ServedModels(unreachable, bento_store).model_dir(version) / PICKLED).is_file()


def test_a_stored_version_without_its_manifest_is_refused(
    registry: tuple[str, ModelVersion], bento_store: ModelStore, unreachable: str
) -> None:
    import bentoml

    _, version = registry
    with bentoml.models.create(
        f"{version.name}:{version.version}", metadata={}, _model_store=bento_store
    ) as model:
        (Path(model.path) / "MLmodel").write_text("flavors: {}\n")

    with pytest.raises(ArtifactIntegrityError, match="has no 'artifact_sha256' manifest"):
        ServedModels(unreachable, bento_store).model_dir(version)


def test_outside_a_bentoml_server_models_come_from_mlflow_only(unreachable: str) -> None:
    assert served_models(unreachable).bento_store is None, "replay and the demo read MLflow"
