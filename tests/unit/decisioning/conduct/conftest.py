"""Fixtures for conduct unit tests: the real configs and a fast, deterministic stand-in encoder."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from decisioning.conduct.embeddings import DIMENSION, Embedder, TextRange
from decisioning.conduct.rules import RuleSet, load_rules
from decisioning.conduct.taxonomy import Taxonomy, load_taxonomy

CONFIGS = Path(__file__).resolve().parents[4] / "configs"


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access logs."""

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free port while the block runs; yields its ``/v1`` URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


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


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy(CONFIGS / "taxonomy.yaml")


@pytest.fixture(scope="session")
def rules(taxonomy: Taxonomy) -> RuleSet:
    return load_rules(CONFIGS / "rules.yaml", taxonomy)


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def fake_embedder(encoder: HashingEncoder) -> Embedder:
    return Embedder(load_encoder=lambda: encoder, model_id="test/hashing")
