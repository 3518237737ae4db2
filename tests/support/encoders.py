"""A fast, deterministic stand-in for the sentence encoder, for tests of embeddings and conduct."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from decisioning.conduct.embeddings import DIMENSION, TextRange


class HashingEncoder:
    """Bag-of-words hashed into DIMENSION buckets: texts sharing words get similar vectors.

    Counts its forward passes and the texts they saw, so tests can prove a cache hit never
    reaches the encoder and a message with its sentences costs one pass. A range's vector hashes
    the range's own words (a bag of words has no context).
    """

    def __init__(self) -> None:
        self.texts_encoded: list[str] = []
        self.passes = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.passes += 1
        self.texts_encoded.extend(texts)
        return _hashed(texts)

    def encode_with_ranges(
        self, texts: list[str], ranges: Sequence[Sequence[TextRange]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        self.passes += 1
        self.texts_encoded.extend(texts)
        pooled = [
            _hashed([text[start:end] for start, end in text_ranges])
            for text, text_ranges in zip(texts, ranges, strict=True)
        ]
        return _hashed(texts), pooled


def _hashed(texts: list[str]) -> np.ndarray:
    matrix = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            matrix[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSION] += 1.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
