"""Request and response models of the HTTP API, shared by the three services.

The API they serve is described in docs/design.md, Contracts: HTTP API.

Pydantic models all the way, so the OpenAPI document is exact and bad input gets a field-level
4xx before any code of ours runs.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from decisioning.core.decision import Evidence, FeatureValue, ModelVersion, ReasonCode
from decisioning.core.policy import ConductInput
from decisioning.core.ports import ConductResult, FraudResult


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FraudScore(_Response):
    """``POST /v1/fraud/score``: the fraud pillar's view of one payment."""

    score: float
    action: str
    reason_codes: tuple[ReasonCode, ...]
    feature_values: dict[str, FeatureValue]
    features_as_of: datetime | None
    model: ModelVersion
    feature_service: str
    problems: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, result: FraudResult) -> FraudScore:
        return cls(
            score=result.assessment.score,
            action=result.assessment.action,
            reason_codes=result.assessment.reason_codes,
            feature_values=result.feature_values,
            features_as_of=result.features_as_of,
            model=result.model,
            feature_service=result.feature_service,
            problems=result.problems,
        )


class ConductScore(_Response):
    """``POST /v1/conduct/assess``: category, severity, score and quoted evidence of a message."""

    category: str
    severity: str
    score: float
    source: str
    reason_codes: tuple[ReasonCode, ...]
    evidence: tuple[Evidence, ...]
    model: ModelVersion
    rules_version: str
    prompt_version: str | None = None

    @classmethod
    def of(cls, result: ConductResult) -> ConductScore:
        a = result.assessment
        return cls(
            category=a.category,
            severity=a.severity,
            score=a.score,
            source=a.source,
            reason_codes=a.reason_codes,
            evidence=a.evidence,
            model=result.model,
            rules_version=result.rules_version,
            prompt_version=result.prompt_version,
        )

    def result(self) -> ConductResult:
        assessment = ConductInput(
            self.category, self.severity, self.score, self.source, self.reason_codes, self.evidence
        )
        return ConductResult(assessment, self.model, self.rules_version, self.prompt_version)
