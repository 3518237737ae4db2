"""A provider that trickles its answer holds a message's decision no longer than the deadline.

httpx's timeout bounds each read, so a server sending a byte every 0.2 s is never "timed out":
only a wall-clock deadline on the call stops it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from decisioning.adapters.llm.extraction import extract_facts
from decisioning.adapters.llm.gateway import InMemoryLlmCallRecorder, LlmConfig, build_gateway
from decisioning.conduct.errors import LlmProviderError
from decisioning.pillars import ConductAssessorPillar
from tests.support.configs import CONFIGS
from tests.support.local_http import QuietHandler, local_server

from .test_extraction import EVENT, MODEL, TEXT, FixedAssessor, assessed

PROMPTS = CONFIGS / "prompts"
BYTE_EVERY_S = 0.2


class TricklingServer:
    """Headers at once, then one byte of a valid completion every 0.2 s until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.url = ""
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                content = json.dumps({"facts": []})
                body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for at in range(len(body)):
                    if outer.stop.wait(BYTE_EVERY_S):
                        return  # the test is over: close the connection
                    self.wfile.write(body[at : at + 1])
                    self.wfile.flush()

        self.handler = Handler


@pytest.fixture
def trickling() -> Iterator[TricklingServer]:
    server = TricklingServer()
    with local_server(server.handler) as server.url:
        yield server
        server.stop.set()


def on_path_config(server: TricklingServer) -> LlmConfig:
    """As ``decisioning.wiring.extraction_gateway`` sizes it: one attempt, 1 s."""
    return LlmConfig(
        provider="openai_compatible",
        base_url=server.url,
        model="m",
        max_retries=0,
        timeout_seconds=1.0,
        call_budget_seconds=1.0,
    )


def test_a_trickling_provider_fails_the_extraction_at_the_deadline(
    trickling: TricklingServer,
) -> None:
    recorder = InMemoryLlmCallRecorder()
    gateway = build_gateway(on_path_config(trickling), PROMPTS, recorder, deadline_seconds=1.0)

    started = time.perf_counter()
    with pytest.raises(LlmProviderError, match="deadline"):
        extract_facts(gateway, TEXT)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.5, f"held the message {elapsed:.1f} s past a 1 s deadline"
    assert recorder.calls[-1].outcome == "error" and "deadline" in recorder.calls[-1].error


def test_a_trickling_provider_leaves_the_conduct_result_as_without_a_gateway_in_time(
    trickling: TricklingServer,
) -> None:
    gateway = build_gateway(
        on_path_config(trickling), PROMPTS, InMemoryLlmCallRecorder(), deadline_seconds=1.0
    )
    assessor = FixedAssessor("conduct.scam_report")
    pillar = ConductAssessorPillar(assessor, MODEL, lambda _: assessor, gateway)  # type: ignore[arg-type]

    started = time.perf_counter()
    result = pillar.assess(EVENT)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.5, f"the decision waited {elapsed:.1f} s on a 1 s extraction deadline"
    assert result == assessed(None), "a late provider changes nothing"


class HangingThenBroken:
    """Hangs (as a provider outage does), then fails with what no provider promises to raise."""

    name = "offline"
    model = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()

    def complete(self, prompt: object) -> object:
        self.release.wait(30)
        raise RuntimeError("connection pool is closed")


def test_a_hanging_then_broken_provider_neither_delays_nor_changes_a_conduct_result() -> None:
    from decisioning.adapters.llm.gateway import LlmGateway

    provider = HangingThenBroken()
    gateway = LlmGateway(provider, PROMPTS, InMemoryLlmCallRecorder(), deadline_seconds=0.5)  # type: ignore[arg-type]
    assessor = FixedAssessor("conduct.scam_report")
    pillar = ConductAssessorPillar(assessor, MODEL, lambda _: assessor, gateway)  # type: ignore[arg-type]

    started = time.perf_counter()
    result = pillar.assess(EVENT)
    elapsed = time.perf_counter() - started
    provider.release.set()

    assert elapsed < 2.0, f"the message waited {elapsed:.1f} s on a provider hanging for 30 s"
    assert result == assessed(None), "the same message is assessed the same with it down"
