"""The two pillars behind the engine's protocols: Feast + the fraud scorer, and conduct.

Each turns its library's result into the policy's inputs and the decision's vocabulary, and
turns an infrastructure failure into ``PillarUnavailable`` with the policy's cause name.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, cast

import numpy as np
from opentelemetry import trace

from decisioning.adapters.llm.extraction import (
    FactExtraction,
    extract_facts,
    fact_evidence,
    needs_extraction,
    replay_extraction,
)
from decisioning.adapters.llm.gateway import LlmGateway
from decisioning.conduct.assessment import ConductAssessment, ConductAssessor
from decisioning.conduct.errors import LlmProviderError
from decisioning.core.decision import Evidence, FeatureValue, ModelVersion, ReasonCode, RiskDecision
from decisioning.core.events import TextEvent, TransactionEvent
from decisioning.core.names import CONDUCT_CLASSIFIER, FRAUD_DETECTOR
from decisioning.core.policy import ConductInput, DegradationCause, FraudInput
from decisioning.core.ports import AuditTrail, ConductResult, FraudResult, PillarUnavailable
from decisioning.fraud.model import FraudScorer

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Fetch = Callable[[TransactionEvent], "FeatureRead"]


class FeatureRead(Protocol):
    """A payment's feature values, the push that records it (called once it is decided), the
    batch features the online store lacked, and those older than their view's TTL (served as
    unknown)."""

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def push(self) -> Callable[[], None]: ...

    @property
    def missing(self) -> tuple[str, ...]: ...

    @property
    def stale(self) -> tuple[str, ...]: ...


class FraudScorerPillar:
    """Read the feature service online for a payment, score it, and hand back its push."""

    def __init__(
        self,
        fetch_features: Fetch,
        scorer: FraudScorer,
        model: ModelVersion,
        feature_service: str,
        load_scorer: Callable[[ModelVersion], FraudScorer],
    ) -> None:
        self._fetch = fetch_features
        self._scorer = scorer
        self._model = model
        self._service = feature_service
        self._load_scorer = load_scorer

    @property
    def model(self) -> ModelVersion:
        return self._model

    def assess(self, event: TransactionEvent) -> FraudResult:
        try:
            with tracer.start_as_current_span("features.fetch") as span:
                span.set_attribute("risk.feature_service", self._service)
                read = self._fetch(event)
        except Exception as exc:  # any store failure: the policy's fallback, never a crash
            logger.warning("feature fetch failed: %s", type(exc).__name__)
            raise PillarUnavailable("features_unavailable", f"{type(exc).__name__}: {exc}") from exc
        values, unusable = model_input(read.values, self._scorer.features)
        problems = feature_problems(values, unusable, read.missing)
        with tracer.start_as_current_span(f"model.{FRAUD_DETECTOR}") as span:
            span.set_attribute("risk.model_version", self._model.version)
            try:
                assessment = self._scorer.assess(values)
            except Exception as exc:  # the guard's last line: a model failure is no 500
                logger.warning("fraud scoring failed: %s", type(exc).__name__)
                raise PillarUnavailable(
                    "fraud_scoring_failed", f"{type(exc).__name__}: {exc}"[:300]
                ) from exc
        return FraudResult(
            assessment=assessment,
            feature_values=values,
            features_as_of=event.occurred_at,
            model=self._model,
            feature_service=self._service,
            problems=problems,
            features_stale=read.stale,
            record_payment=read.push,
        )

    def rescore(self, feature_values: dict[str, FeatureValue], model: ModelVersion) -> FraudInput:
        scorer = self._scorer if model == self._model else self._load_scorer(model)
        return scorer.assess(feature_values)


class ConductAssessorPillar:
    """Rules, classifier and evidence retrieval on one message, and facts through the gateway.

    With a ``gateway``, a flag the rules and classifier cannot carry alone (or whose category
    needs facts) gets its amounts, dates, products and vulnerability cues extracted as span
    evidence, and the result names the prompt version; the category and score stay the
    assessor's. A failed extraction leaves the result as it would be without a gateway.
    """

    def __init__(
        self,
        assessor: ConductAssessor,
        model: ModelVersion,
        load_assessor: Callable[[ModelVersion], ConductAssessor],
        gateway: LlmGateway | None = None,
    ) -> None:
        self._assessor = assessor
        self._model = model
        self._load_assessor = load_assessor
        self._gateway = gateway

    @property
    def model(self) -> ModelVersion:
        return self._model

    def assess(self, event: TextEvent) -> ConductResult:
        return self.with_facts(event, self.classify(event))

    def classify(self, event: TextEvent) -> ConductAssessment:
        """Rules, classifier and evidence retrieval: CPU and the embeddings cache, no network."""
        with tracer.start_as_current_span(f"model.{CONDUCT_CLASSIFIER}") as span:
            span.set_attribute("risk.model_version", self._model.version)
            return self._assessor.assess(event.text)

    def with_facts(self, event: TextEvent, assessment: ConductAssessment) -> ConductResult:
        """The assessment as the policy's input, with extracted facts where a flag needs them:
        the one step that may wait on the LLM provider (at most the gateway's deadline)."""
        result = conduct_input(assessment, event.message_id)
        extraction = self._extract(assessment, event.text)
        if extraction is not None:
            evidence = result.evidence + fact_evidence(extraction, event.message_id)
            result = dataclasses.replace(result, evidence=evidence)
        return ConductResult(
            assessment=result,
            model=self._model,
            rules_version=assessment.rules_version,
            prompt_version=None if extraction is None else extraction.prompt_version,
        )

    def _extract(self, assessment: ConductAssessment, text: str) -> FactExtraction | None:
        if self._gateway is None or not needs_extraction(assessment):
            return None
        try:
            return extract_facts(self._gateway, text)
        except LlmProviderError as exc:  # evidence only: the decision goes on without facts
            logger.warning("fact extraction unavailable: %s", exc)
            return None
        except Exception as exc:  # whatever else fails: still evidence only, never the decision
            logger.exception("fact extraction failed: %s", type(exc).__name__)
            return None

    def reassess(self, event: TextEvent, model: ModelVersion) -> ConductInput:
        assessor = self._assessor if model == self._model else self._load_assessor(model)
        return conduct_input(assessor.assess(event.text), event.message_id)

    def replay_facts(
        self, decision: RiskDecision, event: TextEvent, audit: AuditTrail
    ) -> tuple[str, ...]:
        """What does not hold replaying the decision's extraction on its stored completion."""
        if decision.prompt_version is None:
            return ()
        if self._gateway is None:
            return (f"{decision.prompt_version}: no prompts loaded to replay it against",)
        prompts = self._gateway.prompts_dir
        return replay_extraction(audit, decision, event.message_id, event.text, prompts)


# XGBoost reads float32: a larger magnitude becomes infinite there, and it refuses the row.
MODEL_INPUT_LIMIT = float(np.finfo(np.float32).max)
_INT64 = 2**63  # integers past a feature's int64 take the general check (float() may overflow)


def model_input(
    raw: Mapping[str, Any], features: list[str]
) -> tuple[dict[str, FeatureValue], list[str]]:
    """The values a model may read, and the features whose value it cannot.

    A feature that is infinite or beyond float32 (a ratio to a tiny amount) is recorded and
    scored as missing rather than passed on to fail the model: the guard at the model's input.
    """
    values: dict[str, FeatureValue] = {}
    unusable: list[str] = []
    for name in features:
        value = raw.get(name)
        kind = type(value)
        # Floats, integers, text and nulls are nearly every value: checked inline (the calls
        # below cost ~1.3 µs a feature, some 40 a payment); anything else takes them.
        if kind is float or (kind is int and -_INT64 <= cast(int, value) < _INT64):
            number = cast(float, value)
            if number != number:  # NaN: unknown, as json_value makes it
                values[name] = None
            elif -MODEL_INPUT_LIMIT <= number <= MODEL_INPUT_LIMIT:
                values[name] = number
            else:
                values[name] = None
                unusable.append(name)
        elif kind is str or value is None:
            values[name] = value
        elif _number_out_of_range(value):
            values[name] = None
            unusable.append(name)
        else:
            values[name] = json_value(value)
    return values, unusable


def _number_out_of_range(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return False
    number = float(value)
    return math.isinf(number) or abs(number) > MODEL_INPUT_LIMIT


def feature_problems(
    values: Mapping[str, FeatureValue],
    unusable: list[str],
    missing: tuple[str, ...],
) -> tuple[tuple[DegradationCause, str], ...]:
    """Why a payment's features cannot be trusted as they are, each with the policy's cause.

    A model scores a missing value as "unknown", which it learned from payments that really had
    none (a new customer): a batch feature lost by the store is not that, so the decision says so
    and takes the fallback instead of a silent approval.
    """
    if all(value is None for value in values.values()):
        return (("features_unavailable", "every feature of the service was empty"),)
    problems: list[tuple[DegradationCause, str]] = []
    if missing:
        problems.append(("features_missing", f"no online value: {', '.join(missing)}"))
    if unusable:
        detail = f"outside the range a model takes: {', '.join(unusable)}"
        problems.append(("features_unavailable", detail))
    return tuple(problems)


def _finite(score: float) -> float | None:
    """An evidence score, or unknown when it is not a number JSON can hold: a decision's text is
    its answer and its audit record, and ``NaN`` in either would not parse as JSON."""
    return score if math.isfinite(score) else None


def conduct_input(assessment: ConductAssessment, message_id: str) -> ConductInput:
    flagged = assessment.flagged
    reasons: tuple[ReasonCode, ...] = ()
    if flagged:
        reasons = (
            ReasonCode(
                code=assessment.category,
                description=f"{assessment.severity} severity {assessment.category} "
                f"({assessment.source}, p={assessment.category_probability:.2f})",
                contribution=assessment.risk_score,
                source="rule" if assessment.source.startswith("rule") else "text",
            ),
        )
    spans = tuple(
        Evidence(
            kind="span",
            reference=f"{message_id}:{item.reference}",
            quote=item.span.text,
            start=item.span.start,
            end=item.span.end,
            score=_finite(item.score),
        )
        for item in assessment.spans
    )
    documents = tuple(
        Evidence(
            kind="document",
            reference=hit.document.doc_id,
            quote=hit.snippet,
            score=_finite(round(hit.score, 6)),
        )
        for hit in assessment.documents
    )
    return ConductInput(
        category=assessment.category,
        severity=assessment.severity,
        score=assessment.risk_score,
        source=assessment.source,
        reason_codes=reasons,
        evidence=spans + documents,
    )


def json_value(value: Any) -> FeatureValue:
    """Feature values as stored in a decision: plain JSON scalars, NaN and NaT as null."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)
