"""The conduct scorer's event loop keeps turning while a text waits on the LLM provider."""

from __future__ import annotations

import asyncio
import itertools
import time

from bentos.service import ConductScorer
from decisioning.conduct.assessment import ConductAssessment
from decisioning.core.decision import ModelVersion
from decisioning.core.events import TextEvent
from decisioning.core.policy import ConductInput
from decisioning.core.ports import ConductResult

MODEL = ModelVersion(name="conduct-classifier", version="2")
TEXT = TextEvent.model_validate(
    {"message_id": "m1", "received_at": "2026-06-01T10:00:00Z", "text": "A caller took £250"}
)
PROVIDER_WAIT_S = 1.0


class SlowExtractionPillar:
    """Classifies at once; its fact extraction blocks as a slow provider would."""

    def assess(self, event: TextEvent) -> ConductResult:
        return self.with_facts(event, self.classify(event))

    def classify(self, event: TextEvent) -> ConductAssessment:
        return ConductAssessment(
            category="conduct.scam_report",
            severity="critical",
            risk_score=0.9,
            source="rule:scam",
            category_probability=0.9,
            spans=(),
            rules_version="rules-v1",
        )

    def with_facts(self, event: TextEvent, assessment: ConductAssessment) -> ConductResult:
        time.sleep(PROVIDER_WAIT_S)
        flag = ConductInput(assessment.category, assessment.severity, 0.9, "rule", (), ())
        return ConductResult(flag, MODEL, assessment.rules_version)


def test_a_slow_extraction_does_not_stop_the_scorers_event_loop() -> None:
    scorer = ConductScorer.inner.__new__(ConductScorer.inner)
    scorer.pillar, scorer.problem = SlowExtractionPillar(), ""
    ticks: list[float] = []

    async def ticker(until: asyncio.Task[object]) -> None:
        while not until.done():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.02)

    async def main() -> object:
        answer = asyncio.ensure_future(scorer.assess(TEXT))
        await asyncio.gather(answer, ticker(answer))
        return answer.result()

    answer = asyncio.run(main())

    assert answer.category == "conduct.scam_report"  # type: ignore[attr-defined]
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert len(ticks) >= 10 and max(gaps) < 0.5, (
        f"the loop stalled {max(gaps, default=PROVIDER_WAIT_S):.2f} s while a text waited on "
        f"the provider ({len(ticks)} ticks)"
    )
