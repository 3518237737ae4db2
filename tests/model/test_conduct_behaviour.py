"""Behavioural tests of the conduct model: invariance, direction, minimum function."""

from __future__ import annotations

import pytest

from decisioning.conduct.assessment import ConductAssessor

from .conftest import probability

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("original", "variant"),
    [
        (
            "Mr Jones here: I can't afford my £300 loan repayment this month.",
            "Ms Okafor here: I can't afford my £1,250 loan repayment this month.",
        ),
        (
            "My account ends in 1234 and the £5 monthly fee is poor value.",
            "My account ends in 9876 and the £15 monthly fee is poor value.",
        ),
    ],
)
def test_names_and_amounts_do_not_change_the_outcome(
    assessor: ConductAssessor, original: str, variant: str
) -> None:
    before, after = assessor.assess(original), assessor.assess(variant)
    assert before.category == after.category, f"{before.category} vs {after.category}"
    assert abs(before.risk_score - after.risk_score) < 0.15


def test_adding_a_vulnerability_raises_the_vulnerable_score(assessor: ConductAssessor) -> None:
    base = "I need to talk about the fees on my account."
    worse = base + " Since my diagnosis I find everything overwhelming."
    assert probability(assessor, worse, "conduct.vulnerable_customer") > probability(
        assessor, base, "conduct.vulnerable_customer"
    ), "a vulnerability sentence must raise the vulnerable-customer probability"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can you send me a new card? Mine is worn out.", "none"),
        ("My husband died last month and I don't know how to manage our account.",
         "conduct.vulnerable_customer"),
        ("Why am I paying a higher fee than new customers for the same account?",
         "conduct.price_and_value"),
        ("I can't pay my credit card this month and the interest keeps growing.",
         "conduct.financial_difficulty"),
    ],
)  # fmt: skip
def test_clear_examples_get_their_category(
    assessor: ConductAssessor, text: str, expected: str
) -> None:
    assert assessor.assess(text).category == expected


def test_model_only_flag_quotes_an_exact_sentence(assessor: ConductAssessor) -> None:
    text = "Hello. Your rates for existing customers are a rip-off compared to new ones."
    result = assessor.assess(text)
    assert result.flagged and result.spans
    assert all(text[s.span.start : s.span.end] == s.span.text for s in result.spans)
