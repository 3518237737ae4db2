from pathlib import Path

import numpy as np
import pytest

from decisioning.adapters.embeddings import MiniLmEncoder, SqliteEmbeddingCache, load_minilm_encoder
from decisioning.conduct.embeddings import (
    DIMENSION,
    Embedder,
    cache_key,
    pool_token_ranges,
    range_cache_key,
)
from decisioning.conduct.errors import EmbeddingModelError
from tests.support.encoders import HashingEncoder


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


def test_range_vectors_pool_the_tokens_inside_each_range() -> None:
    # given four tokens of "ab cd ef": [CLS] (no characters), "ab", "cd", "ef"
    tokens = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float32)
    offsets = np.array([[0, 0], [0, 2], [3, 5], [6, 8]])
    # when ranges over "ab cd", "ef" and past the end are pooled
    pooled = pool_token_ranges(tokens, offsets, [(0, 5), (6, 8), (20, 30)])
    # then each is the unit mean of its tokens, the special token in none, and the empty range 0
    np.testing.assert_allclose(pooled[0], [2**-0.5, 2**-0.5], rtol=1e-6)
    np.testing.assert_allclose(pooled[1], [0.6, 0.8], rtol=1e-6)
    assert not pooled[2].any(), "a range without tokens must be a zero row, never a unit vector"


def test_range_keys_follow_the_whole_text() -> None:
    text = "I was scammed. Please help."
    assert range_cache_key("m", text, (0, 14)) != cache_key("m", "I was scammed."), (
        "a contextual range vector must never be served as the range's own vector"
    )
    assert range_cache_key("m", text, (0, 14)) != range_cache_key("m", text + " ", (0, 14))


def test_a_message_and_its_ranges_cost_one_pass(
    fake_embedder: Embedder, encoder: HashingEncoder
) -> None:
    text = "The fee is high. Nobody answers."
    [embedding] = fake_embedder.embed_with_ranges([text], [[(0, 16), (17, 32)]])
    assert encoder.passes == 1
    assert embedding.range_vectors is not None and embedding.range_vectors.shape == (2, DIMENSION)
    np.testing.assert_array_equal(embedding.vector, fake_embedder.embed([text])[0])
    assert encoder.passes == 1, "the message vector from the ranged pass must be cached"


def test_cached_message_and_ranges_skip_the_model(
    fake_embedder: Embedder, encoder: HashingEncoder
) -> None:
    # given a message embedded with its ranges once
    text, ranges = "The fee is high. Nobody answers.", [(0, 16), (17, 32)]
    first = fake_embedder.embed_with_ranges([text], [ranges])[0]
    # when it is embedded again, then the model is not called and the vectors are the same
    again = fake_embedder.embed_with_ranges([text], [ranges])[0]
    assert encoder.passes == 1
    assert first.range_vectors is not None and again.range_vectors is not None
    np.testing.assert_array_equal(first.range_vectors, again.range_vectors)


def test_a_cached_message_without_ranges_is_encoded_only_when_they_are_required(
    fake_embedder: Embedder, encoder: HashingEncoder
) -> None:
    # given a message whose vector alone is cached (embedded for retrieval, say)
    text, ranges = "The fee is high. Nobody answers.", [(0, 16), (17, 32)]
    fake_embedder.embed([text])
    # when its ranges are optional, then the cache answers and there are no range vectors
    [optional] = fake_embedder.embed_with_ranges([text], [ranges], ranges_required=False)
    assert encoder.passes == 1 and optional.range_vectors is None
    # when they are required, then one pass gives them, and after that the cache does
    [required] = fake_embedder.embed_with_ranges([text], [ranges])
    fake_embedder.embed_with_ranges([text], [ranges])
    assert encoder.passes == 2
    assert required.range_vectors is not None and required.range_vectors.shape == (2, DIMENSION)


def test_an_encoder_that_cannot_pool_ranges_is_refused() -> None:
    def plain(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), DIMENSION), dtype=np.float32)

    embedder = Embedder(load_encoder=lambda: plain, model_id="plain")
    with pytest.raises(EmbeddingModelError, match="cannot pool"):
        embedder.embed_with_ranges(["a. b."], [[(0, 2)]])


@pytest.fixture(scope="module")
def minilm() -> MiniLmEncoder:
    return load_minilm_encoder()


@pytest.mark.slow
def test_one_pass_message_vector_equals_plain_encode(minilm: MiniLmEncoder) -> None:
    # given messages of different lengths (so the batch pads), one with surrounding spaces
    texts = [
        "  I lost my job. I can't pay the loan this month, please help!  ",
        "Why is the fee so high?",
    ]
    ranges = [[(2, 16), (17, 63)], [(0, 23)]]
    # when they are encoded once with their ranges
    vectors, range_vectors = minilm.encode_with_ranges(texts, ranges)
    # then the message vectors are the model's own, and each range vector is a unit vector
    np.testing.assert_allclose(vectors, minilm(texts), atol=1e-5)
    for pooled, text_ranges in zip(range_vectors, ranges, strict=True):
        assert pooled.shape == (len(text_ranges), DIMENSION)
        np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-5)
    # and a sentence's contextual vector stays close to the sentence encoded alone
    alone = minilm(["I can't pay the loan this month, please help!"])[0]
    assert float(range_vectors[0][1] @ alone) > 0.8


@pytest.mark.slow
def test_a_range_past_the_models_truncation_gets_a_zero_row(minilm: MiniLmEncoder) -> None:
    text = "word " * 300 + "The tail sentence."
    _, [pooled] = minilm.encode_with_ranges([text], [[(0, 9), (1500, len(text))]])
    assert pooled[0].any() and not pooled[1].any()
