"""Pointing MLflow at the profile's tracking store, explicitly and never at import time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient

if TYPE_CHECKING:
    import pandas as pd

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


def log_datasets(frames: Mapping[str, pd.DataFrame], source: Path, name: str) -> None:
    """Log each frame as the active run's input in its context (``training``, ``holdout`` ...).

    MLflow keeps a dataset's digest, schema, row count and source, never its rows, so frames of
    personal data (customers' texts) may take part in the digest that identifies the data.
    """
    from mlflow.data.pandas_dataset import from_pandas

    for context, frame in frames.items():
        dataset = from_pandas(
            frame.reset_index(drop=True),
            source=str(source),
            name=f"{name}-{context}",
            targets="label",
        )
        mlflow.log_input(dataset, context=context)
