"""The decision engine: one request in, one audited ``RiskDecision`` out, and its replay.

The engine only wires the two pillars, the policy and the audit store; each pillar hides its
models and features behind a small protocol, so tests can swap them and a pillar that fails or is
missing becomes a recorded degradation with the policy's fallback, never an approval.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, model_validator

from decisioning.core.decision import (
    DecisionTimestamps,
    Evidence,
    RiskDecision,
    Subject,
    canonical_json,
    decision_record_text,
    input_hash,
    sha256_hex,
)
from decisioning.core.errors import AuditUnavailable, IdempotencyConflict
from decisioning.core.events import TextEvent, TransactionEvent, utc_now
from decisioning.core.names import CONDUCT_CLASSIFIER, FRAUD_DETECTOR
from decisioning.core.policy import DegradationCause, Policy, apply_policy
from decisioning.core.ports import (
    AuditTrail,
    ConductPillar,
    ConductReplay,
    ConductResult,
    FraudPillar,
    FraudResult,
    PillarUnavailable,
)

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DECISION_KIND = "decision"
Trail = TypeVar("Trail", bound=AuditTrail)


class DecisionRequest(BaseModel):
    """``POST /v1/decisions``: a payment, a message, or both; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction: TransactionEvent | None = None
    text: TextEvent | None = None

    @model_validator(mode="after")
    def _something_to_decide(self) -> DecisionRequest:
        if self.transaction is None and self.text is None:
            raise ValueError("give a transaction, a text, or both")
        return self

    @property
    def idempotency_key(self) -> str:
        """What makes a request a repeat: its payment's id, else its message's id."""
        if self.transaction is not None:
            return f"transaction:{self.transaction.transaction_id}"
        assert self.text is not None
        return f"message:{self.text.message_id}"

    @property
    def decision_id(self) -> str:
        """The decision's id, derived from the idempotency key: a repeat has the same one, and
        the audit table's unique record id refuses a second decision even from another worker."""
        return f"dec_{sha256_hex(self.idempotency_key)[:32]}"

    @property
    def subject(self) -> Subject:
        if self.transaction is not None and self.text is not None:
            return "both"
        return "transaction" if self.transaction is not None else "message"


@dataclass(frozen=True)
class Answer:
    """A decision and its canonical JSON: the text its audit record holds, so an answer sent as
    that text is the record's, byte for byte, and the decision is encoded once."""

    decision: RiskDecision
    text: str


@dataclass(frozen=True)
class ReplayReport:
    decision_id: str
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differences


class DecisionEngine(Generic[Trail]):
    """Decides and replays; ``audit`` is the trail it is given (whoever opened it closes it)."""

    def __init__(
        self,
        policy: Policy,
        audit: Trail,
        fraud: FraudPillar | None,
        conduct: ConductPillar | None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.policy = policy
        self.audit = audit
        self.fraud = fraud
        self.conduct = conduct
        self.clock = clock

    def decide(self, request: DecisionRequest) -> RiskDecision:
        """Assess, apply the policy, write the audit record, record the payment, return.

        ``answer`` does the same and also returns the decision's canonical JSON.
        """
        return self.answer(request).decision

    def answer(self, request: DecisionRequest) -> Answer:
        """Assess, apply the policy, write the audit record, record the payment, return.

        A decision the audit store did not record is never returned: ``AuditUnavailable`` from
        the store goes to the caller, which answers 503 (a dependency failed, not the request),
        and nothing was counted, so a retry is safe. A request whose id was decided before gets
        that stored decision back, marked ``replay``, and counts nothing again; with another
        request body under the same id it is refused (``IdempotencyConflict``).
        """
        with tracer.start_as_current_span("decision") as span:
            trace_id = _trace_id(span)
            problems: list[tuple[DegradationCause, str]] = []
            fraud = self._assess_fraud(request.transaction, problems)
            conduct = self._assess_conduct(request.text, problems)
            outcome = apply_policy(
                self.policy,
                None if fraud is None else fraud.assessment,
                None if conduct is None else conduct.assessment,
                problems,
            )
            payload = request.model_dump(mode="json", exclude_none=True)
            request_text = canonical_json(payload)
            decision = RiskDecision(
                decision_id=request.decision_id,
                subject=request.subject,
                risk_score=outcome.risk_score,
                risk_category=outcome.risk_category,
                action=outcome.action,
                reason_codes=outcome.reason_codes,
                evidence=_feature_evidence(fraud) + outcome.evidence,
                model_versions=tuple(r.model for r in (fraud, conduct) if r is not None),
                feature_service=None if fraud is None else fraud.feature_service,
                feature_values={} if fraud is None else fraud.feature_values,
                features_stale=() if fraud is None else fraud.features_stale,
                prompt_version=None if conduct is None else conduct.prompt_version,
                rules_version=None if conduct is None else conduct.rules_version,
                policy_version=self.policy.version,
                timestamps=DecisionTimestamps(
                    event=_event_time(request),
                    features_as_of=None if fraud is None else fraud.features_as_of,
                    decided=self.clock(),
                ),
                trace_id=trace_id,
                input_hash=sha256_hex(request_text),
                degraded=outcome.degraded,
            )
            recorded = decision.model_dump(mode="json")
            decision_text = canonical_json(recorded)
            with tracer.start_as_current_span("audit.write"):
                try:
                    self.audit.append(
                        DECISION_KIND,
                        decision.decision_id,
                        {"decision": recorded, "request": payload},
                        text=decision_record_text(decision_text, request_text),
                    )
                except AuditUnavailable:
                    raise
                except Exception:
                    # The unique record id refused it: the same id was decided, maybe just now
                    # on another worker. Its stored answer is the answer.
                    stored = _stored_body(self.audit, decision.decision_id)
                    if stored is None:
                        raise
                    repeated = _repeated(stored, decision)
                    return Answer(repeated, canonical_json(repeated.model_dump(mode="json")))
            _record_payment(fraud)
            span.set_attribute("risk.decision_id", decision.decision_id)
            span.set_attribute("risk.action", decision.action)
            logger.info(
                "decided decision_id=%s action=%s category=%s degraded=%d",
                decision.decision_id,
                decision.action,
                decision.risk_category,
                len(decision.degraded),
            )
            return Answer(decision, decision_text)

    def replay(self, decision_id: str) -> ReplayReport:
        """Recompute a stored decision from what it recorded and report every difference."""
        record = self.audit.get(decision_id)
        if record is None or record.kind != DECISION_KIND:
            raise LookupError(f"no decision {decision_id!r} in the audit store")
        stored = RiskDecision.model_validate(record.body["decision"])
        request = DecisionRequest.model_validate(record.body["request"])
        versions = {model.name: model for model in stored.model_versions}
        problems = [(d.component, d.cause) for d in stored.degraded]
        fraud_input = conduct_input = None
        if request.transaction is not None and self.fraud is not None and stored.feature_values:
            model = versions.get(FRAUD_DETECTOR)
            if model is not None:
                fraud_input = self.fraud.rescore(stored.feature_values, model)
        # Only a text the conduct pillar scored, or extracted facts from, needs its replay side.
        needed = versions.get(CONDUCT_CLASSIFIER) is not None or stored.prompt_version is not None
        conduct = self._conduct_replay() if request.text is not None and needed else None
        if request.text is not None and conduct is not None:
            model = versions.get(CONDUCT_CLASSIFIER)
            if model is not None:
                conduct_input = conduct.reassess(request.text, model)
        outcome = apply_policy(self.policy, fraud_input, conduct_input, problems)  # type: ignore[arg-type]
        recomputed = {
            "risk_score": outcome.risk_score,
            "risk_category": outcome.risk_category,
            "action": outcome.action,
            "reason_codes": [r.code for r in outcome.reason_codes],
            "policy_version": self.policy.version,
        }
        original = {
            "risk_score": stored.risk_score,
            "risk_category": stored.risk_category,
            "action": stored.action,
            "reason_codes": [r.code for r in stored.reason_codes],
            "policy_version": stored.policy_version,
        }
        differences = {
            key: (original[key], recomputed[key])
            for key in original
            if not _same(original[key], recomputed[key])
        }
        if stored.prompt_version and request.text is not None and conduct is not None:
            problems_found = conduct.replay_facts(stored, request.text, self.audit)
            if problems_found:  # the facts the extraction gave, checked on its stored completion
                differences["extraction"] = (stored.prompt_version, "; ".join(problems_found))
        return ReplayReport(decision_id, differences)

    def _conduct_replay(self) -> ConductReplay | None:
        """The conduct pillar's replay side; one served over HTTP has none (replay runs in
        process: ``riskctl audit replay``)."""
        if self.conduct is None:
            return None
        if not isinstance(self.conduct, ConductReplay):
            raise TypeError(f"{type(self.conduct).__name__} cannot replay; run replay in process")
        return self.conduct

    def _assess_fraud(
        self, event: TransactionEvent | None, problems: list[tuple[DegradationCause, str]]
    ) -> FraudResult | None:
        if event is None:
            return None
        if self.fraud is None:
            problems.append(("fraud_model_unavailable", f"no {FRAUD_DETECTOR} champion is loaded"))
            return None
        try:  # its spans (features.fetch, model.*) are the decision's children: none to group them
            result = self.fraud.assess(event)
        except PillarUnavailable as exc:
            problems.append((exc.cause, exc.detail))
            return None
        problems.extend(result.problems)
        return result

    def _assess_conduct(
        self, event: TextEvent | None, problems: list[tuple[DegradationCause, str]]
    ) -> ConductResult | None:
        if event is None:
            return None
        if self.conduct is None:
            problems.append(("conduct_model_unavailable", f"no {CONDUCT_CLASSIFIER} champion"))
            return None
        try:
            return self.conduct.assess(event)
        except PillarUnavailable as exc:
            problems.append((exc.cause, exc.detail))
            return None


def stored_decision(audit: AuditTrail, request: DecisionRequest) -> RiskDecision | None:
    """The decision already stored for this request's id, marked as a replay; None if none."""
    stored = _stored_body(audit, request.decision_id)
    if stored is None:
        return None
    payload = request.model_dump(mode="json", exclude_none=True)
    return _repeated(stored, None, input_hash(payload))


def _stored_body(audit: AuditTrail, decision_id: str) -> dict[str, Any] | None:
    """The stored decision's body (one indexed read by the table's unique record id)."""
    record = audit.get(decision_id)
    if record is None or record.kind != DECISION_KIND:
        return None
    return record.body


def _repeated(
    stored: dict[str, Any], fresh: RiskDecision | None, request_hash: str | None = None
) -> RiskDecision:
    original = RiskDecision.model_validate(stored["decision"])
    expected = request_hash if fresh is None else fresh.input_hash
    if original.input_hash != expected:
        raise IdempotencyConflict(
            f"{original.decision_id} was decided for another request under the same id"
        )
    logger.info("repeat of decision_id=%s answered from the audit store", original.decision_id)
    return original.model_copy(update={"replay": True})


def _record_payment(fraud: FraudResult | None) -> None:
    """Count the decided payment in the customer's history; a failure loses one count only.

    The decision is stored and is returned either way: undoing it is impossible, and counting
    it twice later would be worse than this one gap, which the log and trace record.
    """
    if fraud is None or fraud.record_payment is None:
        return
    try:
        with tracer.start_as_current_span("features.push"):
            fraud.record_payment()
    except Exception as exc:
        logger.warning("payment history not updated after its decision: %s", type(exc).__name__)


def _trace_id(span: trace.Span) -> str:
    context = span.get_span_context()
    if context.is_valid:
        return trace.format_trace_id(context.trace_id)
    return secrets.token_hex(16)  # no tracer provider configured: still a unique trace id


def _event_time(request: DecisionRequest) -> datetime:
    if request.transaction is not None:
        return request.transaction.occurred_at
    assert request.text is not None
    return request.text.received_at


def _feature_evidence(fraud: FraudResult | None) -> tuple[Evidence, ...]:
    """The features behind the top fraud reasons, quoted with their values."""
    if fraud is None:
        return ()
    return tuple(
        Evidence(kind="feature", reference=reason.code, quote=reason.description)
        for reason in fraud.assessment.reason_codes
    )


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, float) and isinstance(second, float):
        return abs(first - second) <= 1e-6
    return bool(first == second)
