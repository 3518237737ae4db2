"""Structured extraction of facts from a message, each fact held to a span of its text.

Rules and the classifier decide a message's category; when they are unsure (a model flag of low
probability) or the category's evidence needs facts (amounts, dates, products, vulnerability
cues), the gateway extracts them. A fact is kept only if its span really holds its quoted text:
a span the text does not contain is dropped and counted, never repaired. Facts become evidence
on the decision; they never set its category, score or action. The decision's evidence names the
llm_call record of the extraction, so a replay re-validates that stored completion and must find
the same facts (:func:`replay_extraction`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from opentelemetry import trace

from decisioning.adapters.llm.gateway import (
    FACTS_PROMPT,
    LlmGateway,
    render_prompt,
    rendered_input_hash,
)
from decisioning.conduct.assessment import ConductAssessment
from decisioning.conduct.errors import LlmProviderError, PromptNotFoundError
from decisioning.conduct.prompts import load_prompt
from decisioning.conduct.redaction import redact
from decisioning.core.decision import Evidence, RiskDecision
from decisioning.core.ports import AuditTrail
from decisioning.telemetry.metrics import record_spans_dropped

logger = logging.getLogger(__name__)

FactKind = Literal["amount", "date", "product", "vulnerability"]
# Categories whose case handler needs the facts: what was lost, when, on which product, and
# whether the customer may be vulnerable.
FACT_CATEGORIES = frozenset(
    {
        "conduct.scam_report",
        "conduct.financial_difficulty",
        "conduct.vulnerable_customer",
        "conduct.unsuitable_product",
        "conduct.price_and_value",
    }
)
# Below this category probability a model-only flag is not sure enough to stand on its own.
LOW_CONFIDENCE = 0.6
# A message holds a handful of facts; more is a provider looping, and each one is evidence on the
# decision, its audit row and the HTTP answer.
MAX_FACTS = 20
MAX_OUTPUT_CHARS = 64_000
# What a quote must hold to be a fact of its kind: an amount or a date without a digit (or a
# date word) is punctuation or a word the model mislabelled.
_DATE_WORDS = (
    r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun"
    r"|yesterday|today|tomorrow|week|month|year"
)
_KIND_CONTENT = {
    "amount": re.compile(r"\d"),
    "date": re.compile(rf"\d|\b(?:{_DATE_WORDS})", re.IGNORECASE),
    "product": re.compile(r"[^\W\d_]{2}"),
    "vulnerability": re.compile(r"[^\W\d_]{3}"),
}


@dataclass(frozen=True)
class ExtractedFact:
    kind: FactKind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class FactExtraction:
    """The facts whose spans held, how many did not, and the prompt that asked."""

    facts: tuple[ExtractedFact, ...]
    dropped: int
    prompt_version: str
    call_id: str = ""  # the llm_call record of the completion the facts came from


def needs_extraction(assessment: ConductAssessment) -> bool:
    """A flag the rules and classifier cannot carry alone, or whose evidence needs facts."""
    if not assessment.flagged:
        return False
    unsure = not assessment.source.startswith("rule") and (
        assessment.category_probability < LOW_CONFIDENCE
    )
    return unsure or assessment.category in FACT_CATEGORIES


def validated_facts(text: str, output: str) -> tuple[tuple[ExtractedFact, ...], int]:
    """The facts of a provider's JSON whose span holds their text, and how many were dropped.

    Output that is not the JSON asked for raises ``LlmProviderError`` (nothing is kept). A fact
    must hold what its kind needs (a digit in an amount); repeats of a span and facts beyond
    ``MAX_FACTS`` are dropped too.
    """
    if len(output) > MAX_OUTPUT_CHARS:
        raise LlmProviderError(f"{FACTS_PROMPT}: output of {len(output):,} characters")
    try:
        raw = json.loads(output)["facts"]
        if not isinstance(raw, list):
            raise TypeError("facts is not a list")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # deep nesting: Recursion
        raise LlmProviderError(f"{FACTS_PROMPT}: output is not the JSON asked for") from exc
    kept: list[ExtractedFact] = []
    seen: set[tuple[str, int, int]] = set()
    for item in raw:
        fact = _fact(item)
        if (
            fact is None
            or len(kept) == MAX_FACTS
            or (fact.kind, fact.start, fact.end) in seen
            or text[fact.start : fact.end] != fact.text
            or not _KIND_CONTENT[fact.kind].search(fact.text)
        ):
            continue
        seen.add((fact.kind, fact.start, fact.end))
        kept.append(fact)
    return tuple(kept), len(raw) - len(kept)


def _fact(item: Any) -> ExtractedFact | None:
    if not isinstance(item, dict) or item.get("kind") not in get_args(FactKind):
        return None
    start, end, quoted = item.get("start"), item.get("end"), item.get("text")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(quoted, str)):
        return None
    if isinstance(start, bool) or isinstance(end, bool) or not 0 <= start < end:
        return None
    return ExtractedFact(item["kind"], quoted, start, end)


def extract_facts(gateway: LlmGateway, text: str, version: int | None = None) -> FactExtraction:
    """Ask the gateway for the message's facts and keep those whose spans hold.

    The provider sees the redacted message, so spans are checked against that text; a kept fact
    is then placed on the original message at the offsets its span came from (a fact quoting a
    redaction tag, such as ``[CARD]``, has no place in the original and is dropped too).
    """
    prompt = gateway.prompt(FACTS_PROMPT, version)
    answer = gateway.call(prompt, {"text": text})
    seen = render_prompt(prompt, {"text": text}).variables["text"]
    placed, dropped = placed_facts(seen, text, answer.text)
    if dropped:
        logger.warning("%s: dropped %d fact(s) whose span does not hold", FACTS_PROMPT, dropped)
        record_spans_dropped(dropped)
    trace.get_current_span().set_attribute("risk.llm.spans_dropped", dropped)
    return FactExtraction(placed, dropped, f"{prompt.name}@{prompt.version}", answer.call.call_id)


def placed_facts(seen: str, original: str, output: str) -> tuple[tuple[ExtractedFact, ...], int]:
    """The facts of ``output`` that hold in ``seen`` (the redacted text the provider saw), on
    the ``original`` message, and how many were dropped."""
    facts, dropped = validated_facts(seen, output)
    placed = tuple(fact for fact in (_on_original(f, seen, original) for f in facts) if fact)
    return placed, dropped + len(facts) - len(placed)


def _on_original(fact: ExtractedFact, seen: str, original: str) -> ExtractedFact | None:
    """The fact at the offsets of the original that its span in the redacted text came from
    (redaction's own offset map); a span touching a redaction tag has no place there."""
    if seen == original:
        return fact
    redaction = redact(original)
    span = redaction.original_span(fact.start, fact.end) if redaction.text == seen else None
    if span is None or original[span[0] : span[1]] != fact.text:
        return None
    return ExtractedFact(fact.kind, fact.text, *span)


def fact_evidence(extraction: FactExtraction, message_id: str) -> tuple[Evidence, ...]:
    """Facts as span evidence on the decision, named by kind, then the llm_call they came from
    (a span item without offsets: ``<message id>:extracted@<call id>``)."""
    facts = tuple(
        Evidence(
            kind="span",
            reference=f"{message_id}:extracted.{fact.kind}",
            quote=fact.text,
            start=fact.start,
            end=fact.end,
        )
        for fact in extraction.facts
    )
    if not extraction.call_id:
        return facts
    return (
        *facts,
        Evidence(kind="span", reference=extraction_call_reference(message_id, extraction.call_id)),
    )


def extraction_call_reference(message_id: str, call_id: str) -> str:
    return f"{message_id}:extracted@{call_id}"


def is_extraction_call(evidence: Evidence) -> bool:
    """The evidence item naming the extraction's llm_call: a record id, not a reason to show."""
    return (
        evidence.kind == "span" and evidence.start is None and ":extracted@" in evidence.reference
    )


def replay_extraction(
    audit: AuditTrail, decision: RiskDecision, message_id: str, text: str, prompts_dir: Path
) -> tuple[str, ...]:
    """Problems replaying a decision's fact extraction against its stored completion.

    The prompt version the decision names must exist with the parameters the call used;
    rendering it from the stored message must give the call's input hash; the call's stored
    output, validated again, must give exactly the facts the decision holds. No provider is called.
    """
    if decision.prompt_version is None:
        return ()
    name, _, version = decision.prompt_version.partition("@")
    try:
        prompt = load_prompt(prompts_dir, name, int(version))
    except (PromptNotFoundError, ValueError) as exc:
        return (str(exc),)
    calls = [e.reference.partition("@")[2] for e in decision.evidence if is_extraction_call(e)]
    call = audit.get(calls[0]) if len(calls) == 1 else None
    if call is None or call.kind != "llm_call":
        return (f"no llm_call record of the {decision.prompt_version} extraction ({calls})",)
    rendered = render_prompt(prompt, {"text": text})
    body = call.body
    problems = [
        f"llm_call {call.record_id} has another {what}"
        for what, recorded, expected in (
            (
                "prompt",
                f"{body.get('prompt_name')}@{body.get('prompt_version')}",
                decision.prompt_version,
            ),
            ("input hash", body.get("input_hash"), rendered_input_hash(rendered)),
            ("parameters", body.get("parameters"), prompt.parameters.model_dump()),
            ("outcome", body.get("outcome"), "ok"),
        )
        if recorded != expected
    ]
    try:
        facts, _ = placed_facts(rendered.variables["text"], text, str(body.get("output", "")))
    except LlmProviderError as exc:
        return (*problems, f"llm_call {call.record_id}'s output: {exc}")
    again = fact_evidence(FactExtraction(facts, 0, decision.prompt_version), message_id)
    stored = tuple(e for e in decision.evidence if f"{message_id}:extracted." in e.reference)
    if again != stored:
        problems.append(
            f"llm_call {call.record_id}'s output gives {len(again)} fact(s) that are not "
            f"the {len(stored)} the decision holds"
        )
    return tuple(problems)
