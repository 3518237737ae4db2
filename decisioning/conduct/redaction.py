"""Redaction of personal data before any text reaches an LLM provider or an LLM call log.

Tuned for recall over precision: a digit run that might be a card is masked even if it fails the
Luhn check, because leaking a card number costs more than a lost amount. Names are masked only
where the text announces them (titles, "my name is"): free-text name detection is not reliable
enough to promise more.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_NAME = r"[A-Z][a-z'’-]+(?: [A-Z][a-z'’-]+)?"
# Order matters: the longer, more specific patterns run before the generic digit patterns.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")),
    ("CARD", re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")),
    ("SORT_CODE", re.compile(r"(?<!\d)\d{2}-\d{2}-\d{2}(?!\d)")),
    (
        "PHONE",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s-]?\(?\d{1,4}\)?|\(?0\d{2,4}\)?)[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)"
        ),
    ),
    ("ACCOUNT", re.compile(r"(?<!\d)\d{8}(?!\d)")),
)
_NAME_CONTEXTS = (
    re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.? (?P<name>{_NAME})"),
    re.compile(rf"\b[Mm]y name is (?P<name>{_NAME})"),
    re.compile(rf"\b(?:[Nn]ame|[Ss]igned|[Rr]egards|[Tt]hanks),? (?P<name>{_NAME})\s*$", re.M),
)


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int]


def redact(text: str) -> Redaction:
    """Replace personal data with ``[KIND]`` tags; counts say what was removed, never the values."""
    counts: Counter[str] = Counter()
    for kind, pattern in _PATTERNS:
        text, n = pattern.subn(f"[{kind}]", text)
        counts[kind] += n
    for pattern in _NAME_CONTEXTS:
        text, n = _replace_group(pattern, text, "name", "[NAME]")
        counts["NAME"] += n
    return Redaction(text=text, counts={kind: n for kind, n in counts.items() if n})


def _replace_group(pattern: re.Pattern[str], text: str, group: str, tag: str) -> tuple[str, int]:
    pieces, last, count = [], 0, 0
    for match in pattern.finditer(text):
        pieces.append(text[last : match.start(group)] + tag)
        last = match.end(group)
        count += 1
    pieces.append(text[last:])
    return "".join(pieces), count
