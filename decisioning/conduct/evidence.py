"""Retrieval-backed evidence: policy clauses and past cases behind each conduct flag.

The :class:`EvidenceIndex` protocol, its documents and hits, and the ranking both backends share
(tokens, reciprocal rank fusion, snippets). The backends, SQLite FTS5 with stored vectors and
OpenSearch, are adapters (``decisioning.adapters.evidence``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field

from decisioning.conduct.config_files import load_yaml_model
from decisioning.conduct.errors import EvidenceIndexError

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

RRF_K = 60
CANDIDATES = 50
_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EvidenceDocument:
    """A policy clause or a past case that a flag can cite."""

    doc_id: str
    kind: Literal["policy", "case"]
    title: str
    text: str
    reference: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceHit:
    document: EvidenceDocument
    score: float
    snippet: str


class EvidenceIndex(Protocol):
    """Add documents; search by free text, optionally only documents tagged with a category."""

    def add(self, documents: Sequence[EvidenceDocument]) -> None: ...

    def search(self, query: str, k: int = 5, category: str | None = None) -> list[EvidenceHit]: ...

    def count(self) -> int: ...


class _Clause(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    ref: str
    title: str
    categories: tuple[str, ...] = Field(min_length=1)
    text: str


class _PolicyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str
    clauses: tuple[_Clause, ...] = Field(min_length=1)


def load_policy_documents(directory: Path) -> list[EvidenceDocument]:
    """Every clause of every ``*.yaml`` under ``configs/policies`` as a policy document."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise EvidenceIndexError(f"no policy files (*.yaml) in {directory}")
    documents = []
    for path in files:
        for clause in load_yaml_model(path, _PolicyFile).clauses:
            documents.append(
                EvidenceDocument(
                    doc_id=f"policy:{clause.id}",
                    kind="policy",
                    title=clause.title,
                    text=clause.text,
                    reference=clause.ref,
                    categories=clause.categories,
                )
            )
    return documents


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Sum of 1/(k + rank) over the rankings a document appears in (Cormack et al., 2009)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def make_snippet(text: str, query: str, max_chars: int = 240) -> str:
    """The sentence of ``text`` sharing most words with the query, cut to ``max_chars``."""
    wanted = set(tokens(query))
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()] or [text]
    best = max(sentences, key=lambda s: len(wanted & set(tokens(s))))
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


def describe_search(span: trace.Span, backend: str, category: str | None, hits: int) -> None:
    span.set_attribute("risk.retrieval.backend", backend)
    span.set_attribute("risk.retrieval.category", category or "")
    span.set_attribute("risk.retrieval.documents", hits)


def top_hits(
    query: str, fused: dict[str, float], documents: dict[str, EvidenceDocument], k: int
) -> list[EvidenceHit]:
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [
        EvidenceHit(documents[doc_id], round(score, 6), make_snippet(documents[doc_id].text, query))
        for doc_id, score in ranked
    ]
