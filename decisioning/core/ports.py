"""What the engine calls, as protocols: the two pillars and the audit trail.

Adapters implement them (``decisioning.pillars`` over Feast, the scorers and the LLM gateway;
``decisioning.adapters.audit`` over SQL); tests swap in their own. A pillar that fails raises
``PillarUnavailable`` with the policy's cause name, which the engine records as a degradation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from decisioning.core.decision import FeatureValue, ModelVersion, RiskDecision
from decisioning.core.events import TextEvent, TransactionEvent
from decisioning.core.policy import ConductInput, DegradationCause, FraudInput


class PillarUnavailable(Exception):
    """A pillar could not produce a result; ``cause`` names the policy fallback to apply."""

    def __init__(self, cause: DegradationCause, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail


@dataclass(frozen=True)
class FraudResult:
    assessment: FraudInput
    feature_values: dict[str, FeatureValue]
    features_as_of: datetime | None
    model: ModelVersion
    feature_service: str
    problems: tuple[tuple[DegradationCause, str], ...] = ()
    features_stale: tuple[str, ...] = ()
    # Records the payment in the customer's history; the engine calls it once the decision is
    # stored, so only an audited decision counts (None: nothing to record).
    record_payment: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ConductResult:
    assessment: ConductInput
    model: ModelVersion
    rules_version: str
    prompt_version: str | None = None


class StoredRecord(Protocol):
    """One record of the audit trail, as the engine reads it back."""

    @property
    def record_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def body(self) -> dict[str, Any]: ...


class AuditTrail(Protocol):
    """The append-only record every decision is written to before it is answered."""

    def append(
        self, kind: str, record_id: str, body: dict[str, Any], *, text: str | None = None
    ) -> StoredRecord:
        """Store one record durably; raises ``AuditUnavailable`` when it cannot say it did.

        ``text`` is the body's canonical JSON when the caller has already built it (it must be
        ``canonical_json(body)``: the record's hash covers it)."""
        ...

    def get(self, record_id: str) -> StoredRecord | None: ...


class FraudPillar(Protocol):
    def assess(self, event: TransactionEvent) -> FraudResult: ...

    def rescore(self, feature_values: dict[str, FeatureValue], model: ModelVersion) -> FraudInput:
        """Score stored feature values with a stated model version (replay)."""
        ...


class ConductPillar(Protocol):
    def assess(self, event: TextEvent) -> ConductResult: ...


@runtime_checkable
class ConductReplay(Protocol):
    """What replaying a text decision needs beyond scoring: the model again, and the facts an
    extraction gave, checked against its stored completion. Only an in-process pillar has it."""

    def reassess(self, event: TextEvent, model: ModelVersion) -> ConductInput: ...

    def replay_facts(
        self, decision: RiskDecision, event: TextEvent, audit: AuditTrail
    ) -> tuple[str, ...]:
        """What does not hold replaying the decision's fact extraction on its stored completion."""
        ...
