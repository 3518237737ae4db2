"""The decision policy: fraud and conduct results in, one action, category and score out.

Pure functions of their inputs and ``configs/policy.yaml``, so a stored decision can be
recomputed exactly; the policy's version is the hash of that file's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from decisioning.core.decision import Action, Degradation, Evidence, ReasonCode, sha256_hex

ACTIONS: tuple[Action, ...] = ("approve", "review", "decline", "escalate")
DegradationCause = Literal[
    "features_unavailable",
    "features_missing",
    "features_stale",
    "fraud_model_unavailable",
    "fraud_scoring_failed",
    "conduct_model_unavailable",
    "timeout",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConductPolicy(_Strict):
    action_by_severity: dict[str, Action]
    min_model_score: float


class FraudPolicy(_Strict):
    category_by_reason: dict[str, str]
    default_category: str
    approved_category: str


class Policy(_Strict):
    action_order: tuple[Action, ...]
    conduct: ConductPolicy
    fraud: FraudPolicy
    fallbacks: dict[DegradationCause, Action]
    version: str = ""

    @model_validator(mode="after")
    def _every_action_ranked(self) -> Policy:
        if set(self.action_order) != set(ACTIONS):
            raise ValueError(f"action_order must rank exactly {', '.join(ACTIONS)}")
        return self

    @model_validator(mode="after")
    def _every_cause_has_a_fallback(self) -> Policy:
        """Refused at start-up, not on the first decision that needs it (a 500 then)."""
        missing = [cause for cause in get_args(DegradationCause) if cause not in self.fallbacks]
        if missing:
            raise ValueError(f"fallbacks has no action for {', '.join(missing)}")
        return self

    def more_severe(self, first: Action, second: Action) -> Action:
        rank = self.action_order.index
        return first if rank(first) >= rank(second) else second


def load_policy(path: Path) -> Policy:
    text = path.read_text()
    return Policy(**yaml.safe_load(text), version=sha256_hex(text)[:16])


@dataclass(frozen=True)
class FraudInput:
    """What the policy needs of a fraud assessment."""

    score: float
    action: Action
    reason_codes: tuple[ReasonCode, ...]


@dataclass(frozen=True)
class ConductInput:
    """What the policy needs of a conduct assessment."""

    category: str
    severity: str
    score: float
    source: str  # rule, rule+model, model or none
    reason_codes: tuple[ReasonCode, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class PolicyOutcome:
    risk_score: float
    risk_category: str
    action: Action
    reason_codes: tuple[ReasonCode, ...]
    evidence: tuple[Evidence, ...]
    degraded: tuple[Degradation, ...]


def apply_policy(
    policy: Policy,
    fraud: FraudInput | None,
    conduct: ConductInput | None,
    problems: Sequence[tuple[DegradationCause, str]] = (),
) -> PolicyOutcome:
    """Combine the pillars; every problem becomes a recorded degradation and an action floor."""
    action: Action = "approve"
    score, category = 0.0, policy.fraud.approved_category
    reasons: tuple[ReasonCode, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    if fraud is not None:
        action, score = fraud.action, fraud.score
        category = _fraud_category(policy, fraud)
        reasons += fraud.reason_codes
    if conduct is not None:
        conduct_action = _conduct_action(policy, conduct)
        reasons += conduct.reason_codes
        evidence += conduct.evidence
        if fraud is None or policy.more_severe(conduct_action, action) != action:
            category = conduct.category
        if fraud is None or conduct.score > score:
            score = conduct.score
        action = policy.more_severe(action, conduct_action)

    degraded = []
    for cause, detail in problems:
        fallback = policy.fallbacks[cause]
        action = policy.more_severe(action, fallback)
        degraded.append(Degradation(component=cause, cause=detail, fallback=f"action>={fallback}"))
    return PolicyOutcome(
        risk_score=round(min(max(score, 0.0), 1.0), 6),
        risk_category=category,
        action=action,
        reason_codes=reasons,
        evidence=evidence,
        degraded=tuple(degraded),
    )


def _fraud_category(policy: Policy, fraud: FraudInput) -> str:
    if fraud.action == "approve" or not fraud.reason_codes:
        return policy.fraud.approved_category
    first = fraud.reason_codes[0]
    # A rule's reason comes first only when the rule alone sent the payment to review.
    top = first if first.source == "rule" else max(fraud.reason_codes, key=_contribution)
    return policy.fraud.category_by_reason.get(top.code, policy.fraud.default_category)


def _contribution(reason: ReasonCode) -> float:
    return reason.contribution


def _conduct_action(policy: Policy, conduct: ConductInput) -> Action:
    if conduct.severity == "none":
        return "approve"
    if conduct.source == "model" and conduct.score < policy.conduct.min_model_score:
        return "approve"
    return policy.conduct.action_by_severity[conduct.severity]
