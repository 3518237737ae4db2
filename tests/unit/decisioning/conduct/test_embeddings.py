from pathlib import Path

import numpy as np

from decisioning.conduct.embeddings import (
    DIMENSION,
    Embedder,
    SqliteEmbeddingCache,
    cache_key,
)

from .conftest import HashingEncoder


def test_constructing_an_embedder_loads_no_model() -> None:
    loads: list[int] = []
    Embedder(load_encoder=lambda: loads.append(1) or HashingEncoder())
    assert loads == [], "the model must load lazily, on the first miss"


def test_cache_hits_skip_the_model(tmp_path: Path, encoder: HashingEncoder) -> None:
    # given texts embedded once through a SQLite cache
    cache = SqliteEmbeddingCache(tmp_path / "emb.db")
    texts = ["I was scammed", "fees are too high", "I was scammed"]
    first = Embedder(cache, load_encoder=lambda: encoder, model_id="m").embed(texts)
    assert encoder.texts_encoded == ["I was scammed", "fees are too high"], "duplicates once"
    # when a new embedder (new process, same file) embeds them again
    fresh = HashingEncoder()
    second = Embedder(SqliteEmbeddingCache(tmp_path / "emb.db"), load_encoder=lambda: fresh)
    second.model_id = "m"
    again = second.embed(texts)
    # then the encoder is never called and the vectors are identical
    assert fresh.texts_encoded == []
    np.testing.assert_array_equal(first, again)


def test_key_separates_models_and_texts() -> None:
    assert cache_key("a", "hello") != cache_key("b", "hello")
    assert cache_key("a", "hello") != cache_key("a", "hello ")


def test_progress_counts_every_text(fake_embedder: Embedder) -> None:
    fake_embedder.batch_size = 2
    seen: list[int] = []
    vectors = fake_embedder.embed([f"text {i}" for i in range(5)], seen.append)
    assert sum(seen) == 5
    assert vectors.shape == (5, DIMENSION)


def test_empty_input_gives_an_empty_matrix(fake_embedder: Embedder) -> None:
    assert fake_embedder.embed([]).shape == (0, DIMENSION)


def test_default_memory_cache_is_bounded_and_serves_repeats(encoder: HashingEncoder) -> None:
    # given an embedder with the default in-process cache of two items
    from decisioning.conduct.embeddings import MemoryEmbeddingCache

    embedder = Embedder(MemoryEmbeddingCache(max_items=2), load_encoder=lambda: encoder)
    # when the same text is embedded twice, then the model sees it once
    embedder.embed(["a"])
    embedder.embed(["a"])
    assert encoder.texts_encoded == ["a"]
    # when two more texts push it out, then it is embedded again
    embedder.embed(["b", "c"])
    embedder.embed(["a"])
    assert encoder.texts_encoded == ["a", "b", "c", "a"]
