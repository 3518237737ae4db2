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
import math
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx
import tenacity
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.breaker import CircuitBreaker
from decisioning.conduct.errors import LlmCircuitOpen, LlmProviderError
from decisioning.conduct.prompts import PromptTemplate, load_prompt
from decisioning.conduct.redaction import redact
from decisioning.core.events import utc_now
from decisioning.telemetry.metrics import record_llm_call

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

EXTRACTION_PROMPT = "conduct_extraction"
EXPLANATION_PROMPT = "conduct_explanation"
DECISION_EXPLANATION_PROMPT = "decision_explanation"
FACTS_PROMPT = "conduct_facts"
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
_VULNERABILITY = re.compile(
    r"\b(?:can(?:no|')t cope|struggling|bereave\w*|passed away|lost my job|redundan\w+"
    r"|disab\w+|illness|diagnos\w+|mental health|depress\w+|anxiety|carer|in hospital"
    r"|on my own|vulnerable)\b",
    re.IGNORECASE,
)
_FACT_PATTERNS = (
    ("amount", _AMOUNT), ("date", _DATE), ("product", _PRODUCT), ("vulnerability", _VULNERABILITY),
)  # fmt: skip


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
    call_budget_seconds: float = Field(default=30.0, gt=0)  # every attempt and wait together
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LlmConfig:
        """From ``RISK_LLM_{PROVIDER,BASE_URL,MODEL,API_KEY,TIMEOUT,RETRIES,CALL_BUDGET,
        BREAKER_FAILURES,BREAKER_RESET}`` where set."""
        values: dict[str, object] = {}
        for key, name in (
            ("provider", "PROVIDER"), ("base_url", "BASE_URL"), ("model", "MODEL"),
            ("api_key", "API_KEY"), ("timeout_seconds", "TIMEOUT"), ("max_retries", "RETRIES"),
            ("call_budget_seconds", "CALL_BUDGET"), ("breaker_failures", "BREAKER_FAILURES"),
            ("breaker_reset_seconds", "BREAKER_RESET"),
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
        if prompt.name == FACTS_PROMPT:
            return Completion(json.dumps({"facts": _offline_facts(values["text"])}))
        if prompt.task == "extraction":
            text = values["text"]
            facts = {
                "amounts": _unique(m.group(0) for m in _AMOUNT.finditer(text)),
                "dates": _unique(m.group(0) for m in _DATE.finditer(text)),
                "products": _unique(m.group(0).lower() for m in _PRODUCT.finditer(text)),
            }
            return Completion(json.dumps(facts))
        if prompt.name == DECISION_EXPLANATION_PROMPT:
            return Completion(_offline_decision_explanation(values))
        sentence = (
            f"The customer raised {values['category_name'].lower()} "
            f"({values['severity']} severity), shown by {values['evidence']}; "
            f"see {values['policy_ref']}."
        )
        return Completion(sentence)


def _offline_decision_explanation(values: Mapping[str, str]) -> str:
    """The first reasons and piece of evidence, quoted as given: faithful by construction."""
    reasons = [line.removeprefix("- ") for line in values["reasons"].splitlines() if line]
    evidence = [line.removeprefix("- ") for line in values["evidence"].splitlines() if line]
    sentence = f"Sent to {values['action']} as {values['risk_category']}"
    if reasons and reasons != ["none"]:
        sentence += " because " + "; ".join(reasons[:3])
    if evidence and evidence != ["none"]:
        sentence += f". Evidence: {evidence[0]}"
    return sentence + "."


def _offline_facts(text: str) -> list[dict[str, object]]:
    """Every pattern match with its span, in text order."""
    matches = sorted(
        (m.start(), kind, m) for kind, pattern in _FACT_PATTERNS for m in pattern.finditer(text)
    )
    return [
        {"kind": kind, "text": m.group(0), "start": m.start(), "end": m.end()}
        for _, kind, m in matches
    ]


def _unique(items: object) -> list[str]:
    return list(dict.fromkeys(items))  # type: ignore[call-overload]


_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _RetryableCall(LlmProviderError):
    """One attempt failed in a way another attempt may not: a timeout, a 5xx, a 429, garbage."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAICompatibleProvider:
    """``POST {base_url}/chat/completions`` with a per-attempt timeout, a whole-call budget and
    retries with jittered exponential backoff that wait at least what ``Retry-After`` asks.

    A ``Retry-After`` longer than the call's budget ends the call at once: waiting less would
    ignore the provider, waiting that long would hold the explanation queue.
    """

    name = "openai_compatible"

    def __init__(
        self,
        config: LlmConfig,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not config.base_url:
            raise LlmProviderError("openai_compatible provider needs RISK_LLM_BASE_URL")
        self.model = config.model
        self._config = config
        self._sleep = sleep
        self._clock = clock

    def complete(self, prompt: RenderedPrompt) -> Completion:
        config = self._config
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "temperature": prompt.temperature,
            "max_tokens": prompt.max_tokens,
        }
        headers = {}
        if config.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        url = config.base_url.rstrip("/") + "/chat/completions"
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableCall),
            stop=tenacity.stop_after_attempt(config.max_retries + 1)
            | tenacity.stop_after_delay(config.call_budget_seconds)
            | _retry_after_beyond(config.call_budget_seconds),
            wait=_backoff(config.backoff_seconds),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    response = self._post(url, body, headers)
                    return Completion(_message_content(response), retries=attempts - 1)
        except _RetryableCall as exc:
            raise LlmProviderError(
                f"LLM provider failed after {attempts} attempts: {exc}", retries=attempts - 1
            ) from exc
        raise AssertionError("tenacity returned without an outcome")  # pragma: no cover

    def _post(self, url: str, body: dict[str, object], headers: dict[str, str]) -> httpx.Response:
        timeout = self._config.timeout_seconds
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise _RetryableCall(f"timed out after {timeout}s") from exc
        except httpx.TransportError as exc:
            raise _RetryableCall(f"transport error: {exc}") from exc
        except httpx.HTTPError as exc:  # a body that cannot be decoded, a broken stream, ...
            raise _RetryableCall(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in _RETRYABLE_STATUS:
            raise _RetryableCall(
                f"HTTP {response.status_code}", _retry_after(response.headers.get("Retry-After"))
            )
        if response.status_code >= 400:
            raise LlmProviderError(f"LLM provider refused the call: HTTP {response.status_code}")
        return response


def _backoff(base_seconds: float) -> Callable[[tenacity.RetryCallState], float]:
    """Full-jitter exponential backoff, never shorter than the provider's ``Retry-After``."""
    jittered = tenacity.wait_random_exponential(multiplier=base_seconds, max=60)

    def wait(state: tenacity.RetryCallState) -> float:
        asked = _asked_to_wait(state)
        chosen = jittered(state) if base_seconds > 0 else 0.0
        return max(chosen, asked or 0.0)

    return wait


def _retry_after_beyond(budget_seconds: float) -> tenacity.stop.stop_base:
    class _Stop(tenacity.stop.stop_base):
        def __call__(self, state: tenacity.RetryCallState) -> bool:
            asked = _asked_to_wait(state)
            return asked is not None and asked > budget_seconds

    return _Stop()


def _asked_to_wait(state: tenacity.RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome is not None else None
    return error.retry_after if isinstance(error, _RetryableCall) else None


# A ``Retry-After`` of "inf" or a date centuries ahead: longer than any call's budget.
_RETRY_AFTER_CEILING = 365 * 24 * 3600.0


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (RFC 9110).

    Total: whatever a provider sends gives a finite wait or None, never an exception.
    """
    if not value:
        return None
    try:
        seconds: float | None = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), _RETRY_AFTER_CEILING)


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" says UTC without naming a zone (RFC 5322 3.3)
        when = when.replace(tzinfo=UTC)
    try:
        return (when - utc_now()).total_seconds()
    except OverflowError:
        return None


def _message_content(response: httpx.Response) -> str:
    """The first choice's content; a body without one is retried (proxies truncate bodies)."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _RetryableCall("answered without choices[0].message.content") from exc
    if not isinstance(content, str):
        raise _RetryableCall("answered with a non-text choices[0].message.content")
    return content


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


@dataclass(frozen=True)
class GatewayAnswer:
    """What the provider answered and the call record that says how (prompt, model, hash)."""

    text: str
    call: LlmCallRecord


class LlmGateway:
    """The only way the platform talks to an LLM.

    With a ``breaker``, repeated provider failures open it and later calls fail at once with
    :class:`LlmCircuitOpen` (recorded, counted, never sent) until it lets a trial through.
    ``versions`` pins prompts to the versions resolved at start-up (their ``@champion``); any
    other prompt is used at its highest file version. ``deadline_seconds`` bounds a call by the
    wall clock, whatever the provider does (httpx's timeouts bound each read, not the call).
    """

    def __init__(
        self,
        provider: LlmProvider,
        prompts_dir: Path,
        recorder: LlmCallRecorder,
        breaker: CircuitBreaker | None = None,
        versions: Mapping[str, int] | None = None,
        deadline_seconds: float | None = None,
    ) -> None:
        self.provider = provider
        self.prompts_dir = prompts_dir
        self.recorder = recorder
        self.breaker = breaker
        self.versions = dict(versions or {})
        self.deadline_seconds = deadline_seconds

    def prompt(self, name: str, version: int | None = None) -> PromptTemplate:
        """``version`` of the prompt if given, else its pinned version, else its highest."""
        return load_prompt(self.prompts_dir, name, version or self.versions.get(name))

    def extract(self, text: str) -> Extraction:
        """Amounts, dates and products mentioned in a message (structured extraction)."""
        prompt = self.prompt(EXTRACTION_PROMPT)
        output = self.call(prompt, {"text": text}).text
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
        prompt = self.prompt(EXPLANATION_PROMPT)
        values = {
            "category": category, "category_name": category_name, "severity": severity,
            "policy_ref": policy_ref, "evidence": evidence,
        }  # fmt: skip
        return self.call(prompt, values).text.strip()

    def call(self, prompt: PromptTemplate, values: dict[str, str]) -> GatewayAnswer:
        """Redact, render, and call the provider inside an ``llm.<provider>`` span."""
        rendered = render_prompt(prompt, values)
        with tracer.start_as_current_span(f"llm.{self.provider.name}") as span:
            span.set_attribute("risk.llm.prompt", prompt.name)
            span.set_attribute("risk.llm.prompt_version", prompt.version)
            span.set_attribute("risk.llm.model", self.provider.model)
            try:
                answer = self._complete_and_record(prompt, rendered)
            except LlmProviderError as exc:
                span.set_attributes({"risk.llm.retries": exc.retries, "risk.llm.outcome": "error"})
                raise
            span.set_attributes({"risk.llm.retries": answer.call.retries, "risk.llm.outcome": "ok"})
        return answer

    def _complete_and_record(
        self, prompt: PromptTemplate, rendered: RenderedPrompt
    ) -> GatewayAnswer:
        """Call the provider and record the call in the audit log whatever its outcome.

        Any failure of the provider, of whatever type, is recorded as an error and raised as
        :class:`LlmProviderError`: callers guard one type, and no fault reaches a decision.
        """
        started = time.perf_counter()
        completion, error = Completion(""), "did not complete"
        try:
            completion = self._complete(rendered)
            error = ""
        except LlmProviderError as exc:
            error = str(exc) or repr(exc)
            completion = Completion("", retries=exc.retries)
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise LlmProviderError(f"LLM provider failed: {error}"[:500]) from exc
        finally:
            record_llm_call(type(self.provider).__name__, "error" if error else "ok")
            call = LlmCallRecord(
                call_id=str(uuid.uuid4()),
                at=utc_now().isoformat(),
                prompt_name=prompt.name,
                prompt_version=prompt.version,
                prompt_uri=prompt.registry_uri,
                provider=type(self.provider).__name__,
                model=self.provider.model,
                parameters=prompt.parameters.model_dump(),
                input_hash=rendered_input_hash(rendered),
                redacted_input=rendered.text,
                output=completion.text,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                retries=completion.retries,
                outcome="error" if error else "ok",
                error=error,
            )
            self.recorder.record(call)
        return GatewayAnswer(completion.text, call)

    def _complete(self, rendered: RenderedPrompt) -> Completion:
        """The provider's completion, behind the breaker when there is one.

        Every way out but a completion counts as a failure, so no exception type can leave a
        half-open trial running for good.
        """
        if self.breaker is None:
            return self._within_deadline(rendered)
        if not self.breaker.allow():
            raise LlmCircuitOpen("circuit open after repeated provider failures: not called")
        completion = None
        try:
            completion = self._within_deadline(rendered)
        finally:
            if completion is None:
                self.breaker.failed()
            else:
                self.breaker.succeeded()
        return completion

    def _within_deadline(self, rendered: RenderedPrompt) -> Completion:
        """The provider's completion, or a provider error once ``deadline_seconds`` have passed.

        The call runs on a daemon thread the caller stops waiting for: a provider that trickles
        its answer a byte at a time holds that thread, never the caller. The breaker counts the
        overrun, so while the provider stays slow few such threads are ever started.
        """
        if self.deadline_seconds is None:
            return self.provider.complete(rendered)
        finished = threading.Event()
        outcome: list[Completion | BaseException] = []

        def run() -> None:
            try:
                outcome.append(self.provider.complete(rendered))
            except BaseException as exc:  # handed to the caller, who raises it
                outcome.append(exc)
            finally:
                finished.set()

        threading.Thread(target=run, name="llm-call", daemon=True).start()
        if not finished.wait(self.deadline_seconds):
            raise LlmProviderError(f"no answer within the {self.deadline_seconds:g}s deadline")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]


def render_prompt(prompt: PromptTemplate, values: dict[str, str]) -> RenderedPrompt:
    """The prompt as the provider sees it: every value redacted before it is filled in."""
    redacted = {key: redact(value).text for key, value in values.items()}
    return RenderedPrompt(
        name=prompt.name,
        version=prompt.version,
        task=prompt.task,
        text=prompt.render(redacted),
        variables=redacted,
        temperature=prompt.parameters.temperature,
        max_tokens=prompt.parameters.max_tokens,
    )


def rendered_input_hash(rendered: RenderedPrompt) -> str:
    """The hash of the redacted prompt text: what ties a stored completion to its input."""
    return "sha256:" + hashlib.sha256(rendered.text.encode()).hexdigest()


def build_gateway(
    config: LlmConfig,
    prompts_dir: Path,
    recorder: LlmCallRecorder,
    versions: Mapping[str, int] | None = None,
    deadline_seconds: float | None = None,
) -> LlmGateway:
    """The configured provider behind a breaker sized by the same config; ``versions`` as
    :func:`decisioning.conduct.prompts.champion_prompt_versions` resolved them at start-up."""
    breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_seconds)
    return LlmGateway(
        build_provider(config), prompts_dir, recorder, breaker, versions, deadline_seconds
    )
