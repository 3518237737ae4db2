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
from typing import Literal, TypeVar

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.embeddings import build_embedding_cache, load_minilm_encoder
from decisioning.adapters.evidence import build_evidence_index
from decisioning.adapters.llm.explanation import Explainer, ExplanationQueue
from decisioning.adapters.llm.gateway import (
    AuditLlmCallRecorder,
    LlmConfig,
    LlmGateway,
    build_gateway,
)
from decisioning.adapters.mlflow.fraud_pyfunc import MODEL_ARTIFACT as FRAUD_ARTIFACT
from decisioning.adapters.mlflow.fraud_pyfunc import load_fraud_scorer
from decisioning.adapters.mlflow.model_store import (
    FEATURE_SERVICE_TAG,
    ModelNotAvailable,
    resolve,
    served_models,
)
from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.evidence import load_policy_documents
from decisioning.conduct.prompts import champion_prompt_versions
from decisioning.core.decision import ModelVersion
from decisioning.core.engine import DecisionEngine
from decisioning.core.names import CHAMPION, CONDUCT_CLASSIFIER, FRAUD_DETECTOR
from decisioning.core.policy import load_policy
from decisioning.core.ports import ConductPillar, FraudPillar
from decisioning.fraud.model import FraudScorer
from decisioning.pillars import ConductAssessorPillar, FraudScorerPillar
from decisioning.settings import Settings

logger = logging.getLogger(__name__)
P = TypeVar("P")

CONDUCT_ARTIFACT = "conduct_model"
EXTRACTION_TIMEOUT_S = 1.0  # a message's whole budget is tens of milliseconds (ADR 0006)
# A bento pins versions at build time; these variables carry them into the running service.
PINNED_VERSION_VARIABLES = {
    FRAUD_DETECTOR: "RISK_FRAUD_MODEL_VERSION",
    CONDUCT_CLASSIFIER: "RISK_CONDUCT_MODEL_VERSION",
}


def pinned_or_champion(settings: Settings, name: str) -> ModelVersion:
    version = os.environ.get(PINNED_VERSION_VARIABLES[name])
    if version:
        return ModelVersion(name=name, version=version)
    return resolve(settings.mlflow.tracking_uri, name, CHAMPION)


IN_PROCESS: Literal["in process"] = "in process"


def build_engine(
    settings: Settings,
    *,
    fraud: FraudPillar | Literal["in process"] | None = IN_PROCESS,
    conduct: ConductPillar | Literal["in process"] | None = IN_PROCESS,
) -> DecisionEngine[AuditStore]:
    """The engine, wired the one way every entry point uses (the CLI, the served
    ``RiskService``, the benches; a test holds them to it).

    The policy, the audit store (checkpoints in the background, ADR 0009) and both pillars,
    loaded in process unless the caller hands one in: the service builds its fraud pillar itself
    (its scoring route needs it and the reason it is missing) and reaches conduct over HTTP. A
    champion that is not there leaves its pillar out, and the engine then applies the policy's
    fallback, as the service does.
    """
    for given in (fraud, conduct):
        if isinstance(given, str) and given != IN_PROCESS:
            raise TypeError(f"a pillar is an object, None or {IN_PROCESS!r}, not {given!r}")
    policy = load_policy(settings.config_path("configs/policy.yaml"))
    audit = AuditStore.from_settings(settings.audit)  # checkpoints in the background (ADR 0009)
    return DecisionEngine(
        policy,
        audit,
        _available(fraud_pillar, settings, "fraud") if isinstance(fraud, str) else fraud,
        (
            _available(lambda s: conduct_pillar(s, audit), settings, "conduct")
            if isinstance(conduct, str)
            else conduct
        ),
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
    from decisioning.adapters.feast.online import OnlineFeatureService
    from decisioning.adapters.feast.store import open_feature_store, open_payment_history

    model = pinned_or_champion(settings, FRAUD_DETECTOR)
    scorer = load_scorer(settings, model)
    service = served_models(settings.mlflow.tracking_uri).tag(model, FEATURE_SERVICE_TAG)
    features = OnlineFeatureService(
        open_feature_store(settings), open_payment_history(settings), service
    )
    require_served_features(model, scorer.features, service, features.names)
    scorer.prepare_serving()  # the first payment need not build the model's tables
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
    embedder = Embedder(
        build_embedding_cache(settings.embeddings_cache), load_encoder=load_minilm_encoder
    )
    index = build_evidence_index(settings.evidence, embedder)
    index.add(load_policy_documents(settings.config_path("configs/policies")))

    def load_assessor(model: ModelVersion) -> ConductAssessor:
        path = served_models(settings.mlflow.tracking_uri).pyfunc_artifact(model, CONDUCT_ARTIFACT)
        with open(path, "rb") as handle:
            conduct_model: ConductModel = pickle.load(handle)  # our own registered artifact
        return ConductAssessor(conduct_model, embedder, index)

    model = pinned_or_champion(settings, CONDUCT_CLASSIFIER)
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
