"""Load registered models for serving: resolve an alias to an exact version, fetch its artifact.

Serving pins exact versions (a bento records them at build time; a running service resolves
``@champion`` once at start-up), so every decision names the version that made it.
"""

from __future__ import annotations

import logging
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


class ModelNotAvailable(RiskPlatformError):
    """No version carries the alias, or its artifact cannot be fetched."""


def resolve(tracking_uri: str, name: str, alias: str = "champion") -> ModelVersion:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotAvailable(f"{name}@{alias} is not registered ({exc.error_code})") from exc
    return ModelVersion(name=name, version=str(version.version), run_id=version.run_id)


def version_tag(tracking_uri: str, model: ModelVersion, tag: str) -> str:
    """One tag of an exact model version (a fraud model's ``feature_service``, say)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        tags = client.get_model_version(model.name, model.version).tags
    except MlflowException as exc:
        raise ModelNotAvailable(f"{model.name} v{model.version}: {exc.error_code}") from exc
    if tag not in tags:
        raise ModelNotAvailable(f"{model.name} v{model.version} has no {tag!r} tag")
    return str(tags[tag])


def pyfunc_artifact(tracking_uri: str, model: ModelVersion, artifact: str) -> Path:
    """Local path of one artifact logged with a pyfunc model version (downloaded if remote)."""
    uri = f"models:/{model.name}/{model.version}"
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
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
    except (MlflowException, OSError, KeyError) as exc:
        raise ModelNotAvailable(f"cannot fetch {uri}: {exc}") from exc
    if artifact not in artifacts:
        raise ModelNotAvailable(f"{uri} has no artifact {artifact!r}")
    return local / artifacts[artifact]["path"]
