"""The evidence indexes: SQLite FTS5 (BM25) with stored vectors for the embedded default, and
OpenSearch (a text field and a ``knn_vector`` field) for production.

Both implement ``decisioning.conduct.evidence.EvidenceIndex``, are held to one contract test
suite, and fuse the keyword and the vector ranking by reciprocal rank on the client
(``reciprocal_rank_fusion``), so the two backends rank alike and neither needs score
normalisation.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

from decisioning.conduct.embeddings import DIMENSION
from decisioning.conduct.errors import EvidenceIndexError
from decisioning.conduct.evidence import (
    CANDIDATES,
    EvidenceDocument,
    EvidenceHit,
    EvidenceIndex,
    TextEmbedder,
    describe_search,
    reciprocal_rank_fusion,
    tokens,
    top_hits,
)
from decisioning.settings import EvidenceSettings

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class SqliteEvidenceIndex:
    """Embedded default: FTS5 BM25 and brute-force cosine over stored vectors, fused by RRF.

    Documents and their vectors are read once and kept in memory per category until the file
    changes (``PRAGMA data_version`` tells when another connection wrote to it), rather than read
    and decoded on every search.
    """

    def __init__(self, path: Path | str, embedder: TextEmbedder) -> None:
        self._path = str(path)
        self._embedder = embedder
        self._connection: sqlite3.Connection | None = None
        self._loaded_version: int | None = None
        self._by_category: dict[str | None, tuple[dict[str, EvidenceDocument], np.ndarray]] = {}

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                if self._path != ":memory:":
                    Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path)
                db.executescript(
                    """
                    CREATE TABLE IF NOT EXISTS documents (
                        doc_id TEXT PRIMARY KEY, kind TEXT, title TEXT, text TEXT,
                        reference TEXT, categories TEXT, vector BLOB);
                    CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts
                        USING fts5(doc_id UNINDEXED, title, text);
                    """
                )
            except (OSError, sqlite3.Error) as exc:
                raise EvidenceIndexError(f"evidence index {self._path}: {exc}") from exc
            self._connection = db
        return self._connection

    def add(self, documents: Sequence[EvidenceDocument]) -> None:
        """Insert or replace documents (same ``doc_id`` replaces)."""
        if not documents:
            return
        vectors = self._embedder.embed([f"{d.title}. {d.text}" for d in documents])
        db = self._db()
        with db:
            ids = [(d.doc_id,) for d in documents]
            db.executemany("DELETE FROM documents_fts WHERE doc_id = ?", ids)
            db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        d.doc_id,
                        d.kind,
                        d.title,
                        d.text,
                        d.reference,
                        json.dumps(d.categories),
                        np.asarray(v, dtype=np.float32).tobytes(),
                    )
                    for d, v in zip(documents, vectors, strict=True)
                ],
            )
            db.executemany(
                "INSERT INTO documents_fts (doc_id, title, text) VALUES (?, ?, ?)",
                [(d.doc_id, d.title, d.text) for d in documents],
            )
        self._by_category.clear()  # this connection's own writes leave data_version unchanged

    def count(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def search(self, query: str, k: int = 5, category: str | None = None) -> list[EvidenceHit]:
        with tracer.start_as_current_span("retrieval") as span:
            documents, vectors = self._documents(category)
            hits: list[EvidenceHit] = []
            if documents:
                keyword = self._bm25_ranking(query, set(documents))
                query_vector = self._embedder.embed([query])[0]
                order = np.argsort(-(vectors @ query_vector), kind="stable")[:CANDIDATES]
                ids = list(documents)
                semantic = [ids[i] for i in order]
                fused = reciprocal_rank_fusion([keyword, semantic])
                hits = top_hits(query, fused, documents, k)
            describe_search(span, "sqlite", category, len(hits))
            return hits

    def _documents(self, category: str | None) -> tuple[dict[str, EvidenceDocument], np.ndarray]:
        version = int(self._db().execute("PRAGMA data_version").fetchone()[0])
        if version != self._loaded_version:
            self._by_category.clear()
            self._loaded_version = version
        if category not in self._by_category:
            self._by_category[category] = self._load(category)
        return self._by_category[category]

    def _load(self, category: str | None) -> tuple[dict[str, EvidenceDocument], np.ndarray]:
        rows = self._db().execute(
            "SELECT doc_id, kind, title, text, reference, categories, vector FROM documents"
        )
        documents: dict[str, EvidenceDocument] = {}
        vectors: list[np.ndarray] = []
        for doc_id, kind, title, text, reference, categories, blob in rows:
            tags = tuple(json.loads(categories))
            if category is not None and category not in tags:
                continue
            documents[doc_id] = EvidenceDocument(doc_id, kind, title, text, reference, tags)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        matrix = np.stack(vectors) if vectors else np.zeros((0, DIMENSION), dtype=np.float32)
        return documents, matrix

    def _bm25_ranking(self, query: str, allowed: set[str]) -> list[str]:
        words = sorted(set(tokens(query)))
        if not words:
            return []
        match = " OR ".join(f'"{word}"' for word in words)  # quoted: no FTS5 syntax from users
        rows = self._db().execute(
            "SELECT doc_id FROM documents_fts WHERE documents_fts MATCH ? "
            "ORDER BY bm25(documents_fts) LIMIT ?",
            (match, CANDIDATES * 4),
        )
        return [doc_id for (doc_id,) in rows if doc_id in allowed][:CANDIDATES]


class OpenSearchEvidenceIndex:
    """Production backend: BM25 on ``text`` and k-NN on ``embedding``, fused by RRF."""

    def __init__(self, url: str, embedder: TextEmbedder, index_name: str = "conduct-evidence"):
        from opensearchpy import OpenSearch

        self._client = OpenSearch(hosts=[url], timeout=10)
        self._embedder = embedder
        self.index_name = index_name
        self._ready = False

    def mapping(self) -> dict[str, Any]:
        """The index body: a k-NN index with a text field and a cosine ``knn_vector`` field."""
        keyword = {"type": "keyword"}
        return {
            "settings": {"index": {"knn": True, "number_of_shards": 1}},
            "mappings": {
                "properties": {
                    "doc_id": keyword,
                    "kind": keyword,
                    "reference": keyword,
                    "categories": keyword,
                    "title": {"type": "text"},
                    "text": {"type": "text"},
                    "embedding": {
                        "type": "knn_vector",
                        "dimension": DIMENSION,
                        "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"},
                    },
                }
            },
        }

    def _ensure_index(self) -> None:
        if self._ready:
            return
        from opensearchpy.exceptions import OpenSearchException

        try:
            if not self._client.indices.exists(index=self.index_name):
                self._client.indices.create(index=self.index_name, body=self.mapping())
        except OpenSearchException as exc:
            raise EvidenceIndexError(f"opensearch index {self.index_name}: {exc}") from exc
        self._ready = True

    def add(self, documents: Sequence[EvidenceDocument]) -> None:
        if not documents:
            return
        from opensearchpy import helpers

        self._ensure_index()
        vectors = self._embedder.embed([f"{d.title}. {d.text}" for d in documents])
        actions = [
            {
                "_index": self.index_name,
                "_id": d.doc_id,
                "_source": {
                    "doc_id": d.doc_id,
                    "kind": d.kind,
                    "title": d.title,
                    "text": d.text,
                    "reference": d.reference,
                    "categories": list(d.categories),
                    "embedding": [float(x) for x in v],
                },
            }
            for d, v in zip(documents, vectors, strict=True)
        ]
        helpers.bulk(self._client, actions, refresh="wait_for")

    def count(self) -> int:
        self._ensure_index()
        return int(self._client.count(index=self.index_name)["count"])

    def search(self, query: str, k: int = 5, category: str | None = None) -> list[EvidenceHit]:
        with tracer.start_as_current_span("retrieval") as span:
            self._ensure_index()
            filters = [{"term": {"categories": category}}] if category else []
            keyword_query = {
                "bool": {
                    "must": [{"multi_match": {"query": query, "fields": ["title", "text"]}}],
                    "filter": filters,
                }
            }
            vector = [float(x) for x in self._embedder.embed([query])[0]]
            knn: dict[str, Any] = {"vector": vector, "k": CANDIDATES}
            if filters:
                knn["filter"] = {"bool": {"filter": filters}}
            keyword_hits = self._hits(keyword_query)
            semantic_hits = self._hits({"knn": {"embedding": knn}})
            documents = {**keyword_hits, **semantic_hits}
            fused = reciprocal_rank_fusion([list(keyword_hits), list(semantic_hits)])
            hits = top_hits(query, fused, documents, k)
            describe_search(span, "opensearch", category, len(hits))
            return hits

    def _hits(self, query: dict[str, Any]) -> dict[str, EvidenceDocument]:
        from opensearchpy.exceptions import OpenSearchException

        body = {"size": CANDIDATES, "query": query, "_source": {"excludes": ["embedding"]}}
        try:
            response = self._client.search(index=self.index_name, body=body)
        except OpenSearchException as exc:
            raise EvidenceIndexError(f"opensearch search on {self.index_name}: {exc}") from exc
        ranked: dict[str, EvidenceDocument] = {}
        for hit in response["hits"]["hits"]:
            source = hit["_source"]
            ranked[source["doc_id"]] = EvidenceDocument(
                doc_id=source["doc_id"],
                kind=source["kind"],
                title=source["title"],
                text=source["text"],
                reference=source["reference"],
                categories=tuple(source["categories"]),
            )
        return ranked

    def drop(self) -> None:
        """Delete the index (tests and re-builds)."""
        self._client.indices.delete(index=self.index_name, ignore_unavailable=True)
        self._ready = False


def build_evidence_index(settings: EvidenceSettings, embedder: TextEmbedder) -> EvidenceIndex:
    """The backend the profile asks for (``evidence`` in configs/profiles)."""
    if settings.backend == "opensearch":
        return OpenSearchEvidenceIndex(settings.url, embedder)
    return SqliteEvidenceIndex(Path(settings.url), embedder)
