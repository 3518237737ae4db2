"""Redaction of personal data before any text reaches an LLM provider or an LLM call log.

Tuned for recall over precision: a digit run that might be a card is masked even if it fails the
Luhn check, because leaking a card number costs more than a lost amount. Names are masked only
where the text announces them (titles, "my name is"): free-text name detection is not reliable
enough to promise more.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

_NAME = r"[A-Z][a-z'’-]+(?: [A-Z][a-z'’-]+)?"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LOCAL_PART = re.compile(r"[\w.+-]*")  # EMAIL's, matched on the reversed text


class _Pattern(Protocol):
    def finditer(self, text: str) -> Iterator[re.Match[str]]: ...

    def sub(self, tag: str, text: str) -> str: ...


class _Emails:
    """:data:`EMAIL`'s matches, found from each "@" rather than from each character.

    The regular expression tries every start in a run of word characters and reads the run to
    its end each time: quadratic in a long run (a 12,000-character message ending in "@" cost
    seconds, issue 19). A match's local part holds no "@", so it is the run of its characters
    just before an "@" (from the end of the previous match at the earliest), read once backwards
    on the reversed text; its leftmost start is that run's first character. The matches are the
    regular expression's own, each found with ``EMAIL.match`` from that start.
    """

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        at = text.find("@")
        if at == -1:
            return
        reverse, position = text[::-1], 0
        while at != -1:
            local = _LOCAL_PART.match(reverse, len(text) - at, len(text) - position)
            start = at - (local.end() - local.start()) if local else at
            match = EMAIL.match(text, start) if start < at else None
            if match is not None:
                yield match
                position = match.end()
                at = text.find("@", position)
            else:
                at = text.find("@", at + 1)

    def sub(self, tag: str, text: str) -> str:
        pieces, last = [], 0
        for match in self.finditer(text):
            pieces += [text[last : match.start()], tag]
            last = match.end()
        return "".join(pieces) + text[last:] if pieces else text


# Order matters: the longer, more specific patterns run before the generic digit patterns.
_PATTERNS: tuple[tuple[str, _Pattern], ...] = (
    ("EMAIL", _Emails()),
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

# What each pattern above cannot match without: an e-mail's "@", the words before a name, an
# IBAN's country and check digits, six digits with at most one space or dash between each (the
# shortest run of a card, a sort code, a phone number or an account). Keep it a superset when a
# pattern changes (tests/unit/decisioning/conduct/test_redaction.py compares with the full path).
# Separate checks, cheapest first: one alternation of them all cost 9 us on an access line.
_NAME_WORDS = ("Mr", "Ms", "Mx", "Miss", "Dr", "name", "Name", "igned", "egards", "hanks")
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")
_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){5}")


def _may_hold_personal_data(text: str) -> bool:
    return (
        "@" in text
        or any(word in text for word in _NAME_WORDS)
        or _IBAN_START.search(text) is not None
        or _DIGIT_RUN.search(text) is not None
    )


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int]
    # For each character of ``text``, its offset in the original, or None inside a tag: where a
    # span of the redacted text came from, exactly, whatever the tags before it replaced.
    origins: tuple[int | None, ...] = ()

    def original_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The original offsets of ``text[start:end]``; None if it touches a tag or a cut."""
        if not 0 <= start < end <= len(self.origins):
            return None
        first = self.origins[start]
        if first is None or self.origins[end - 1] != first + (end - start - 1):
            return None
        if any(o is None for o in self.origins[start:end]):
            return None
        return first, first + (end - start)


def redact(text: str) -> Redaction:
    """Replace personal data with ``[KIND]`` tags; counts say what was removed, never the values."""
    counts: Counter[str] = Counter()
    origins: list[int | None] = list(range(len(text)))
    for kind, pattern in _PATTERNS:
        text, origins, n = _replace_group(pattern, text, origins, 0, f"[{kind}]")
        counts[kind] += n
    for pattern in _NAME_CONTEXTS:
        text, origins, n = _replace_group(pattern, text, origins, "name", "[NAME]")
        counts["NAME"] += n
    kept = {kind: n for kind, n in counts.items() if n}
    return Redaction(text=text, counts=kept, origins=tuple(origins))


def redact_text(text: str) -> str:
    """The text :func:`redact` gives, without counts or offsets: for log lines, where the offset
    map (a list as long as the text, per pattern) cost most of a line's redaction. A text holding
    nothing any pattern needs is returned as it is (most log lines: an access line 36 -> 5 us)."""
    if not _may_hold_personal_data(text):
        return text
    for kind, pattern in _PATTERNS:
        text = pattern.sub(f"[{kind}]", text)
    for pattern in _NAME_CONTEXTS:
        text = pattern.sub(_name_tag, text)
    return text


def _name_tag(match: re.Match[str]) -> str:
    """The match with its ``name`` group replaced by ``[NAME]`` (what :func:`redact` does)."""
    whole, start, end = match.group(), match.start(), match.start("name")
    return whole[: end - start] + "[NAME]" + whole[match.end("name") - start :]


def _replace_group(
    pattern: _Pattern | re.Pattern[str],
    text: str,
    origins: list[int | None],
    group: int | str,
    tag: str,
) -> tuple[str, list[int | None], int]:
    """``pattern``'s ``group`` replaced by ``tag`` everywhere, with each character's origin."""
    pieces: list[str] = []
    placed: list[int | None] = []
    last, count = 0, 0
    for match in pattern.finditer(text):
        pieces += [text[last : match.start(group)], tag]
        placed += origins[last : match.start(group)] + [None] * len(tag)
        last = match.end(group)
        count += 1
    pieces.append(text[last:])
    placed += origins[last:]
    return "".join(pieces), placed, count
