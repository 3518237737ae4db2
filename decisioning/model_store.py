"""Load registered models for serving: resolve an alias to an exact version, fetch its artifact.

Serving pins exact versions (a bento records them at build time; a running service resolves
``@champion`` once at start-up), so every decision names the version that made it. Every file of a
version is checked against the SHA-256 manifest recorded when it was registered before anything
is read from it, since the artifacts are unpickled (docs/adr/0013-artifact-integrity.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from decisioning.decision import ModelVersion
from decisioning.errors import RiskPlatformError

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
    if not isinstance(manifest, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
    ):
        raise ArtifactIntegrityError(f"{label}: the artifact manifest is not {{path: sha256}}")
    return manifest


def resolve(tracking_uri: str, name: str, alias: str = "champion") -> ModelVersion:
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
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return dict(client.get_model_version(model.name, model.version).tags)
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
    local = verified_model_dir(tracking_uri, model)
    try:
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
    except (MlflowException, OSError, KeyError) as exc:
        raise ModelNotAvailable(f"cannot read {model.name} v{model.version}: {exc}") from exc
    if artifact not in artifacts:
        raise ModelNotAvailable(f"{model.name} v{model.version} has no artifact {artifact!r}")
    return local / artifacts[artifact]["path"]
