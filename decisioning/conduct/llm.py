"""The one LLM gateway: versioned prompts, redaction, retries, timeouts and a log of every call.

LLMs extract and explain; they never decide. Callers get structured facts or a sentence of
explanation back, and the category, score and action are always set elsewhere. The ``offline``
provider (the default) answers deterministically without any model, so the platform runs and is
reproducible with no network; ``openai_compatible`` speaks the chat-completions HTTP API.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import httpx
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from decisioning.audit import AuditStore
from decisioning.conduct.errors import LlmProviderError
from decisioning.conduct.prompts import PromptTemplate, load_prompt
from decisioning.conduct.redaction import redact
from decisioning.events import utc_now
from decisioning.metrics import record_llm_call

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

EXTRACTION_PROMPT = "conduct_extraction"
EXPLANATION_PROMPT = "conduct_explanation"
_AMOUNT = re.compile(
    r"(?:[£$€]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{1,2})?\s?(?:pounds|GBP|EUR|USD))"
)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)? (?:{_MONTHS})|(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?"
    rf"|(?:last|this|next) (?:{_WEEKDAYS}|week|month|year)"
    rf"|yesterday|today|\d+ (?:days|weeks|months) ago)\b",
    re.IGNORECASE,
)
_PRODUCTS = (
    "credit card", "debit card", "current account", "savings account", "isa", "mortgage",
    "overdraft", "personal loan", "loan", "car finance", "insurance", "payment protection",
    "pension", "investment", "buy now pay later", "standing order", "direct debit",
)  # fmt: skip
_PRODUCT = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in _PRODUCTS) + r")s?\b", re.IGNORECASE
)


class LlmConfig(BaseModel):
    """Which provider to call and how patiently; read from settings or ``RISK_LLM_*``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["offline", "openai_compatible"] = "offline"
    base_url: str = ""
    model: str = "offline-template"
    api_key: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LlmConfig:
        """From ``RISK_LLM_{PROVIDER,BASE_URL,MODEL,API_KEY,TIMEOUT,RETRIES}`` where set."""
        values: dict[str, object] = {}
        for key, name in (
            ("provider", "PROVIDER"), ("base_url", "BASE_URL"), ("model", "MODEL"),
            ("api_key", "API_KEY"), ("timeout_seconds", "TIMEOUT"), ("max_retries", "RETRIES"),
        ):  # fmt: skip
            if env.get(f"RISK_LLM_{name}"):
                values[key] = env[f"RISK_LLM_{name}"]
        return cls.model_validate(values)


@dataclass(frozen=True)
class RenderedPrompt:
    name: str
    version: int
    task: str
    text: str
    variables: dict[str, str]
    temperature: float
    max_tokens: int


@dataclass(frozen=True)
class Completion:
    text: str
    retries: int = 0


class LlmProvider(Protocol):
    name: str  # as in LlmConfig.provider; names the gateway's span ``llm.<name>``
    model: str

    def complete(self, prompt: RenderedPrompt) -> Completion: ...


@dataclass(frozen=True)
class LlmCallRecord:
    """One gateway call as the audit store keeps it; inputs are stored redacted only.

    ``prompt_version`` is the file version and the MLflow prompt-registry version at once (the
    registration refuses to let them diverge); ``prompt_uri`` names it in the registry.
    """

    call_id: str
    at: str
    prompt_name: str
    prompt_version: int
    prompt_uri: str
    provider: str
    model: str
    parameters: dict[str, float | int]
    input_hash: str
    redacted_input: str
    output: str
    latency_ms: float
    retries: int
    outcome: Literal["ok", "error"]
    error: str = ""


class LlmCallRecorder(Protocol):
    """Where call records go: in memory in tests, SQLite locally, the audit store later."""

    def record(self, call: LlmCallRecord) -> None: ...


@dataclass
class InMemoryLlmCallRecorder:
    calls: list[LlmCallRecord] = field(default_factory=list)

    def record(self, call: LlmCallRecord) -> None:
        self.calls.append(call)


class SqliteLlmCallRecorder:
    """A local append-only table of calls, until the audit store takes them over."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def record(self, call: LlmCallRecord) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self._path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS llm_calls (call_id TEXT PRIMARY KEY, at TEXT, "
                "prompt_name TEXT, prompt_version INTEGER, outcome TEXT, record TEXT)"
            )
            db.execute(
                "INSERT INTO llm_calls VALUES (?, ?, ?, ?, ?, ?)",
                (call.call_id, call.at, call.prompt_name, call.prompt_version, call.outcome,
                 json.dumps(asdict(call), sort_keys=True)),
            )  # fmt: skip


class AuditLlmCallRecorder:
    """Every call as a record of kind ``llm_call`` in the hash-chained audit store."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def record(self, call: LlmCallRecord) -> None:
        self._store.append("llm_call", call.call_id, asdict(call))


class OfflineProvider:
    """Deterministic stand-in: regex extraction and a fixed explanation template."""

    name = "offline"
    model = "offline-template"

    def complete(self, prompt: RenderedPrompt) -> Completion:
        values = prompt.variables
        if prompt.task == "extraction":
            text = values["text"]
            facts = {
                "amounts": _unique(m.group(0) for m in _AMOUNT.finditer(text)),
                "dates": _unique(m.group(0) for m in _DATE.finditer(text)),
                "products": _unique(m.group(0).lower() for m in _PRODUCT.finditer(text)),
            }
            return Completion(json.dumps(facts))
        sentence = (
            f"The customer raised {values['category_name'].lower()} "
            f"({values['severity']} severity), shown by {values['evidence']}; "
            f"see {values['policy_ref']}."
        )
        return Completion(sentence)


def _unique(items: object) -> list[str]:
    return list(dict.fromkeys(items))  # type: ignore[call-overload]


_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleProvider:
    """``POST {base_url}/chat/completions`` with a timeout and exponential-backoff retries."""

    name = "openai_compatible"

    def __init__(self, config: LlmConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        if not config.base_url:
            raise LlmProviderError("openai_compatible provider needs RISK_LLM_BASE_URL")
        self.model = config.model
        self._config = config
        self._sleep = sleep

    def complete(self, prompt: RenderedPrompt) -> Completion:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "temperature": prompt.temperature,
            "max_tokens": prompt.max_tokens,
        }
        headers = {}
        if self._config.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {self._config.api_key.get_secret_value()}"
        url = self._config.base_url.rstrip("/") + "/chat/completions"
        last_error = ""
        for attempt in range(self._config.max_retries + 1):
            if attempt:
                self._sleep(self._config.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = httpx.post(
                    url, json=body, headers=headers, timeout=self._config.timeout_seconds
                )
            except httpx.TimeoutException:
                last_error = f"timed out after {self._config.timeout_seconds}s"
                continue
            except httpx.TransportError as exc:
                last_error = f"transport error: {exc}"
                continue
            if response.status_code in _RETRYABLE_STATUS:
                last_error = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise LlmProviderError(
                    f"LLM provider refused the call: HTTP {response.status_code}"
                )
            return Completion(_message_content(response), retries=attempt)
        raise LlmProviderError(
            f"LLM provider failed after {self._config.max_retries + 1} attempts: {last_error}",
            retries=self._config.max_retries,
        )


def _message_content(response: httpx.Response) -> str:
    try:
        return str(response.json()["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmProviderError("LLM provider answered without choices[0].message.content") from exc


def build_provider(config: LlmConfig) -> LlmProvider:
    if config.provider == "openai_compatible":
        return OpenAICompatibleProvider(config)
    return OfflineProvider()


@dataclass(frozen=True)
class Extraction:
    amounts: tuple[str, ...]
    dates: tuple[str, ...]
    products: tuple[str, ...]
    prompt_version: int


class LlmGateway:
    """The only way the platform talks to an LLM."""

    def __init__(self, provider: LlmProvider, prompts_dir: Path, recorder: LlmCallRecorder) -> None:
        self.provider = provider
        self.prompts_dir = prompts_dir
        self.recorder = recorder

    def extract(self, text: str) -> Extraction:
        """Amounts, dates and products mentioned in a message (structured extraction)."""
        prompt = load_prompt(self.prompts_dir, EXTRACTION_PROMPT)
        output = self._call(prompt, {"text": text})
        try:
            facts = json.loads(output)
            return Extraction(
                amounts=tuple(map(str, facts["amounts"])),
                dates=tuple(map(str, facts["dates"])),
                products=tuple(map(str, facts["products"])),
                prompt_version=prompt.version,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LlmProviderError(
                f"{prompt.name} v{prompt.version}: output is not the JSON asked for"
            ) from exc

    def explain(
        self, category: str, category_name: str, severity: str, policy_ref: str, evidence: str
    ) -> str:
        """One plain sentence about a flag that has already been decided."""
        prompt = load_prompt(self.prompts_dir, EXPLANATION_PROMPT)
        values = {
            "category": category, "category_name": category_name, "severity": severity,
            "policy_ref": policy_ref, "evidence": evidence,
        }  # fmt: skip
        return self._call(prompt, values).strip()

    def _call(self, prompt: PromptTemplate, values: dict[str, str]) -> str:
        """Redact, render, and call the provider inside an ``llm.<provider>`` span."""
        redacted = {key: redact(value).text for key, value in values.items()}
        rendered = RenderedPrompt(
            name=prompt.name,
            version=prompt.version,
            task=prompt.task,
            text=prompt.render(redacted),
            variables=redacted,
            temperature=prompt.parameters.temperature,
            max_tokens=prompt.parameters.max_tokens,
        )
        with tracer.start_as_current_span(f"llm.{self.provider.name}") as span:
            span.set_attribute("risk.llm.prompt", prompt.name)
            span.set_attribute("risk.llm.prompt_version", prompt.version)
            span.set_attribute("risk.llm.model", self.provider.model)
            try:
                completion = self._complete_and_record(prompt, rendered)
            except LlmProviderError as exc:
                span.set_attributes({"risk.llm.retries": exc.retries, "risk.llm.outcome": "error"})
                raise
            span.set_attributes({"risk.llm.retries": completion.retries, "risk.llm.outcome": "ok"})
        return completion.text

    def _complete_and_record(self, prompt: PromptTemplate, rendered: RenderedPrompt) -> Completion:
        """Call the provider and record the call in the audit log whatever its outcome."""
        started = time.perf_counter()
        completion, error = Completion(""), ""
        try:
            completion = self.provider.complete(rendered)
        except LlmProviderError as exc:
            error = str(exc)
            completion = Completion("", retries=exc.retries)
            raise
        finally:
            record_llm_call(type(self.provider).__name__, "error" if error else "ok")
            self.recorder.record(
                LlmCallRecord(
                    call_id=str(uuid.uuid4()),
                    at=utc_now().isoformat(),
                    prompt_name=prompt.name,
                    prompt_version=prompt.version,
                    prompt_uri=prompt.registry_uri,
                    provider=type(self.provider).__name__,
                    model=self.provider.model,
                    parameters=prompt.parameters.model_dump(),
                    input_hash="sha256:" + hashlib.sha256(rendered.text.encode()).hexdigest(),
                    redacted_input=rendered.text,
                    output=completion.text,
                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                    retries=completion.retries,
                    outcome="error" if error else "ok",
                    error=error,
                )
            )
        return completion
