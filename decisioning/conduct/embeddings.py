"""Embeddings: batched, cached by content hash, over an encoder and a cache given to it.

The one model is all-MiniLM-L6-v2 (``MODEL_ID``); its torch encoder and the SQLite and Redis
caches are adapters (``decisioning.adapters.embeddings``). Vectors are cached under
``<model id>:<sha256 of text>`` so a model change can never serve stale vectors.

One forward pass can also give vectors for character ranges of a text (its sentences): the mean
of the text's own token embeddings over each range. They are *contextual approximations* of
embedding each range alone (every token has seen the whole text), cheap because they need no
second pass; they are cached under ``<model id>:<sha256 of text>:<start>-<end>``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from opentelemetry import trace

from decisioning.conduct.errors import EmbeddingModelError

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


class Embedder:
    """Batch embeddings with a content-hash cache; the model loads on the first cache miss."""

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        *,
        batch_size: int = 64,
        load_encoder: Callable[[], Encoder],
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
