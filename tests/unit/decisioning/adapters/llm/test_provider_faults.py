"""No provider fault of any type escapes the gateway, the breaker, extraction or the explainer.

A provider fails in more ways than ``LlmProviderError``: a body that cannot be decoded, a
``Retry-After`` date with no zone, output nested deeper than the JSON parser recurses. Each must
end as a recorded error, a counted breaker failure and, on the decision path, no change at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.breaker import CircuitBreaker
from decisioning.adapters.llm.explanation import UNAVAILABLE, Explainer, stored_explanation
from decisioning.adapters.llm.extraction import validated_facts
from decisioning.adapters.llm.gateway import (
    InMemoryLlmCallRecorder,
    LlmCallRecord,
    LlmConfig,
    LlmGateway,
    OfflineProvider,
    OpenAICompatibleProvider,
    RenderedPrompt,
    _retry_after,
)
from decisioning.conduct.errors import LlmProviderError
from decisioning.conduct.prompts import PromptTemplate, load_prompt
from decisioning.pillars import ConductAssessorPillar
from tests.support.configs import CONFIGS
from tests.support.events import PAYMENT
from tests.support.local_http import QuietHandler, local_server

from .test_explanation import decide
from .test_extraction import EVENT, MODEL, FixedAssessor, ScriptedProvider, assessed

PROMPTS = CONFIGS / "prompts"
VALUES = {"action": "review", "risk_category": "x", "reasons": "- a", "evidence": "- b"}


class HostileServer:
    """Answers every call with ``mode``: a 429 whose date has no zone, or a body not gzip."""

    def __init__(self) -> None:
        self.mode, self.requests, self.url = "bad_gzip", 0, ""
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.mode == "retry_after_minus0000":
                    status, body = 429, b"{}"
                    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 -0000"}
                else:
                    status, body = 200, b"this is not gzip at all"
                    headers = {"Content-Encoding": "gzip"}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    with local_server(server.handler) as server.url:
        yield server


def http_gateway(server: HostileServer, recorder: InMemoryLlmCallRecorder) -> LlmGateway:
    config = LlmConfig(provider="openai_compatible", base_url=server.url, model="m", max_retries=0)
    breaker = CircuitBreaker(failure_threshold=2, reset_after_seconds=30)
    return LlmGateway(OpenAICompatibleProvider(config), PROMPTS, recorder, breaker)


@pytest.mark.parametrize("mode", ["bad_gzip", "retry_after_minus0000"])
def test_an_undecodable_body_or_a_zoneless_date_is_a_recorded_counted_provider_error(
    hostile: HostileServer, mode: str
) -> None:
    # given a provider that answers with a fault httpx or the date parser raises on
    hostile.mode = mode
    recorder = InMemoryLlmCallRecorder()
    gw = http_gateway(hostile, recorder)
    prompt = load_prompt(PROMPTS, "decision_explanation")

    # when it is called twice
    for _ in range(2):
        with pytest.raises(LlmProviderError):
            gw.call(prompt, VALUES)

    # then each call is recorded as an error and the breaker counted both
    assert [c.outcome for c in recorder.calls] == ["error", "error"], "never 'ok' for a failure"
    assert all(c.error for c in recorder.calls), "the record says what failed"
    assert gw.breaker is not None and gw.breaker.state == "open"


class ExplodingProvider:
    """Raises what no provider promises not to raise, until healed."""

    name = "offline"
    model = "exploding"

    def __init__(self) -> None:
        self.healed = False

    def complete(self, prompt: RenderedPrompt) -> object:
        if not self.healed:
            raise TypeError("can't subtract offset-naive and offset-aware datetimes")
        return OfflineProvider().complete(prompt)


def test_a_half_open_trial_that_dies_of_any_exception_never_wedges_the_breaker() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_after_seconds=10, clock=lambda: now[0])
    provider = ExplodingProvider()
    recorder = InMemoryLlmCallRecorder()
    gw = LlmGateway(provider, PROMPTS, recorder, breaker)  # type: ignore[arg-type]
    prompt = load_prompt(PROMPTS, "decision_explanation")
    with pytest.raises(LlmProviderError, match="TypeError"):
        gw.call(prompt, VALUES)
    assert breaker.state == "open", "a TypeError is a provider failure like any other"

    now[0] = 11.0  # half-open: the trial dies of the same TypeError
    with pytest.raises(LlmProviderError, match="TypeError"):
        gw.call(prompt, VALUES)
    now[0] = 22.0  # half-open again, and the provider is healthy
    provider.healed = True

    answer = gw.call(prompt, VALUES)

    assert answer.call.outcome == "ok" and breaker.state == "closed", "the breaker recovers"
    assert [c.outcome for c in recorder.calls] == ["error", "error", "ok"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),
        ("nan", None),
        ("Thu, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_is_total(value: str, expected: float | None) -> None:
    assert _retry_after(value) == expected


@pytest.mark.parametrize("value", ["1e400", "inf", "Wed, 21 Oct 2099 07:28:00 -0000"])
def test_an_endless_retry_after_is_finite_and_beyond_any_budget(value: str) -> None:
    seconds = _retry_after(value)
    assert seconds is not None and math.isfinite(seconds) and seconds > 3600, seconds


def test_output_nested_deeper_than_the_parser_recurses_is_a_provider_error() -> None:
    with pytest.raises(LlmProviderError, match="not the JSON asked for"):
        validated_facts("text", "[" * 50_000)


class UnreadablePrompts(LlmGateway):
    def prompt(self, name: str, version: int | None = None) -> PromptTemplate:
        raise OSError("configs/prompts is not readable")


def test_extraction_that_fails_of_anything_leaves_the_conduct_result_as_without_it() -> None:
    # output nested too deep to parse: a RecursionError inside extraction
    assert assessed(ScriptedProvider("[" * 50_000)) == assessed(None)

    # a prompt that cannot be read: an OSError before the provider is even called
    assessor = FixedAssessor("conduct.scam_report")
    unreadable = UnreadablePrompts(OfflineProvider(), PROMPTS, InMemoryLlmCallRecorder())
    pillar = ConductAssessorPillar(assessor, MODEL, lambda _: assessor, unreadable)  # type: ignore[arg-type]
    assert pillar.assess(EVENT) == assessed(None), "extraction is evidence only"


class BrokenRecorder(InMemoryLlmCallRecorder):
    def record(self, call: LlmCallRecord) -> None:
        raise RuntimeError("llm_calls table is locked")


def test_an_explanation_that_fails_of_anything_is_stored_as_unavailable(tmp_path: Path) -> None:
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        decision = decide(audit, {"transaction": PAYMENT})
        explainer = Explainer(LlmGateway(OfflineProvider(), PROMPTS, BrokenRecorder()), audit)

        explanation = explainer.explain(decision)

        assert explanation is not None and explanation.status == "unavailable"
        assert explanation.output == UNAVAILABLE and "RuntimeError" in explanation.error
        assert stored_explanation(audit, decision.decision_id) == explanation, "still stored"
    finally:
        audit.close()
