"""``RiskDecision``: the system of record, and its canonical JSON and hashes.

Every field is described in docs/design.md, Contracts: RiskDecision.

A decision is complete on its own: with the feature values, versions and inputs it records, the
decision can be recomputed years later and compared (``riskctl audit replay``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Action = Literal["approve", "review", "decline", "escalate"]
FeatureValue = float | int | str | bool | None


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReasonCode(_Record):
    code: str = Field(description="stable code from configs/reason_codes.yaml or a rule id")
    description: str = Field(description="a sentence with the actual values")
    contribution: float = Field(description="signed contribution to the score (log-odds or weight)")
    source: Literal["model", "rule", "text"]


class Evidence(_Record):
    kind: Literal["feature", "span", "document"]
    reference: str = Field(description="feature name, message id or document id")
    quote: str | None = None
    start: int | None = Field(default=None, ge=0, description="character offset, spans only")
    end: int | None = Field(default=None, ge=0)
    score: float | None = None


class ModelVersion(_Record):
    name: str
    version: str
    run_id: str | None = None


class DecisionTimestamps(_Record):
    event: AwareDatetime
    features_as_of: AwareDatetime | None = None
    decided: AwareDatetime


class Degradation(_Record):
    component: str = Field(description="what was missing, stale or failed, e.g. 'features'")
    cause: str
    fallback: str = Field(description="which fallback the policy applied")


Subject = Literal["transaction", "message", "both"]


class RiskDecision(_Record):
    """One decision about a payment, a message, or both."""

    decision_id: str
    subject: Subject
    risk_score: float = Field(ge=0, le=1, description="calibrated probability of risk")
    risk_category: str = Field(description="taxonomy code, e.g. fraud.card_testing")
    action: Action
    reason_codes: tuple[ReasonCode, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    model_versions: tuple[ModelVersion, ...] = ()
    feature_service: str | None = None
    feature_values: dict[str, FeatureValue] = Field(default_factory=dict)
    features_stale: tuple[str, ...] = Field(
        default=(),
        description="batch features whose online row was older than its view's TTL at the "
        "event time: served as unknown (null), as Feast's point-in-time join would",
    )
    prompt_version: str | None = None
    rules_version: str | None = None
    policy_version: str
    timestamps: DecisionTimestamps
    trace_id: str
    input_hash: str
    degraded: tuple[Degradation, ...] = ()
    replay: bool = Field(
        default=False,
        description="true when this answer repeats the stored decision for the same "
        "transaction_id (or message_id): nothing was assessed, counted or written again",
    )

    @property
    def is_degraded(self) -> bool:
        return bool(self.degraded)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace and ISO times: the same value, the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decision_record_text(decision_text: str, request_text: str) -> str:
    """``canonical_json({"decision": decision, "request": request})`` from the canonical JSON of
    each part: the two keys sort as written and canonical JSON has no whitespace, so the text is
    the same to the byte (a property test holds them equal), and neither part is encoded twice."""
    return f'{{"decision":{decision_text},"request":{request_text}}}'


def input_hash(payload: dict[str, Any]) -> str:
    """Hash of the request as received (after validation), to tie a decision to its input."""
    return sha256_hex(canonical_json(payload))


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
