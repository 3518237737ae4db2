"""The OpenAI-compatible provider against a local server speaking the chat-completions shape.

The server answers from a script: a status (with an optional ``Retry-After``), a stall longer
than the client's timeout, a malformed body, or a completion. Waits between attempts go to a
recording ``sleep`` instead of the clock, so the tests read the backoff the provider chose.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from decisioning.adapters.llm.breaker import CircuitBreaker
from decisioning.adapters.llm.gateway import (
    InMemoryLlmCallRecorder,
    LlmConfig,
    LlmGateway,
    OpenAICompatibleProvider,
    RenderedPrompt,
)
from decisioning.conduct.errors import LlmCircuitOpen, LlmProviderError
from tests.support.configs import CONFIGS

PROMPT = RenderedPrompt("p", 1, "explanation", "Say hi.", {}, 0.0, 20)
Step = tuple[str, object]  # ("ok", text) | ("status", code) | ("429", retry_after) | ...


class ChatServer:
    def __init__(self, script: list[Step]) -> None:
        self.script, self.requests = script, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                kind, value = outer.script[min(outer.requests, len(outer.script)) - 1]
                if kind == "stall":
                    time.sleep(float(value))  # type: ignore[arg-type]
                    return self._send(200, b"{}")
                if kind == "429":
                    return self._send(429, b"{}", {"Retry-After": str(value)})
                if kind == "status":
                    return self._send(int(value), b"{}")  # type: ignore[call-overload]
                if kind == "malformed":
                    return self._send(200, str(value).encode())
                body = {"choices": [{"message": {"role": "assistant", "content": value}}]}
                return self._send(200, json.dumps(body).encode())

            def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for key, value in (extra or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except BrokenPipeError:  # the client timed out and left: what a stall tests
                    pass

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(request.param)
    thread = threading.Thread(target=chat.httpd.serve_forever, daemon=True)
    thread.start()
    yield chat
    chat.httpd.shutdown()
    chat.httpd.server_close()


def provider(server: ChatServer, waits: list[float], **config: object) -> OpenAICompatibleProvider:
    settings = {"timeout_seconds": 2.0, "max_retries": 3, "backoff_seconds": 0.2, **config}
    return OpenAICompatibleProvider(
        LlmConfig(provider="openai_compatible", base_url=server.url, model="m", **settings),  # type: ignore[arg-type]
        sleep=waits.append,
    )


@pytest.mark.parametrize("server", [[("429", 3), ("429", 1), ("ok", "Hi.")]], indirect=True)
def test_a_429_waits_at_least_what_retry_after_asks(server: ChatServer) -> None:
    waits: list[float] = []

    completion = provider(server, waits).complete(PROMPT)

    assert completion.text == "Hi." and completion.retries == 2
    assert server.requests == 3
    assert waits[0] >= 3 and waits[1] >= 1, f"Retry-After must be honoured: {waits}"


@pytest.mark.parametrize("server", [[("status", 503)]], indirect=True)
def test_backoff_is_jittered_and_bounded_by_the_exponential(server: ChatServer) -> None:
    waits: list[float] = []

    with pytest.raises(LlmProviderError, match="after 4 attempts: HTTP 503"):
        provider(server, waits, max_retries=3, backoff_seconds=0.2).complete(PROMPT)

    assert len(waits) == 3 and server.requests == 4
    ceilings = [0.2 * 2 ** (attempt - 1) for attempt in range(1, 4)]  # after attempts 1, 2, 3
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True)), (waits, ceilings)

    runs = set()
    for _ in range(3):
        again: list[float] = []
        with pytest.raises(LlmProviderError):
            provider(server, again, max_retries=3, backoff_seconds=0.2).complete(PROMPT)
        runs.add(tuple(again))
    assert len(runs) > 1, "full jitter: the same failures do not always wait the same"


@pytest.mark.parametrize("server", [[("429", 120), ("ok", "never")]], indirect=True)
def test_a_retry_after_beyond_the_call_budget_ends_the_call_at_once(server: ChatServer) -> None:
    waits: list[float] = []

    with pytest.raises(LlmProviderError, match="HTTP 429"):
        provider(server, waits, call_budget_seconds=10).complete(PROMPT)

    assert server.requests == 1 and waits == [], "no second attempt before the provider allows"


@pytest.mark.parametrize("server", [[("stall", 1.0), ("ok", "Late but fine.")]], indirect=True)
def test_a_stalled_attempt_times_out_and_the_next_one_answers(server: ChatServer) -> None:
    waits: list[float] = []

    completion = provider(server, waits, timeout_seconds=0.2).complete(PROMPT)

    assert completion.text == "Late but fine." and completion.retries == 1


@pytest.mark.parametrize(
    "server",
    [[("malformed", "<html>bad gateway</html>"), ("malformed", '{"choices": []}'), ("ok", "Hi.")]],
    indirect=True,
)
def test_malformed_bodies_are_retried(server: ChatServer) -> None:
    completion = provider(server, []).complete(PROMPT)

    assert completion.text == "Hi." and completion.retries == 2


NO_CONTENT = '{"choices": [{"message": {}}]}'


@pytest.mark.parametrize("server", [[("malformed", NO_CONTENT)]], indirect=True)
def test_only_malformed_bodies_fail_the_call_naming_the_missing_field(server: ChatServer) -> None:
    with pytest.raises(LlmProviderError, match=r"choices\[0\].message.content"):
        provider(server, [], max_retries=1).complete(PROMPT)
    assert server.requests == 2


@pytest.mark.parametrize("server", [[("status", 400)]], indirect=True)
def test_a_refusal_is_not_retried(server: ChatServer) -> None:
    with pytest.raises(LlmProviderError, match="refused the call: HTTP 400"):
        provider(server, []).complete(PROMPT)
    assert server.requests == 1


@pytest.mark.parametrize("server", [[("stall", 1.0)]], indirect=True)
def test_the_breaker_opens_on_an_outage_and_later_calls_never_reach_the_server(
    server: ChatServer,
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_after_seconds=30, clock=lambda: now[0])
    recorder = InMemoryLlmCallRecorder()
    gateway = LlmGateway(
        provider(server, [], timeout_seconds=0.1, max_retries=0),
        CONFIGS / "prompts",
        recorder,
        breaker,
    )
    explain = (
        "conduct.scam_report", "Scam", "critical", "PSRs 2017 reg. 76", "a caller asked for a code"
    )  # fmt: skip

    for _ in range(2):
        with pytest.raises(LlmProviderError, match="timed out"):
            gateway.explain(*explain)
    assert breaker.state == "open" and server.requests == 2
    with pytest.raises(LlmCircuitOpen):
        gateway.explain(*explain)
    assert server.requests == 2, "an open breaker sends nothing"
    assert recorder.calls[-1].outcome == "error" and "circuit open" in recorder.calls[-1].error

    now[0] = 31.0  # half-open: one trial goes through, fails, and opens it again
    with pytest.raises(LlmProviderError, match="timed out"):
        gateway.explain(*explain)
    assert server.requests == 3 and breaker.state == "open"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from decisioning.adapters.llm.gateway import _retry_after

    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0, "a date in the past: no wait"
