"""A prompt version scored on its golden set: the prompt's counterpart of a model's holdout.

``configs/prompts/<name>/golden.jsonl`` holds realistic inputs and what a correct output must
satisfy. Each case goes through the gateway (whatever provider it was built with) and is scored
on four checks, each a fraction of the cases that pass it:

- ``schema_validity``: the output parses into the prompt's declared shape (:data:`OUTPUT_SHAPES`
  for extraction prompts; non-empty plain text for explanations);
- ``span_validity`` (span-carrying extraction only): every fact's span holds its quoted text, as
  ``decisioning.adapters.llm.extraction.validated_facts`` checks it on the decision path;
- ``faithfulness``: every number, amount, date, quoted phrase or code in the output appears in
  the (redacted) input, and every extracted string is quoted from it;
- ``expectations``: what the golden case asks for is there (expected facts, mentions, length).

Gates over these scores live in the ``prompts:`` section of ``configs/gates.yaml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from decisioning.adapters.llm.extraction import FactKind, validated_facts
from decisioning.adapters.llm.gateway import (
    _AMOUNT,
    _DATE,
    EXTRACTION_PROMPT,
    FACTS_PROMPT,
    LlmGateway,
    render_prompt,
)
from decisioning.conduct.errors import LlmProviderError
from decisioning.conduct.prompts import PromptTemplate
from registry.errors import GatesConfigError, GoldenSetError
from registry.gates import GateResult

GOLDEN_FILE = "golden.jsonl"
PromptMetric = Literal["schema_validity", "span_validity", "faithfulness", "expectations"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- golden set ----------------------------------------------------------------------------


class ExpectedFact(_Strict):
    kind: FactKind
    text: str


class Expectation(_Strict):
    """What a correct output must hold; every field is optional, each one set is checked."""

    facts: tuple[ExpectedFact, ...] = ()
    amounts: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    max_words: int | None = Field(default=None, gt=0)


class GoldenCase(_Strict):
    id: str
    source: str  # where the text comes from: "hand-written" or a public data set and licence
    inputs: dict[str, str]
    expect: Expectation


def load_golden_set(directory: Path, name: str) -> tuple[GoldenCase, ...]:
    """Every case of ``<directory>/<name>/golden.jsonl``; a prompt without one cannot be scored."""
    path = directory / name / GOLDEN_FILE
    if not path.is_file():
        raise GoldenSetError(f"{name} has no golden set at {path}")
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(GoldenCase.model_validate_json(line))
        except ValidationError as exc:
            raise GoldenSetError(f"{path}:{number}: {str(exc).splitlines()[0]}") from exc
    if not cases:
        raise GoldenSetError(f"{path} holds no cases")
    if len({case.id for case in cases}) != len(cases):
        raise GoldenSetError(f"{path}: case ids must be unique")
    return tuple(cases)


# --- declared output shapes ----------------------------------------------------------------


class FactItem(_Strict):
    kind: FactKind
    text: str
    start: StrictInt
    end: StrictInt


class FactsOutput(_Strict):
    """``conduct_facts``: facts with character spans."""

    facts: tuple[FactItem, ...]


class ListsOutput(_Strict):
    """``conduct_extraction``: amounts, dates and products as written."""

    amounts: tuple[str, ...]
    dates: tuple[str, ...]
    products: tuple[str, ...]


OUTPUT_SHAPES: dict[str, type[FactsOutput] | type[ListsOutput]] = {
    FACTS_PROMPT: FactsOutput,
    EXTRACTION_PROMPT: ListsOutput,
}


def parse_output(prompt: PromptTemplate, output: str) -> FactsOutput | ListsOutput | str:
    """The output in the prompt's declared shape; raises ``ValueError`` when it is not."""
    if prompt.task == "explanation":
        text = output.strip()
        if not text or text.startswith(("{", "[")):
            raise ValueError("an explanation is non-empty plain text")
        return text
    shape = OUTPUT_SHAPES.get(prompt.name)
    if shape is None:
        raise GoldenSetError(f"extraction prompt {prompt.name} declares no output shape")
    try:
        return shape.model_validate(json.loads(output))
    except ValidationError as exc:
        raise ValueError(str(exc).splitlines()[0]) from exc


def claims(parsed: FactsOutput | ListsOutput | str) -> tuple[str, ...]:
    """The strings an output asserts: extracted values, or the whole explanation."""
    if isinstance(parsed, FactsOutput):
        return tuple(fact.text for fact in parsed.facts)
    if isinstance(parsed, ListsOutput):
        return (*parsed.amounts, *parsed.dates, *parsed.products)
    return (parsed,)


# --- faithfulness --------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r'"([^"]{2,})"')
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9]")


def _normal(text: str) -> str:
    return " ".join(text.translate(_QUOTES).lower().split())


def _is_code(token: str) -> bool:
    """An identifier rather than a word: reason and policy codes, references, acronyms."""
    has_digit = any(c.isdigit() for c in token)
    has_letter = any(c.isalpha() for c in token)
    return (
        (has_digit and has_letter)
        or "_" in token
        or re.search(r"[a-z]\.[a-z]", token, re.IGNORECASE) is not None
        or (token.isupper() and len(token) >= 2)
    )


def unsupported_facts(output_claims: Sequence[str], source: str, quoted: bool) -> list[str]:
    """Each number, amount, date, quoted phrase or code of the claims that ``source`` lacks.

    ``quoted``: the claims are extracted values, so each must itself appear in the source.
    """
    haystack = _normal(source)
    compact = haystack.replace(",", "").replace(" ", "")
    numbers = {n.replace(",", "") for n in _NUMBER.findall(haystack)}
    missing = []
    for claim in output_claims:
        text = _normal(claim)
        if quoted and text not in haystack:
            missing.append(f"extracted {claim!r}")
            continue
        missing += [
            f"number {n}" for n in _NUMBER.findall(text) if n.replace(",", "") not in numbers
        ]
        missing += [
            f"amount {m.group(0)}"
            for m in _AMOUNT.finditer(text)
            if m.group(0).replace(",", "").replace(" ", "") not in compact
        ]
        missing += [
            f"date {m.group(0)}" for m in _DATE.finditer(text) if m.group(0) not in haystack
        ]
        missing += [f'quote "{q}"' for q in _QUOTED.findall(text) if _normal(q) not in haystack]
        missing += [
            f"code {t}"
            for t in _TOKEN.findall(claim.translate(_QUOTES))
            if _is_code(t)
            and not t.replace(".", "").replace(",", "").isdigit()
            and t.lower() not in haystack
        ]
    return list(dict.fromkeys(missing))


# --- expectations --------------------------------------------------------------------------


def unmet_expectations(expect: Expectation, parsed: FactsOutput | ListsOutput | str) -> list[str]:
    """What the golden case asked for that the parsed output does not hold."""
    unmet = []
    if isinstance(parsed, FactsOutput):
        found = {(f.kind, _normal(f.text)) for f in parsed.facts}
        unmet += [
            f"{e.kind} {e.text!r}" for e in expect.facts if (e.kind, _normal(e.text)) not in found
        ]
    if isinstance(parsed, ListsOutput):
        for field in ("amounts", "dates", "products"):
            have = {_normal(v) for v in getattr(parsed, field)}
            unmet += [f"{field} {v!r}" for v in getattr(expect, field) if _normal(v) not in have]
    if isinstance(parsed, str):
        text = _normal(parsed)
        unmet += [f"mention {m!r}" for m in expect.mentions if _normal(m) not in text]
        words = len(parsed.split())
        if expect.max_words is not None and words > expect.max_words:
            unmet.append(f"{words} words (at most {expect.max_words})")
    return unmet


# --- running a version over its golden set -------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    output: str
    schema_valid: bool
    spans_valid: bool | None  # None: the prompt carries no spans
    faithful: bool
    expected: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class PromptEvaluation:
    name: str
    version: int
    provider: str
    model: str
    cases: tuple[CaseResult, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def metrics(self) -> dict[str, float]:
        """Each check as the fraction of cases that pass it (span validity where it applies)."""
        count = len(self.cases)
        scores = {
            "schema_validity": sum(c.schema_valid for c in self.cases) / count,
            "faithfulness": sum(c.faithful for c in self.cases) / count,
            "expectations": sum(c.expected for c in self.cases) / count,
        }
        spans = [c.spans_valid for c in self.cases if c.spans_valid is not None]
        if spans:
            scores["span_validity"] = sum(spans) / len(spans)
        return scores


def evaluate_prompt(
    gateway: LlmGateway, prompt: PromptTemplate, cases: Sequence[GoldenCase]
) -> PromptEvaluation:
    """Run ``prompt`` on every golden case through ``gateway`` and score each output."""
    results = [_score_case(gateway, prompt, case) for case in cases]
    return PromptEvaluation(
        prompt.name,
        prompt.version,
        type(gateway.provider).__name__,
        gateway.provider.model,
        tuple(results),
    )


def _score_case(gateway: LlmGateway, prompt: PromptTemplate, case: GoldenCase) -> CaseResult:
    spans = None if prompt.name != FACTS_PROMPT else False
    try:
        output = gateway.call(prompt, case.inputs).text
    except LlmProviderError as exc:
        return CaseResult(case.id, "", False, spans, False, False, (f"provider: {exc}",))
    try:
        parsed = parse_output(prompt, output)
    except ValueError as exc:
        return CaseResult(case.id, output, False, spans, False, False, (f"schema: {exc}",))
    seen = render_prompt(prompt, case.inputs).variables  # what the provider was given
    problems = []
    if spans is not None:
        _, dropped = validated_facts(seen["text"], output)
        spans = dropped == 0
        if dropped:
            problems.append(f"spans: {dropped} fact(s) whose span does not hold")
    unsupported = unsupported_facts(
        claims(parsed), "\n".join(seen.values()), quoted=not isinstance(parsed, str)
    )
    problems += [f"unfaithful: {item}" for item in unsupported]
    unmet = unmet_expectations(case.expect, parsed)
    problems += [f"expected: {item}" for item in unmet]
    return CaseResult(case.id, output, True, spans, not unsupported, not unmet, tuple(problems))


# --- gates ---------------------------------------------------------------------------------


class PromptGateSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["metric_at_least", "metric_vs_champion"]
    metric: PromptMetric
    minimum: float | None = Field(default=None, ge=0, le=1)
    tolerance: float = Field(default=0.0, ge=0)


class PromptGates(_Strict):
    gates: tuple[PromptGateSpec, ...] = Field(min_length=1)


def load_prompt_gates(path: Path, name: str) -> PromptGates:
    """The gates of one prompt from the ``prompts:`` section; a prompt with none cannot move."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise GatesConfigError(f"{path} is missing") from exc
    except yaml.YAMLError as exc:
        raise GatesConfigError(f"{path} is malformed: {str(exc).splitlines()[0]}") from exc
    section = (document.get("prompts") or {}).get(name)
    if section is None:
        raise GatesConfigError(f"{path} has no gates for prompt {name}")
    try:
        return PromptGates.model_validate(section)
    except ValidationError as exc:
        raise GatesConfigError(f"{path}: prompt {name}: {str(exc).splitlines()[0]}") from exc


def evaluate_prompt_gates(
    spec: PromptGates, candidate: PromptEvaluation, champion: PromptEvaluation | None
) -> list[GateResult]:
    """Every gate's verdict on the candidate's scores (and the champion's on the same cases)."""
    results = []
    for gate in spec.gates:
        value = candidate.metrics.get(gate.metric)
        if value is None:
            results.append(GateResult(gate.name, False, f"{gate.metric} does not apply"))
            continue
        if gate.kind == "metric_at_least":
            minimum = float(gate.minimum or 0.0)
            detail = f"{gate.metric} {value:.4f} (minimum {minimum:.4f})"
            results.append(GateResult(gate.name, value >= minimum, detail))
        elif champion is None or champion.version == candidate.version:
            detail = f"{gate.metric} {value:.4f}; no other champion to compare with"
            results.append(GateResult(gate.name, True, detail))
        else:
            baseline = champion.metrics.get(gate.metric, 0.0)
            detail = (
                f"{gate.metric} {value:.4f} vs champion {champion.label} {baseline:.4f} on the "
                f"same {len(candidate.cases)} golden cases (tolerance {gate.tolerance})"
            )
            results.append(GateResult(gate.name, value >= baseline - gate.tolerance, detail))
    return results


def metric_tags(evaluation: PromptEvaluation) -> Mapping[str, str]:
    return {f"metric.{key}": f"{value:.4f}" for key, value in evaluation.metrics.items()}
