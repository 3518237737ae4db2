from pathlib import Path

import pytest

from decisioning.core.decision import Evidence, ReasonCode
from decisioning.core.policy import ConductInput, FraudInput, Policy, apply_policy, load_policy

CONFIG = Path(__file__).resolve().parents[4] / "configs" / "policy.yaml"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(CONFIG)


def fraud(score: float, action: str, code: str = "velocity.burst_10m") -> FraudInput:
    reason = ReasonCode(code=code, description="9 payments", contribution=2.0, source="model")
    return FraudInput(score=score, action=action, reason_codes=(reason,))  # type: ignore[arg-type]


def conduct(severity: str, score: float, source: str = "rule") -> ConductInput:
    span = Evidence(kind="span", reference="m1", quote="I can't cope", start=0, end=12)
    return ConductInput(
        category="conduct.vulnerable_customer" if severity != "none" else "none",
        severity=severity,
        score=score,
        source=source,
        reason_codes=(),
        evidence=(span,),
    )


def test_a_clean_payment_is_approved(policy: Policy) -> None:
    outcome = apply_policy(policy, fraud(0.01, "approve"), None)

    assert (outcome.action, outcome.risk_category) == ("approve", "fraud.none")
    assert not outcome.degraded


def test_the_top_reason_names_the_fraud_category(policy: Policy) -> None:
    outcome = apply_policy(policy, fraud(0.97, "decline", "location.away_from_home"), None)

    assert (outcome.action, outcome.risk_category) == ("decline", "fraud.account_takeover")


def test_a_rule_that_sent_the_payment_to_review_names_the_category(policy: Policy) -> None:
    # given a payment reviewed by the terminal watch, whose largest contribution is the amount
    rule = ReasonCode(code="terminal.watch", description="on watch", contribution=0, source="rule")
    amount = ReasonCode(code="amount.unusual", description="2x", contribution=0.4, source="model")
    payment = FraudInput(score=0.02, action="review", reason_codes=(rule, amount))

    # when / then the rule, not the contribution, names what the reviewer is looking at
    outcome = apply_policy(policy, payment, None)
    assert (outcome.action, outcome.risk_category) == ("review", "fraud.compromised_terminal")


def test_a_rule_reason_after_the_model_s_leaves_the_category_to_the_model(
    policy: Policy,
) -> None:
    # given a burst the score declines anyway, at a terminal on watch (the rule's reason last)
    burst = ReasonCode(code="velocity.burst_10m", description="9", contribution=2.0, source="model")
    rule = ReasonCode(code="terminal.watch", description="on watch", contribution=0, source="rule")
    payment = FraudInput(score=0.97, action="decline", reason_codes=(burst, rule))

    # when / then it stays card testing
    outcome = apply_policy(policy, payment, None)
    assert (outcome.action, outcome.risk_category) == ("decline", "fraud.card_testing")


def test_a_high_severity_message_escalates_even_with_a_clean_payment(policy: Policy) -> None:
    outcome = apply_policy(policy, fraud(0.02, "approve"), conduct("high", 0.9))

    assert outcome.action == "escalate"
    assert outcome.risk_category == "conduct.vulnerable_customer"
    assert outcome.risk_score == 0.9 and outcome.evidence


def test_a_weak_model_only_flag_is_recorded_not_acted_on(policy: Policy) -> None:
    outcome = apply_policy(policy, None, conduct("high", 0.3, source="model"))

    assert outcome.action == "approve"


def test_a_missing_input_is_never_a_silent_approval(policy: Policy) -> None:
    outcome = apply_policy(
        policy, None, None, [("fraud_model_unavailable", "no champion registered")]
    )

    assert outcome.action == "review"
    assert outcome.degraded[0].component == "fraud_model_unavailable"
    assert "no champion" in outcome.degraded[0].cause


def test_a_fallback_never_softens_a_decline(policy: Policy) -> None:
    outcome = apply_policy(policy, fraud(0.99, "decline"), None, [("features_stale", "30 min")])

    assert outcome.action == "decline" and outcome.degraded


def test_the_version_follows_the_content(tmp_path: Path, policy: Policy) -> None:
    changed = tmp_path / "policy.yaml"
    changed.write_text(CONFIG.read_text().replace("min_model_score: 0.5", "min_model_score: 0.6"))

    assert load_policy(changed).version != policy.version
    assert load_policy(CONFIG).version == policy.version
