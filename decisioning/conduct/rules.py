"""Deterministic conduct rules (``configs/rules.yaml``) that quote the text they fire on.

Rules are the high-precision half of the hybrid: every hit carries character offsets and the exact
quoted text, so a reviewer sees why a message was flagged without trusting a model. The rule set's
version is the SHA-256 of the file, recorded with each decision for replay.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from decisioning.conduct.config_files import load_yaml_model
from decisioning.conduct.errors import ConductConfigError
from decisioning.conduct.taxonomy import Taxonomy

_WORD = re.compile(r"\S+")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Proximity(_Strict):
    first: tuple[str, ...] = Field(min_length=1)
    second: tuple[str, ...] = Field(min_length=1)
    window: int = Field(ge=1, le=50)


class RuleExamples(_Strict):
    positive: tuple[str, ...] = Field(min_length=1)
    negative: tuple[str, ...] = Field(min_length=1)


class RuleSpec(_Strict):
    """One rule as written in the file."""

    id: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    category: str
    policy_ref: str
    kind: Literal["phrase", "regex", "proximity"]
    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    near: Proximity | None = None
    examples: RuleExamples

    @model_validator(mode="after")
    def _has_matcher_for_kind(self) -> RuleSpec:
        present = {"phrase": bool(self.phrases), "regex": bool(self.patterns)}
        present["proximity"] = self.near is not None
        if not present[self.kind]:
            raise ValueError(f"rule {self.id} of kind {self.kind} has nothing to match")
        return self


class RuleFile(_Strict):
    rules: tuple[RuleSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class EvidenceSpan:
    """A quoted piece of the message: ``text == message[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class RuleHit:
    """One rule firing on one place in a message."""

    rule_id: str
    category: str
    policy_ref: str
    span: EvidenceSpan


def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class Rule:
    """A compiled rule: finds every non-overlapping hit in a text."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        try:
            if spec.kind == "phrase":
                self._patterns = [_terms_pattern(spec.phrases)]
            elif spec.kind == "regex":
                self._patterns = [re.compile(p, re.IGNORECASE) for p in spec.patterns]
            else:
                assert spec.near is not None
                self._first = _terms_pattern(spec.near.first)
                self._second = _terms_pattern(spec.near.second)
        except re.error as exc:
            raise ConductConfigError(f"rule {spec.id}: bad pattern: {exc}") from exc

    def find(self, text: str) -> list[RuleHit]:
        spans = self._proximity_spans(text) if self.spec.kind == "proximity" else self._spans(text)
        return [
            RuleHit(self.spec.id, self.spec.category, self.spec.policy_ref, span)
            for span in _without_overlaps(spans)
        ]

    def _spans(self, text: str) -> Iterator[EvidenceSpan]:
        for pattern in self._patterns:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    yield EvidenceSpan(match.start(), match.end(), match.group(0))

    def _proximity_spans(self, text: str) -> Iterator[EvidenceSpan]:
        """Pairs of terms whose word positions differ by at most the window, in either order."""
        assert self.spec.near is not None
        first_matches = list(self._first.finditer(text))
        second_matches = list(self._second.finditer(text)) if first_matches else []
        if not second_matches:  # most messages: no need to number the words
            return
        word_starts = [word.start() for word in _WORD.finditer(text)]

        def word_index(offset: int) -> int:
            return bisect.bisect_right(word_starts, offset) - 1

        firsts = [(m, word_index(m.start())) for m in first_matches]
        seconds = [(m, word_index(m.start())) for m in second_matches]
        for first, first_word in firsts:
            for second, second_word in seconds:
                overlapping = first.start() < second.end() and second.start() < first.end()
                if overlapping or abs(second_word - first_word) > self.spec.near.window:
                    continue
                start, end = min(first.start(), second.start()), max(first.end(), second.end())
                yield EvidenceSpan(start, end, text[start:end])


def _without_overlaps(spans: Iterator[EvidenceSpan]) -> list[EvidenceSpan]:
    """Keep the earliest, then longest, span of each overlapping group: one quote per place."""
    kept: list[EvidenceSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


class RuleSet:
    """All rules of one file, checked against the taxonomy, with a content-hash version."""

    def __init__(self, specs: tuple[RuleSpec, ...], source: bytes) -> None:
        self.rules = [Rule(spec) for spec in specs]
        self._source = source

    @cached_property
    def version(self) -> str:
        return "sha256:" + hashlib.sha256(self._source).hexdigest()[:16]

    def find(self, text: str) -> list[RuleHit]:
        """Every hit of every rule, in text order."""
        hits = [hit for rule in self.rules for hit in rule.find(text)]
        return sorted(hits, key=lambda hit: (hit.span.start, hit.rule_id))

    def hit_categories(self, text: str) -> set[str]:
        return {hit.category for hit in self.find(text)}


def load_rules(path: Path, taxonomy: Taxonomy) -> RuleSet:
    """Read the rules file; every rule must name a taxonomy category and have a unique id."""
    rule_file = load_yaml_model(path, RuleFile)
    ids = [spec.id for spec in rule_file.rules]
    if len(set(ids)) != len(ids):
        raise ConductConfigError(f"{path}: a rule id appears twice")
    for spec in rule_file.rules:
        if spec.category not in taxonomy.codes:
            raise ConductConfigError(f"{path}: rule {spec.id} names unknown {spec.category!r}")
    return RuleSet(rule_file.rules, path.read_bytes())
