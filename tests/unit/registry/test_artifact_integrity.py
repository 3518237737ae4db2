"""Registered artifacts are checked against their SHA-256 manifest before serving reads them.

Registered through the real ``register_challenger`` on a throw-away MLflow store, then loaded with
``pyfunc_artifact``, the one door serving uses (docs/adr/0013-artifact-integrity.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient

from decisioning.adapters.mlflow.model_store import (
    ARTIFACT_MANIFEST_TAG,
    ArtifactIntegrityError,
    ModelNotAvailable,
    pyfunc_artifact,
)
from decisioning.core.decision import ModelVersion
from decisioning.settings import MlflowSettings
from registry.models import register_challenger
from registry.names import CONDUCT_CLASSIFIER
from registry.tracking import ensure_experiment, mlflow_session
from tests.support.lookup_models import lookup_package

pytestmark = pytest.mark.slow  # a real MLflow store and a pyfunc round trip: seconds per test

ARTIFACT = "conduct_model"
ARTIFACT_FILE = "conduct_model.pkl"
ARTIFACT_BYTES = b"the fitted model, as training wrote it"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.chdir(tmp_path)
    settings = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "artifacts")
    )
    with mlflow_session(settings):
        yield settings.tracking_uri, tmp_path / "artifacts"


@pytest.fixture
def registered(store: tuple[str, Path], tmp_path: Path) -> ModelVersion:
    tracking_uri, artifact_root = store
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    source = tmp_path / "training" / ARTIFACT_FILE
    source.parent.mkdir()
    source.write_bytes(ARTIFACT_BYTES)
    package = replace(lookup_package(wrong=0), artifacts={ARTIFACT: str(source)})
    experiment = ensure_experiment(client, CONDUCT_CLASSIFIER, str(artifact_root))
    version = register_challenger(client, CONDUCT_CLASSIFIER, experiment, package)
    return ModelVersion(name=CONDUCT_CLASSIFIER, version=version.version)


def test_registration_records_a_digest_of_every_logged_file(
    store: tuple[str, Path], registered: ModelVersion
) -> None:
    client = MlflowClient(tracking_uri=store[0], registry_uri=store[0])
    tags = client.get_model_version(registered.name, registered.version).tags

    manifest = json.loads(tags[ARTIFACT_MANIFEST_TAG])

    assert {"MLmodel", "python_model.pkl", f"artifacts/{ARTIFACT_FILE}"} <= set(manifest), (
        f"the manifest must cover what serving and pyfunc loading read, got {sorted(manifest)}"
    )


def test_an_untampered_artifact_loads(store: tuple[str, Path], registered: ModelVersion) -> None:
    path = pyfunc_artifact(store[0], registered, ARTIFACT)

    assert path.read_bytes() == ARTIFACT_BYTES


def test_an_artifact_with_one_byte_changed_is_refused(
    store: tuple[str, Path], registered: ModelVersion
) -> None:
    # given one byte of the stored artifact changed by someone with write access to the store
    stored = [p for p in store[1].rglob(ARTIFACT_FILE) if p.is_file()]
    assert stored, "the artifact should be in the throw-away artifact store"
    for path in stored:
        tampered = bytearray(path.read_bytes())
        tampered[0] ^= 0x01
        path.write_bytes(bytes(tampered))

    # when serving loads it, then it is refused as unavailable, naming the file
    with pytest.raises(ArtifactIntegrityError, match=f"artifacts/{ARTIFACT_FILE} does not match"):
        pyfunc_artifact(store[0], registered, ARTIFACT)


def test_a_version_without_a_manifest_is_refused(
    store: tuple[str, Path], registered: ModelVersion
) -> None:
    client = MlflowClient(tracking_uri=store[0], registry_uri=store[0])
    client.delete_model_version_tag(registered.name, registered.version, ARTIFACT_MANIFEST_TAG)

    with pytest.raises(
        ArtifactIntegrityError, match="has no 'artifact_sha256' manifest"
    ) as refused:
        pyfunc_artifact(store[0], registered, ARTIFACT)
    assert isinstance(refused.value, ModelNotAvailable), "serving must treat it as a missing model"
