"""Fixtures for conduct unit tests: the real taxonomy and rules, and a stand-in encoder."""

from __future__ import annotations

import pytest

from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.rules import RuleSet, load_rules
from decisioning.conduct.taxonomy import Taxonomy, load_taxonomy
from tests.support.configs import CONFIGS
from tests.support.encoders import HashingEncoder


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
