"""The embeddings cache on a real Redis (127.0.0.1:6379), under a unique prefix, cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from decisioning.adapters.embeddings import RedisEmbeddingCache
from decisioning.conduct.embeddings import DIMENSION, Embedder

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


class CountingEncoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        rng = np.random.default_rng(len(texts))
        return rng.normal(size=(len(texts), DIMENSION)).astype(np.float32)


@pytest.fixture
def cache() -> Iterator[RedisEmbeddingCache]:
    prefix = f"test-emb-{uuid.uuid4().hex}:"
    yield RedisEmbeddingCache(REDIS_URL, prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


def test_second_embedder_reads_vectors_from_redis(cache: RedisEmbeddingCache) -> None:
    # given vectors written by one worker
    first_encoder, second_encoder = CountingEncoder(), CountingEncoder()
    texts = ["I was scammed", "my fee doubled"]
    written = Embedder(cache, load_encoder=lambda: first_encoder).embed(texts)
    # when another worker embeds the same texts through the same Redis
    read = Embedder(cache, load_encoder=lambda: second_encoder).embed(texts)
    # then it never calls its model and gets bit-identical vectors
    assert (first_encoder.calls, second_encoder.calls) == (2, 0)
    np.testing.assert_array_equal(written, read)
    stored = redis.Redis.from_url(REDIS_URL).keys(cache.prefix + "*")
    assert len(stored) == 2, "one key per distinct text"
