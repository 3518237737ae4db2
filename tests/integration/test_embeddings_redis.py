"""The embeddings cache on a real Redis (127.0.0.1:6379), under a unique prefix, cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from decisioning.adapters.embeddings import RedisEmbeddingCache, build_embedding_cache
from decisioning.conduct.embeddings import DIMENSION, Embedder
from decisioning.settings import CacheSettings

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix() -> str:
    return f"test-emb-{uuid.uuid4().hex}:"


class CountingEncoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        rng = np.random.default_rng(len(texts))
        return rng.normal(size=(len(texts), DIMENSION)).astype(np.float32)


@pytest.fixture
def cache() -> Iterator[RedisEmbeddingCache]:
    prefix = unique_prefix()
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


def test_the_cache_a_profile_builds_lets_each_vector_expire() -> None:
    # given the cache the services profile builds, with an expiry of an hour
    settings = CacheSettings(
        backend="redis", url=REDIS_URL, ttl_seconds=3600, prefix=unique_prefix()
    )
    built = build_embedding_cache(settings)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        # when a message is embedded through it
        Embedder(built, load_encoder=CountingEncoder).embed(["my card was taken"])

        # then its vector is stored under the prefix and expires within the hour
        (key,) = client.keys(settings.prefix + "*")
        assert 3500 < client.ttl(key) <= 3600
    finally:
        for key in client.scan_iter(match=settings.prefix + "*"):
            client.delete(key)
