"""Pointing MLflow at the profile's tracking store, explicitly and never at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow import MlflowClient

from decisioning.settings import MlflowSettings


@contextmanager
def mlflow_session(settings: MlflowSettings) -> Iterator[MlflowClient]:
    """Use the settings' tracking and registry store in the block, then restore the previous."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    try:
        yield MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    finally:
        if previous is not None:
            mlflow.set_tracking_uri(previous)
            mlflow.set_registry_uri(previous)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str) -> str:
    """The experiment's id, created with artifacts under the profile's artifact root if new."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=f"{artifact_root}/{name}"))
