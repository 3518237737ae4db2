"""Build the pillars and the engine for a profile: models pinned at start-up, stores opened once.

The bento's scorers build their pillar with :func:`fraud_pillar` and :func:`conduct_pillar`;
``riskctl audit replay`` and the demo use the same two through :func:`build_engine`, so a replay
recomputes a decision with the components that serve.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
from collections.abc import Callable
from typing import TypeVar

from decisioning.audit import AuditStore
from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.embeddings import Embedder, build_embedding_cache
from decisioning.conduct.evidence import build_evidence_index, load_policy_documents
from decisioning.conduct.explanation import Explainer, ExplanationQueue
from decisioning.conduct.llm import AuditLlmCallRecorder, LlmConfig, LlmGateway, build_gateway
from decisioning.conduct.prompts import champion_prompt_versions
from decisioning.decision import ModelVersion
from decisioning.engine import DecisionEngine
from decisioning.fraud.model import FraudScorer
from decisioning.fraud.pyfunc import MODEL_ARTIFACT as FRAUD_ARTIFACT
from decisioning.fraud.pyfunc import load_fraud_scorer
from decisioning.model_store import (
    FEATURE_SERVICE_TAG,
    ModelNotAvailable,
    resolve,
    served_models,
)
from decisioning.pillars import ConductAssessorPillar, FraudScorerPillar
from decisioning.policy import load_policy
from decisioning.settings import Settings

logger = logging.getLogger(__name__)
P = TypeVar("P")

FRAUD_MODEL = "fraud-detector"
CONDUCT_MODEL = "conduct-classifier"
CONDUCT_ARTIFACT = "conduct_model"
EXTRACTION_TIMEOUT_S = 1.0  # a message's whole budget is tens of milliseconds (ADR 0006)
# A bento pins versions at build time; these variables carry them into the running service.
PINNED_VERSION_VARIABLES = {
    FRAUD_MODEL: "RISK_FRAUD_MODEL_VERSION",
    CONDUCT_MODEL: "RISK_CONDUCT_MODEL_VERSION",
}


def pinned_or_champion(settings: Settings, name: str) -> ModelVersion:
    version = os.environ.get(PINNED_VERSION_VARIABLES[name])
    if version:
        return ModelVersion(name=name, version=version)
    return resolve(settings.mlflow.tracking_uri, name, "champion")


def build_engine(settings: Settings) -> DecisionEngine:
    """Open the audit store and load both champions in process; a missing one is left out.

    The engine then treats a missing pillar as the policy's fallback, as the service would.
    """
    policy = load_policy(settings.config_path("configs/policy.yaml"))
    audit = AuditStore.from_settings(settings.audit)  # checkpoints in the background (ADR 0009)
    return DecisionEngine(
        policy,
        audit,
        _available(fraud_pillar, settings, "fraud"),
        _available(lambda s: conduct_pillar(s, audit), settings, "conduct"),
    )


def _available(build: Callable[[Settings], P], settings: Settings, pillar: str) -> P | None:
    try:
        return build(settings)
    except ModelNotAvailable as exc:
        logger.warning("%s pillar unavailable: %s", pillar, exc)
        return None


def load_scorer(settings: Settings, model: ModelVersion) -> FraudScorer:
    models = served_models(settings.mlflow.tracking_uri)
    return load_fraud_scorer(models.pyfunc_artifact(model, FRAUD_ARTIFACT))


def fraud_pillar(settings: Settings) -> FraudScorerPillar:
    from decisioning.features.online import OnlineFeatureService
    from decisioning.features.store import open_feature_store, open_payment_history

    model = pinned_or_champion(settings, FRAUD_MODEL)
    scorer = load_scorer(settings, model)
    service = served_models(settings.mlflow.tracking_uri).tag(model, FEATURE_SERVICE_TAG)
    features = OnlineFeatureService(
        open_feature_store(settings), open_payment_history(settings), service
    )
    require_served_features(model, scorer.features, service, features.names)
    return FraudScorerPillar(
        features.read, scorer, model, service, lambda other: load_scorer(settings, other)
    )


def require_served_features(
    model: ModelVersion, needed: list[str], service: str, served: list[str]
) -> None:
    """Refuse to serve a model whose features its feature service lacks.

    Scoring them as nulls would give a silent, wrong score; a version trained before its service
    was split (``fraud_v1`` once grew in place) must be retrained on the current service.
    """
    missing = [name for name in needed if name not in served]
    if missing:
        raise ModelNotAvailable(
            f"{model.name} v{model.version} needs {', '.join(missing)}, which feature service "
            f"{service} does not serve; retrain it on the current service"
        )


def conduct_pillar(settings: Settings, audit: AuditStore | None = None) -> ConductAssessorPillar:
    """The conduct pillar; its extraction calls are logged in ``audit`` (the engine's) if given."""
    embedder = Embedder(build_embedding_cache(settings.embeddings_cache))
    index = build_evidence_index(settings.evidence, embedder)
    index.add(load_policy_documents(settings.config_path("configs/policies")))

    def load_assessor(model: ModelVersion) -> ConductAssessor:
        path = served_models(settings.mlflow.tracking_uri).pyfunc_artifact(model, CONDUCT_ARTIFACT)
        with open(path, "rb") as handle:
            conduct_model: ConductModel = pickle.load(handle)  # our own registered artifact
        return ConductAssessor(conduct_model, embedder, index)

    model = pinned_or_champion(settings, CONDUCT_MODEL)
    return ConductAssessorPillar(
        load_assessor(model), model, load_assessor, extraction_gateway(settings, audit)
    )


def extraction_gateway(settings: Settings, audit: AuditStore | None = None) -> LlmGateway:
    """The gateway for extraction on a message's path: one attempt, a 1 s wall-clock deadline.

    Extraction only adds evidence, so a slow provider is not worth a retry there; its breaker
    then stops calls altogether while the provider is down. Calls are logged in ``audit``, the
    engine's store, which closes it; a conduct scorer (no engine) opens one for its life.
    """
    config = LlmConfig.from_env(os.environ)
    on_path = config.model_copy(
        update={
            "max_retries": 0,
            "timeout_seconds": min(config.timeout_seconds, EXTRACTION_TIMEOUT_S),
            "call_budget_seconds": min(config.call_budget_seconds, EXTRACTION_TIMEOUT_S),
        }
    )
    recorder = AuditLlmCallRecorder(
        audit if audit is not None else AuditStore.open(settings.audit.url)
    )
    prompts = settings.config_path("configs/prompts")
    champions = champion_prompt_versions(settings.mlflow.tracking_uri, prompts)
    return build_gateway(on_path, prompts, recorder, champions, EXTRACTION_TIMEOUT_S)


def explanation_queue(settings: Settings, audit: AuditStore) -> ExplanationQueue:
    """The background explainer of review and escalate decisions (docs/adr/0016).

    The gateway's provider comes from ``RISK_LLM_*`` (offline by default); its calls and the
    explanations go to the decisions' own audit store.
    """
    prompts = settings.config_path("configs/prompts")
    gateway = build_gateway(
        LlmConfig.from_env(os.environ),
        prompts,
        AuditLlmCallRecorder(audit),
        champion_prompt_versions(settings.mlflow.tracking_uri, prompts),
    )
    return ExplanationQueue(Explainer(gateway, audit))


def freeze_startup_heap() -> None:
    """Take what start-up loaded out of the garbage collector's sight, once loading is done.

    A serving process holds about a million long-lived objects (Feast, MLflow, torch, the
    models), and every full collection walked them all: pauses of ~300 ms that set the p99
    (docs/benchmarks.md). ``gc.freeze`` moves them to a
    permanent generation; collections then look at what requests allocate.
    """
    gc.collect()
    gc.freeze()
