"""The conduct pillar's input to the policy: evidence scores a JSON answer and record can hold."""

import json
import math

import pytest

from decisioning.conduct.assessment import ConductAssessment, SpanEvidence
from decisioning.conduct.evidence import EvidenceDocument, EvidenceHit
from decisioning.conduct.rules import EvidenceSpan
from decisioning.core.decision import canonical_json
from decisioning.pillars import conduct_input


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_a_score_that_is_not_a_number_json_holds_is_unknown(score: float) -> None:
    # a broken similarity or ranking model: the decision still stands, its text still parses
    span = SpanEvidence("rule", "r1", EvidenceSpan(0, 4, "help"), score)
    clause = EvidenceDocument("doc-1", "policy", "Care", "a clause", "P-1", ())
    document = EvidenceHit(clause, score, "a clause")
    assessment = ConductAssessment(
        "conduct.vulnerable_customer", "high", 0.9, "rule:r1", 0.9, (span,), (document,)
    )

    evidence = conduct_input(assessment, "m1").evidence

    assert [item.score for item in evidence] == [None, None]
    text = canonical_json([item.model_dump(mode="json") for item in evidence])
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name))


def test_finite_scores_are_kept() -> None:
    span = SpanEvidence("model", "s1", EvidenceSpan(0, 4, "help"), 0.25)
    assessment = ConductAssessment("conduct.none", "none", 0.1, "model", 0.9, (span,))

    assert [item.score for item in conduct_input(assessment, "m1").evidence] == [0.25]
