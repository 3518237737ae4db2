"""The EvidenceIndex contract, run against every backend (OpenSearch only with OPENSEARCH_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisioning.adapters.evidence import OpenSearchEvidenceIndex, SqliteEvidenceIndex
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.evidence import (
    EvidenceDocument,
    EvidenceIndex,
    load_policy_documents,
    make_snippet,
    reciprocal_rank_fusion,
)
from tests.support.configs import CONFIGS

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL", "")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "opensearch",
            marks=[
                pytest.mark.integration,
                pytest.mark.skipif(not OPENSEARCH_URL, reason="OPENSEARCH_URL is not set"),
            ],
        ),
    ]
)
def index(
    request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: Embedder
) -> Iterator[EvidenceIndex]:
    if request.param == "sqlite":
        yield SqliteEvidenceIndex(tmp_path / "evidence.db", fake_embedder)
        return
    backend = OpenSearchEvidenceIndex(OPENSEARCH_URL, fake_embedder, f"test-{uuid.uuid4().hex}")
    yield backend
    backend.drop()


@pytest.fixture
def policies() -> list[EvidenceDocument]:
    return load_policy_documents(CONFIGS / "policies")


def test_policy_clauses_cover_every_category(policies: list[EvidenceDocument], taxonomy) -> None:
    covered = {code for document in policies for code in document.categories}
    assert covered == set(taxonomy.codes), "each category needs a clause to cite"


def test_add_is_idempotent_by_doc_id(
    index: EvidenceIndex, policies: list[EvidenceDocument]
) -> None:
    index.add(policies)
    index.add(policies[:3])
    assert index.count() == len(policies)


def test_search_finds_the_clause_about_the_query(
    index: EvidenceIndex, policies: list[EvidenceDocument]
) -> None:
    # given all policy clauses indexed
    index.add(policies)
    # when searching for an unauthorised payment report
    hits = index.search("refund a payment I did not authorise", k=3)
    # then the PSRs clause ranks first, with a snippet from its own text and a positive score
    assert hits[0].document.reference == "PSRs 2017 reg. 76", [h.document.doc_id for h in hits]
    assert hits[0].snippet and hits[0].snippet.rstrip("…") in hits[0].document.text
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_category_filter_returns_only_that_category(
    index: EvidenceIndex, policies: list[EvidenceDocument]
) -> None:
    index.add(policies)
    hits = index.search("customer complaint ignored", k=5, category="conduct.data_misuse")
    assert hits and all("conduct.data_misuse" in h.document.categories for h in hits)


def test_past_cases_are_searchable_beside_policies(
    index: EvidenceIndex, policies: list[EvidenceDocument]
) -> None:
    case = EvidenceDocument(
        "case:M1", "case", "Past case M1", "Customer moved savings to a safe account on a call.",
        "M1", ("conduct.scam_report",),
    )  # fmt: skip
    index.add([*policies, case])
    hits = index.search("safe account call", k=3, category="conduct.scam_report")
    assert "case:M1" in [h.document.doc_id for h in hits]


def test_empty_index_returns_nothing(index: EvidenceIndex) -> None:
    assert index.search("anything at all") == []


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]])
    assert fused["a"] == fused["b"] > fused["c"] == fused["d"]


def test_snippet_picks_the_matching_sentence() -> None:
    text = "Firms must be fair. Refunds are due by the next business day. Other text."
    assert (
        make_snippet(text, "when is my refund due") == "Refunds are due by the next business day."
    )
