"""Reviewer-facing explanations of decided cases, written after the decision is answered.

LLMs explain, never decide: the explanation of a ``review`` or ``escalate`` decision is built
through the gateway from the decision's action, category, reason codes and evidence only (never
the raw request), after the decision was stored and answered. It is stored as its own audit
record, linked to the decision's record by id, sequence number and row hash, with the prompt
name and version, the model, the hash of the redacted prompt and the output. A provider that
fails or whose breaker is open gives a stored "explanation unavailable"; the decision never
waits for, and is never changed by, its explanation. Approvals and declines get none.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from decisioning.adapters.audit import AuditRecord, AuditStore
from decisioning.adapters.audit.chain import row_hash
from decisioning.adapters.llm.extraction import is_extraction_call
from decisioning.adapters.llm.gateway import (
    DECISION_EXPLANATION_PROMPT,
    LlmGateway,
    render_prompt,
    rendered_input_hash,
)
from decisioning.conduct.errors import LlmProviderError, PromptNotFoundError
from decisioning.conduct.prompts import PromptTemplate, load_prompt
from decisioning.core.decision import RiskDecision, canonical_json, sha256_hex
from decisioning.telemetry.metrics import record_explanation

logger = logging.getLogger(__name__)

EXPLANATION_KIND = "explanation"
EXPLAINED_ACTIONS = frozenset({"review", "escalate"})
UNAVAILABLE = "explanation unavailable"
SHUTTING_DOWN = "not explained: the service was shutting down"
MAX_REASONS = 5
MAX_EVIDENCE = 5
QUEUE_LIMIT = 10_000


class DecisionExplanation(BaseModel):
    """The body of an ``explanation`` audit record (under the key ``explanation``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str
    decision_seq: int
    decision_row_hash: str
    action: str
    status: Literal["ok", "unavailable"]
    prompt_name: str
    prompt_version: str  # "name@version", as decisions name prompts
    provider: str
    model: str
    input_hash: str
    output: str
    call_id: str
    error: str = ""
    # The hash of the prompt's parameters (temperature, max_tokens): a version's file can change
    # them without changing its text. Empty on records written before it was stored.
    parameters_hash: str = ""


def explanation_record_id(decision_id: str) -> str:
    """One explanation per decision: the store's unique record id refuses a second."""
    return f"exp_{decision_id.removeprefix('dec_')}"


def needs_explanation(decision: RiskDecision) -> bool:
    """Only cases a person picks up are explained; a repeat was explained the first time."""
    return decision.action in EXPLAINED_ACTIONS and not decision.replay


def prompt_version_label(prompt: PromptTemplate) -> str:
    return f"{prompt.name}@{prompt.version}"


def prompt_parameters_hash(prompt: PromptTemplate) -> str:
    """What the provider is asked besides the text, hashed: edited under a version, it shows."""
    return "sha256:" + sha256_hex(canonical_json(prompt.parameters.model_dump(mode="json")))


def explanation_inputs(decision: RiskDecision) -> dict[str, str]:
    """The decision's own reasons and evidence as the prompt's variables: nothing else."""
    reasons = [f"- {r.code}: {r.description}" for r in decision.reason_codes[:MAX_REASONS]]
    shown = [e for e in decision.evidence if not is_extraction_call(e)]  # a record id, no reason
    evidence = [
        f'- {e.kind} {e.reference}: "{e.quote}"' if e.quote else f"- {e.kind} {e.reference}"
        for e in shown[:MAX_EVIDENCE]
    ]
    reasons += [f"- degraded {d.component}: {d.fallback}" for d in decision.degraded]
    return {
        "action": decision.action,
        "risk_category": decision.risk_category,
        "reasons": "\n".join(reasons) or "- none",
        "evidence": "\n".join(evidence) or "- none",
    }


class Explainer:
    """Explain one stored decision and append the linked record (the worker's one job)."""

    def __init__(self, gateway: LlmGateway, audit: AuditStore, version: int | None = None) -> None:
        self.gateway = gateway
        self.audit = audit
        self.version = version  # None: the prompt's highest version

    def explain(
        self, decision: RiskDecision, call_provider: bool = True
    ) -> DecisionExplanation | None:
        """Append the explanation of a stored decision; None if it has one or needs none.

        Without ``call_provider`` (a shutdown) it is stored as unavailable without a call.
        """
        if not needs_explanation(decision):
            return None
        record_id = explanation_record_id(decision.decision_id)
        if self.audit.get(record_id) is not None:
            return None
        stored = self.audit.get(decision.decision_id)
        if stored is None:
            raise LookupError(f"decision {decision.decision_id} is not in the audit store")
        prompt = self.gateway.prompt(DECISION_EXPLANATION_PROMPT, self.version)
        try:
            if not call_provider:
                raise LlmProviderError(SHUTTING_DOWN)
            answer = self.gateway.call(prompt, explanation_inputs(decision))
            status, output, error, call = "ok", answer.text.strip(), "", answer.call
        except LlmProviderError as exc:
            logger.warning("explanation of %s unavailable: %s", decision.decision_id, exc)
            status, output, error, call = "unavailable", UNAVAILABLE, str(exc)[:300], None
        except Exception as exc:  # the explanation is still stored, saying it is unavailable
            logger.exception("explanation of %s failed", decision.decision_id)
            error = f"{type(exc).__name__}: {exc}"[:300]
            status, output, call = "unavailable", UNAVAILABLE, None
        rendered = render_prompt(prompt, explanation_inputs(decision))
        explanation = DecisionExplanation(
            decision_id=decision.decision_id,
            decision_seq=stored.seq,
            decision_row_hash=stored.row_hash,
            action=decision.action,
            status=status,  # type: ignore[arg-type]
            prompt_name=prompt.name,
            prompt_version=prompt_version_label(prompt),
            provider=type(self.gateway.provider).__name__,
            model=self.gateway.provider.model,
            input_hash=rendered_input_hash(rendered),
            output=output or UNAVAILABLE,
            call_id="" if call is None else call.call_id,
            error=error,
            parameters_hash=prompt_parameters_hash(prompt),
        )
        self.audit.append(
            EXPLANATION_KIND, record_id, {"explanation": explanation.model_dump(mode="json")}
        )
        record_explanation(explanation.status)
        return explanation


class ExplanationQueue:
    """A background thread that explains decisions after they are answered.

    ``submit`` never blocks and never raises: a full queue drops the explanation (logged and
    counted in ``dropped``; the decision is untouched), so no provider can hold a payment.
    ``close`` makes no further provider call: what is queued is stored as unavailable.
    """

    def __init__(self, explainer: Explainer, limit: int = QUEUE_LIMIT) -> None:
        self.explainer = explainer
        self.dropped = 0
        self.failed = 0
        self._counts = threading.Lock()  # += is not atomic across the decision threads
        self._stopping = threading.Event()
        self._queue: queue.Queue[RiskDecision | None] = queue.Queue(maxsize=limit)
        self._thread = threading.Thread(target=self._run, name="explanations", daemon=True)
        self._thread.start()

    def submit(self, decision: RiskDecision) -> None:
        if not needs_explanation(decision):
            return
        try:
            self._queue.put_nowait(decision)
        except queue.Full:
            self._count("dropped")
            logger.warning("explanation queue full: %s not explained", decision.decision_id)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted decision is explained; False if ``timeout`` ran out."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop within ``timeout`` in all: no provider call once this starts; queued decisions
        are stored as unavailable while time remains, then dropped and counted; the call in
        flight gets what is left of ``timeout`` to finish."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._stopping.set()
        while True:
            try:
                decision = self._queue.get_nowait()
            except queue.Empty:
                break
            try:
                if decision is not None and _before(deadline):
                    self.explainer.explain(decision, call_provider=False)
                elif decision is not None:
                    self._count("dropped")
            except Exception:
                self._count("failed")
                logger.exception("explanation failed")
            finally:
                self._queue.task_done()
        # Full only if decisions kept coming while closing: the daemon worker stores them as
        # unavailable and dies with the process.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning("explanation worker still in a provider call after %ss", timeout)

    def _count(self, outcome: Literal["dropped", "failed"]) -> None:
        record_explanation(outcome)
        with self._counts:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def _run(self) -> None:
        while True:
            decision = self._queue.get()
            try:
                if decision is None:
                    return
                self.explainer.explain(decision, call_provider=not self._stopping.is_set())
            except Exception:  # one failed explanation must not stop the ones after it
                self._count("failed")
                logger.exception("explanation failed")
            finally:
                self._queue.task_done()


def _before(deadline: float | None) -> bool:
    return deadline is None or time.monotonic() < deadline


@dataclass(frozen=True)
class ExplanationReplay:
    """What replaying a decision's explanation found; ``problems`` empty means it matched."""

    decision_id: str
    explanation: DecisionExplanation | None
    problems: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return not self.problems


def stored_explanation(audit: AuditStore, decision_id: str) -> DecisionExplanation | None:
    record = audit.get(explanation_record_id(decision_id))
    if record is None or record.kind != EXPLANATION_KIND:
        return None
    return DecisionExplanation.model_validate(record.body["explanation"])


def replay_explanation(
    audit: AuditStore, decision: RiskDecision, prompts_dir: Path
) -> ExplanationReplay:
    """Check a decision's stored explanation against what it claims; no provider is called.

    It must name the stored decision's row (sequence number and row hash); the named prompt
    version must still exist, with the parameters it had, and rendering it from the decision must
    give the stored input hash; an ``ok`` explanation's llm_call record must hold the same output,
    input hash and prompt. Each of these rows must still hash to its stored row hash. A review or
    escalate decision without an explanation is reported, an approval with one too.
    """
    record = audit.get(explanation_record_id(decision.decision_id))
    if record is None or record.kind != EXPLANATION_KIND:
        missing = ("no explanation stored",) if needs_explanation(decision) else ()
        return ExplanationReplay(decision.decision_id, None, missing)
    explanation = DecisionExplanation.model_validate(record.body["explanation"])
    problems = [*_row_problems(audit, record)]
    if not needs_explanation(decision):
        problems.append(f"a {decision.action} decision has an explanation")
    problems += _decision_link_problems(audit, decision, explanation)
    problems += _call_problems(audit, explanation)
    name, _, version = explanation.prompt_version.partition("@")
    try:
        prompt = load_prompt(prompts_dir, name, int(version))
    except (PromptNotFoundError, ValueError) as exc:
        return ExplanationReplay(decision.decision_id, explanation, (*problems, str(exc)))
    rendered = render_prompt(prompt, explanation_inputs(decision))
    if rendered_input_hash(rendered) != explanation.input_hash:
        problems.append(
            f"{explanation.prompt_version} rendered from the stored decision does not give the "
            "stored input hash"
        )
    if explanation.parameters_hash and explanation.parameters_hash != prompt_parameters_hash(
        prompt
    ):
        problems.append(f"{explanation.prompt_version}'s parameters changed since it explained")
    return ExplanationReplay(decision.decision_id, explanation, tuple(problems))


def _decision_link_problems(
    audit: AuditStore, decision: RiskDecision, explanation: DecisionExplanation
) -> list[str]:
    """The explanation must name the decision's own stored row."""
    if explanation.decision_id != decision.decision_id:
        return [f"explanation names decision {explanation.decision_id}"]
    stored = audit.get(decision.decision_id)
    if stored is None:
        return [f"decision {decision.decision_id} is not in the audit store"]
    problems = _row_problems(audit, stored)
    if (explanation.decision_seq, explanation.decision_row_hash) != (stored.seq, stored.row_hash):
        problems.append(
            f"explanation names decision row seq {explanation.decision_seq} "
            f"({explanation.decision_row_hash[:19]}), the decision is seq {stored.seq} "
            f"({stored.row_hash[:19]})"
        )
    return problems


def _call_problems(audit: AuditStore, explanation: DecisionExplanation) -> list[str]:
    """An ``ok`` explanation is its llm_call's output for the same input and prompt."""
    if explanation.status != "ok":
        return [] if explanation.output == UNAVAILABLE else ["unavailable but has an output"]
    call = audit.get(explanation.call_id) if explanation.call_id else None
    if call is None or call.kind != "llm_call":
        return [f"no llm_call record {explanation.call_id!r} in the audit store"]
    body = call.body
    problems = _row_problems(audit, call)
    claimed = {
        "output": explanation.output,
        "input hash": explanation.input_hash,
        "prompt": explanation.prompt_version,
        "outcome": "ok",
    }
    recorded = {
        "output": str(body.get("output", "")).strip() or UNAVAILABLE,
        "input hash": body.get("input_hash"),
        "prompt": f"{body.get('prompt_name')}@{body.get('prompt_version')}",
        "outcome": body.get("outcome"),
    }
    problems += [
        f"llm_call {explanation.call_id} has another {what}"
        for what in claimed
        if claimed[what] != recorded[what]
    ]
    return problems


def _row_problems(audit: AuditStore, record: AuditRecord) -> list[str]:
    """The record's row must still hash to its row hash (the whole chain: ``audit verify``)."""
    for row in audit.rows(from_seq=record.seq, up_to=record.seq):
        expected = row_hash(row.kind, row.record_id, row.recorded_at, row.body, row.prev_hash)
        if expected != row.row_hash or row.record_id != record.record_id:
            return [f"{record.kind} row {record.record_id} (seq {record.seq}) was edited"]
        return []
    return [f"{record.kind} row {record.record_id} (seq {record.seq}) is gone"]
