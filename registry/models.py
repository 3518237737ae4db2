"""Logging a model as an MLflow pyfunc and registering it as the new ``challenger``."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from decisioning.adapters.mlflow.model_store import ARTIFACT_MANIFEST_TAG, artifact_manifest
from registry.errors import UnknownModelError
from registry.names import CHALLENGER, HOLDOUT_ARTIFACT, MODEL_NAMES

logger = logging.getLogger(__name__)


def pinned_requirements(packages: tuple[str, ...]) -> tuple[str, ...]:
    """``name==version`` as installed here, so the pyfunc's environment matches training."""
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return tuple(pins)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class ModelPackage:
    """What a training job hands over: the pyfunc, its files, examples, and what it measured."""

    python_model: PythonModel
    artifacts: Mapping[str, str]
    input_example: pd.DataFrame
    output_example: pd.DataFrame
    holdout: pd.DataFrame
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    pip_requirements: tuple[str, ...]


def register_challenger(
    client: MlflowClient, name: str, experiment_id: str, package: ModelPackage
) -> RegisteredVersion:
    """Log ``package`` in a new run, register it under ``name`` and alias it ``challenger``.

    Metrics and tags go both on the run and on the version, so the registry alone answers
    "what was measured on this version" without digging out runs. The version also carries the
    SHA-256 of every file logged with it, which serving checks before it unpickles anything.
    """
    if name not in MODEL_NAMES:
        raise UnknownModelError(
            f"{name!r} is not a registered model name ({', '.join(MODEL_NAMES)})"
        )
    signature = infer_signature(package.input_example, package.output_example)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metrics(dict(package.metrics))
        mlflow.set_tags(dict(package.tags))
        with tempfile.TemporaryDirectory() as scratch:
            holdout_path = Path(scratch) / HOLDOUT_ARTIFACT
            package.holdout.to_parquet(holdout_path, index=False)
            mlflow.log_artifact(str(holdout_path))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=package.python_model,
            artifacts=dict(package.artifacts),
            signature=signature,
            input_example=package.input_example,
            pip_requirements=list(package.pip_requirements),
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    manifest = json.dumps(_logged_manifest(info.model_uri), sort_keys=True)
    client.set_model_version_tag(name, version, ARTIFACT_MANIFEST_TAG, manifest)
    for key, value in {**package.tags, **_metric_tags(package.metrics)}.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version)
    logger.info("registered %s v%s as %s (run %s)", name, version, CHALLENGER, run.info.run_id)
    return RegisteredVersion(name=name, version=version, run_id=run.info.run_id)


def _metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    return {f"metric.{key}": f"{value:.6f}" for key, value in metrics.items()}


def _logged_manifest(model_uri: str) -> dict[str, str]:
    """Digests of the files as the artifact store holds them, read back right after logging."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(download_artifacts(artifact_uri=model_uri, dst_path=scratch))
        return artifact_manifest(local)
