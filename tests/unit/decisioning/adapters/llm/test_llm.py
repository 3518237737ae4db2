"""The LLM gateway: prompts, redaction before the provider, logging, retries and timeouts.

The HTTP tests run a real local server that answers slowly or with errors.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from decisioning.adapters.llm.gateway import (
    InMemoryLlmCallRecorder,
    LlmConfig,
    LlmGateway,
    OfflineProvider,
    OpenAICompatibleProvider,
    SqliteLlmCallRecorder,
)
from decisioning.conduct.errors import LlmProviderError, PromptNotFoundError
from decisioning.conduct.prompts import load_prompt
from tests.support.configs import CONFIGS

PROMPTS = CONFIGS / "prompts"


class ScriptedServer:
    """Answers chat-completion POSTs from a script of (kind, value): status, sleep or ok."""

    def __init__(self, script: list[tuple[str, object]]) -> None:
        self.script = script
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                kind, value = outer.script[min(len(outer.bodies), len(outer.script)) - 1]
                if kind == "sleep":
                    time.sleep(float(value))  # type: ignore[arg-type]
                    kind, value = "ok", "late"
                if kind == "status":
                    self.send_response(int(value))  # type: ignore[call-overload]
                    self.end_headers()
                    return
                payload = json.dumps({"choices": [{"message": {"content": value}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(request.param)
    thread = threading.Thread(target=scripted.httpd.serve_forever, daemon=True)
    thread.start()
    yield scripted
    scripted.httpd.shutdown()
    scripted.httpd.server_close()


def _http_gateway(server: ScriptedServer, recorder: InMemoryLlmCallRecorder, **kw) -> LlmGateway:
    config = LlmConfig(
        provider="openai_compatible", base_url=server.url, model="test-model",
        timeout_seconds=kw.get("timeout", 2.0), max_retries=kw.get("retries", 2),
        backoff_seconds=0.0,
    )  # fmt: skip
    return LlmGateway(OpenAICompatibleProvider(config), PROMPTS, recorder)


def test_offline_extraction_is_deterministic_and_logged() -> None:
    recorder = InMemoryLlmCallRecorder()
    gateway = LlmGateway(OfflineProvider(), PROMPTS, recorder)
    text = "I paid £250 on my credit card last Tuesday; email me at a.b@example.com"
    first, second = gateway.extract(text), gateway.extract(text)
    assert first == second
    assert first.amounts == ("£250",) and first.dates == ("last Tuesday",)
    assert first.products == ("credit card",)
    call = recorder.calls[0]
    assert (call.prompt_name, call.prompt_version, call.outcome) == ("conduct_extraction", 1, "ok")
    assert "a.b@example.com" not in call.redacted_input and "[EMAIL]" in call.redacted_input
    assert call.input_hash.startswith("sha256:")


def test_prompt_versions_pin_and_default_to_latest() -> None:
    assert load_prompt(PROMPTS, "conduct_explanation").version == 1
    with pytest.raises(PromptNotFoundError):
        load_prompt(PROMPTS, "conduct_explanation", version=99)


@pytest.mark.parametrize(
    "server", [[("status", 503), ("status", 500), ("ok", "Fine.")]], indirect=True
)
def test_retries_server_errors_then_succeeds(server: ScriptedServer) -> None:
    recorder = InMemoryLlmCallRecorder()
    sentence = _http_gateway(server, recorder).explain(
        "conduct.scam_report", "Scam", "critical", "PSRs 2017 reg. 76", "card 4539 1488 0343 6467"
    )
    assert sentence == "Fine."
    assert len(server.bodies) == 3
    assert recorder.calls[-1].retries == 2 and recorder.calls[-1].outcome == "ok"
    sent = server.bodies[0]["messages"][0]["content"]
    assert "4539" not in sent, "the provider must never see a card number"


@pytest.mark.parametrize("server", [[("sleep", 1.0)]], indirect=True)
def test_timeout_fails_after_retries_and_is_logged(server: ScriptedServer) -> None:
    recorder = InMemoryLlmCallRecorder()
    gateway = _http_gateway(server, recorder, timeout=0.2, retries=1)
    with pytest.raises(LlmProviderError, match="timed out"):
        gateway.extract("hello")
    assert len(server.bodies) == 2
    call = recorder.calls[-1]
    assert call.outcome == "error" and call.retries == 1 and "timed out" in call.error


@pytest.mark.parametrize("server", [[("status", 400)]], indirect=True)
def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    with pytest.raises(LlmProviderError, match="HTTP 400"):
        _http_gateway(server, InMemoryLlmCallRecorder()).extract("hello")
    assert len(server.bodies) == 1


@pytest.mark.parametrize("server", [[("ok", "not json")]], indirect=True)
def test_unusable_extraction_output_is_an_error(server: ScriptedServer) -> None:
    with pytest.raises(LlmProviderError, match="not the JSON"):
        _http_gateway(server, InMemoryLlmCallRecorder()).extract("hello")


def test_sqlite_recorder_appends_calls(tmp_path: Path) -> None:
    recorder = SqliteLlmCallRecorder(tmp_path / "llm.db")
    gateway = LlmGateway(OfflineProvider(), PROMPTS, recorder)
    gateway.extract("one")
    gateway.extract("two")
    import sqlite3

    with sqlite3.connect(tmp_path / "llm.db") as db:
        assert db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == 2


def test_config_from_env_defaults_to_offline() -> None:
    assert LlmConfig.from_env({}).provider == "offline"
    config = LlmConfig.from_env({"RISK_LLM_PROVIDER": "openai_compatible", "RISK_LLM_RETRIES": "4"})
    assert (config.provider, config.max_retries) == ("openai_compatible", 4)


def test_calls_recorded_in_the_audit_store_join_the_hash_chain(tmp_path: Path) -> None:
    from decisioning.adapters.audit import AuditStore
    from decisioning.adapters.llm.gateway import AuditLlmCallRecorder

    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    gateway = LlmGateway(OfflineProvider(), PROMPTS, AuditLlmCallRecorder(store))

    gateway.extract("call me on 07700 900123 about my loan")

    calls = list(store.records(kind="llm_call"))
    assert len(calls) == 1 and calls[0].body["outcome"] == "ok"
    assert "07700 900123" not in calls[0].body["redacted_input"]
    assert store.verify().ok
    store.close()
