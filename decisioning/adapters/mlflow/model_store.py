"""Load registered models for serving: resolve an alias to an exact version, fetch its artifact.

Serving pins exact versions (a bento records them at build time; a running service resolves
``@champion`` once at start-up), so every decision names the version that made it. Every file of a
version is checked against the SHA-256 manifest recorded when it was registered before anything
is read from it, since the artifacts are unpickled (docs/adr/0013-artifact-integrity.md).

A built bento carries its pinned versions in BentoML's model store, each with the manifest and
version tags recorded for it, and serves them from there without the tracking server
(:class:`ServedModels`, the one place that chooses between the two).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from decisioning.core.decision import ModelVersion
from decisioning.core.errors import RiskPlatformError
from decisioning.core.names import CHAMPION

if TYPE_CHECKING:
    from bentoml._internal.models import Model as BentoModel
    from bentoml._internal.models import ModelStore

logger = logging.getLogger(__name__)


# The version tag naming the feature service a fraud model was trained on; serving reads it.
FEATURE_SERVICE_TAG = "feature_service"
# The version tag holding {path relative to the model directory: SHA-256} of every logged file.
ARTIFACT_MANIFEST_TAG = "artifact_sha256"
# Written by the MLflow client into each download (the name and version it was fetched as), not
# read from the artifact store, so it differs between downloads and is not part of a manifest.
CLIENT_WRITTEN_FILES = frozenset({"registered_model_meta"})


class ModelNotAvailable(RiskPlatformError):
    """No version carries the alias, or its artifact cannot be fetched."""


class ArtifactIntegrityError(ModelNotAvailable):
    """A version has no artifact manifest, or a file differs from it: it is not loaded."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_manifest(model_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under a model directory, keyed by its POSIX path relative to it."""
    return {
        path.relative_to(model_dir).as_posix(): file_sha256(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.relative_to(model_dir).as_posix() not in CLIENT_WRITTEN_FILES
    }


def verify_artifacts(model_dir: Path, manifest: Mapping[str, str], label: str) -> None:
    """Refuse a model directory unless every file of the manifest is there with its digest.

    Files the download adds beyond the manifest are not read by serving, so they are not checked.
    """
    if not manifest:
        raise ArtifactIntegrityError(f"{label}: the artifact manifest is empty")
    for relative, expected in manifest.items():
        path = model_dir / relative
        if not path.is_file():
            raise ArtifactIntegrityError(f"{label}: {relative} is missing from the artifacts")
        if file_sha256(path) != expected:
            raise ArtifactIntegrityError(
                f"{label}: {relative} does not match the SHA-256 recorded at registration; "
                "the artifact was changed after it was registered and is not loaded"
            )


def recorded_manifest(tracking_uri: str, model: ModelVersion) -> dict[str, str]:
    """The manifest a version was registered with; a version without one is refused."""
    label = f"{model.name} v{model.version}"
    raw = _version_tags(tracking_uri, model).get(ARTIFACT_MANIFEST_TAG)
    if raw is None:
        raise ArtifactIntegrityError(
            f"{label} has no {ARTIFACT_MANIFEST_TAG!r} manifest, so its artifacts cannot be "
            "checked before they are unpickled; re-register it"
        )
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArtifactIntegrityError(f"{label}: the artifact manifest is not JSON") from exc
    return _manifest_of(manifest, label)


def _manifest_of(manifest: object, label: str) -> dict[str, str]:
    if not isinstance(manifest, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
    ):
        raise ArtifactIntegrityError(f"{label}: the artifact manifest is not {{path: sha256}}")
    return manifest


def resolve(tracking_uri: str, name: str, alias: str = CHAMPION) -> ModelVersion:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotAvailable(f"{name}@{alias} is not registered ({exc.error_code})") from exc
    return ModelVersion(name=name, version=str(version.version), run_id=version.run_id)


def version_tag(tracking_uri: str, model: ModelVersion, tag: str) -> str:
    """One tag of an exact model version (a fraud model's ``feature_service``, say)."""
    tags = _version_tags(tracking_uri, model)
    if tag not in tags:
        raise ModelNotAvailable(f"{model.name} v{model.version} has no {tag!r} tag")
    return str(tags[tag])


def _version_tags(tracking_uri: str, model: ModelVersion) -> dict[str, str]:
    return dict(_registered(tracking_uri, model).tags)


def _registered(tracking_uri: str, model: ModelVersion) -> MlflowModelVersion:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return client.get_model_version(model.name, model.version)
    except MlflowException as exc:
        raise ModelNotAvailable(f"{model.name} v{model.version}: {exc.error_code}") from exc


def verified_model_dir(tracking_uri: str, model: ModelVersion) -> Path:
    """A local copy of a version's model directory, every file checked against its manifest.

    Only a directory that passed is returned, so nothing in it is read or unpickled before.
    """
    uri = f"models:/{model.name}/{model.version}"
    manifest = recorded_manifest(tracking_uri, model)
    # models:/ URIs resolve through the global registry URI whatever is passed below; a serving
    # process talks to one registry, so pointing the globals at it is the honest setting.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        local = Path(
            download_artifacts(
                artifact_uri=uri, tracking_uri=tracking_uri, registry_uri=tracking_uri
            )
        )
    except (MlflowException, OSError) as exc:
        raise ModelNotAvailable(f"cannot fetch {uri}: {exc}") from exc
    verify_artifacts(local, manifest, f"{model.name} v{model.version}")
    return local


def pyfunc_artifact(tracking_uri: str, model: ModelVersion, artifact: str) -> Path:
    """Local path of one artifact logged with a pyfunc model version, verified (see above)."""
    return _pyfunc_artifact(verified_model_dir(tracking_uri, model), model, artifact)


def _pyfunc_artifact(local: Path, model: ModelVersion, artifact: str) -> Path:
    try:
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
    except (MlflowException, OSError, KeyError) as exc:
        raise ModelNotAvailable(f"cannot read {model.name} v{model.version}: {exc}") from exc
    if artifact not in artifacts:
        raise ModelNotAvailable(f"{model.name} v{model.version} has no artifact {artifact!r}")
    return local / artifacts[artifact]["path"]


def bento_model_tag(model: ModelVersion) -> str:
    """A version's tag in BentoML's model store, where a bento carries the versions it pins."""
    return f"{model.name}:{model.version}"


def import_to_bento_store(tracking_uri: str, model: ModelVersion, bento_store: ModelStore) -> str:
    """Copy a verified version into BentoML's model store with its registry record; its tag.

    The record (metadata) holds the MLflow version and run, the artifact manifest and the other
    version tags, so serving needs nothing from the registry. A copy already there is kept only
    if it still matches the registry's manifest; any other is replaced.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    tag = bento_model_tag(model)
    local = verified_model_dir(tracking_uri, model)
    manifest = recorded_manifest(tracking_uri, model)
    with suppress(NotFound):
        existing = bento_store.get(tag)
        with suppress(ArtifactIntegrityError):
            if existing.info.metadata.get(ARTIFACT_MANIFEST_TAG) == manifest:
                verify_artifacts(Path(existing.path), manifest, tag)
                return tag
        bento_store.delete(tag)
    registered = _registered(tracking_uri, model)
    record = {
        "mlflow_version": model.version,
        "run_id": registered.run_id or "",
        ARTIFACT_MANIFEST_TAG: manifest,
        "version_tags": {k: v for k, v in registered.tags.items() if k != ARTIFACT_MANIFEST_TAG},
    }
    created = bentoml.models.create(
        tag, labels={"source": "mlflow"}, metadata=record, _model_store=bento_store
    )
    with created as new:
        for relative in manifest:  # exactly the registered files, nothing the download added
            target = Path(new.path) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local / relative, target)
    return tag


class ServedModels:
    """Where serving reads a version: BentoML's model store when it holds it, else MLflow.

    ``riskctl bento build`` puts each pinned version in the model store, so a built bento starts
    with the tracking server unreachable; every file is still checked against the manifest
    stored with it before anything is unpickled. Without a BentoML store (the CLI: replay, the
    demo), or without the version in it (``riskctl serve`` from the source tree), MLflow serves.
    """

    def __init__(self, tracking_uri: str, bento_store: ModelStore | None) -> None:
        self.tracking_uri = tracking_uri
        self.bento_store = bento_store

    def model_dir(self, model: ModelVersion) -> Path:
        """The version's model directory, every file checked against its manifest."""
        stored = self._stored(model)
        if stored is None:
            return verified_model_dir(self.tracking_uri, model)
        label = f"{bento_model_tag(model)} in BentoML's model store"
        manifest = stored.info.metadata.get(ARTIFACT_MANIFEST_TAG)
        if manifest is None:
            raise ArtifactIntegrityError(f"{label} has no {ARTIFACT_MANIFEST_TAG!r} manifest")
        path = Path(stored.path)
        verify_artifacts(path, _manifest_of(manifest, label), label)
        return path

    def tag(self, model: ModelVersion, tag: str) -> str:
        """One tag of the version, from the record stored with it or from the registry."""
        stored = self._stored(model)
        if stored is None:
            return version_tag(self.tracking_uri, model, tag)
        tags = stored.info.metadata.get("version_tags")
        value = tags.get(tag) if isinstance(tags, dict) else None
        if value is None:
            raise ModelNotAvailable(f"{bento_model_tag(model)} has no {tag!r} tag")
        return str(value)

    def pyfunc_artifact(self, model: ModelVersion, artifact: str) -> Path:
        """Local path of one artifact logged with a pyfunc version, verified (see above)."""
        return _pyfunc_artifact(self.model_dir(model), model, artifact)

    def _stored(self, model: ModelVersion) -> BentoModel | None:
        if self.bento_store is None:
            return None
        from bentoml.exceptions import NotFound

        try:
            return self.bento_store.get(bento_model_tag(model))
        except NotFound:
            return None


def served_models(tracking_uri: str) -> ServedModels:
    """The model source of this process: a BentoML server's model store first, else MLflow.

    A served bento's store is its own (in an image BentoML points its model store at the models
    the bento carries); the CLI (replay, the demo) runs no BentoML server and reads MLflow only.
    """
    import bentoml

    if bentoml.server_context.worker_index is None:
        return ServedModels(tracking_uri, None)
    return ServedModels(tracking_uri, bento_model_store())


def bento_model_store() -> ModelStore:
    """BentoML's model store as BentoML resolves it: the served bento's own, else BENTOML_HOME's."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    return BentoMLContainer.model_store.get()
