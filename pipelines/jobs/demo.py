"""The demo's steps as functions of settings: simulate a world, build and load its features,
train both models and promote them through their gates.

``riskctl demo`` (and ``riskctl data simulate``) and ``bench/decide.py`` call these and print
what they return; each step tells a :data:`~pipelines.progress.Progress` what it is doing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from decisioning.settings import Settings
from pipelines.progress import Progress, ProgressFactory, no_progress
from pipelines.simulate.world import SimulatedWorld
from registry.names import CONDUCT_CLASSIFIER, FRAUD_DETECTOR, MODEL_NAMES

if TYPE_CHECKING:  # pandas, the simulator and MLflow load when a step runs, not for --help
    import pandas as pd

    from pipelines.simulate import SimulationConfig
    from registry.workflow import Promotion

logger = logging.getLogger(__name__)

DEMO_APPROVER = "demo"
DEMO_REASON = "make demo: model trained on the simulated world"


@dataclass(frozen=True)
class WrittenWorld(SimulatedWorld):
    """A simulated world and the Parquet file each of its tables was written to."""

    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedFeatures:
    """What the features step registered and loaded online."""

    services: list[str]
    seeded_customers: int


@dataclass(frozen=True)
class TrainedVersion:
    """A model version registered as challenger, with what training measured."""

    name: str
    version: str
    metrics: dict[str, float]


def simulate_and_write(
    config: SimulationConfig, out: Path, progress: Progress = logger.info
) -> WrittenWorld:
    """Simulate a world and write its four Parquet files into ``out``."""
    from pipelines.simulate import simulate_world, write_world

    world = simulate_world(config, progress=lambda stage: progress(f"simulating {stage}"))
    progress("writing Parquet files")
    written = write_world(world, out)
    tables = {table.name: getattr(world, table.name) for table in fields(SimulatedWorld)}
    return WrittenWorld(**tables, files=written)


def features_up_to(
    settings: Settings, transactions: Path, cutoff: pd.Timestamp, progress: Progress = logger.info
) -> LoadedFeatures:
    """Build the point-in-time tables, register the feature services and load the online store
    and the velocity history with what was known at ``cutoff``."""
    from pipelines.features.jobs import apply_features, build_features, materialize_features

    progress("building point-in-time feature tables")
    build_features(
        settings.home, transactions, transactions.with_name("customers.parquet"), progress
    )
    progress("registering the feature definitions")
    services = apply_features(settings)
    progress(f"materializing up to {cutoff:%Y-%m-%d %H:%M}")
    customers = materialize_features(settings, cutoff.to_pydatetime())
    return LoadedFeatures(services, customers)


def train_fraud_detector(
    settings: Settings, transactions: Path, progress: Progress = logger.info
) -> TrainedVersion:
    """Train the fraud scorer on the payments and register it as challenger."""
    from pipelines.fraud.training import train_and_register

    version, trained = train_and_register(settings, transactions, progress=progress)
    return TrainedVersion(FRAUD_DETECTOR, version, trained.metrics)


def train_conduct_classifier(
    settings: Settings, counting: ProgressFactory = no_progress
) -> TrainedVersion:
    """Train the conduct classifier on the profile's texts and register it as challenger."""
    from pipelines.conduct.jobs import train_conduct

    texts = settings.data_path / "texts.parquet"
    registered, trained = train_conduct(settings, texts, progress=counting)
    return TrainedVersion(CONDUCT_CLASSIFIER, registered.version, trained.metrics)


def train_both(
    settings: Settings,
    transactions: Path,
    progress: Progress = logger.info,
    counting: ProgressFactory = no_progress,
) -> tuple[TrainedVersion, TrainedVersion]:
    """Both models, fraud first, each registered as challenger."""
    fraud = train_fraud_detector(settings, transactions, progress)
    return fraud, train_conduct_classifier(settings, counting)


def promote_to_champion(settings: Settings, name: str) -> Promotion:
    """Promote ``name``'s challenger through its gates, the promotion written to the audit chain."""
    from pipelines.commands.registry import promote_and_record

    return promote_and_record(settings, name, DEMO_APPROVER, DEMO_REASON)


def promote_both(settings: Settings) -> list[Promotion]:
    """Both challengers to champion, in the order of ``MODEL_NAMES``."""
    return [promote_to_champion(settings, name) for name in MODEL_NAMES]
