from pathlib import Path

import pytest

from decisioning.conduct.errors import ConductConfigError, UnknownCategoryError
from decisioning.conduct.taxonomy import Taxonomy, load_taxonomy

EXPECTED_CODES = {
    "conduct.vulnerable_customer",
    "conduct.unclear_communication",
    "conduct.unsuitable_product",
    "conduct.price_and_value",
    "conduct.barriers_to_support",
    "conduct.complaint_mishandling",
    "conduct.financial_difficulty",
    "conduct.scam_report",
    "conduct.data_misuse",
}


def test_taxonomy_has_exactly_the_contract_codes(taxonomy: Taxonomy) -> None:
    assert set(taxonomy.codes) == EXPECTED_CODES, "codes are a contract with the simulator"
    assert taxonomy.neutral == "none"


def test_every_category_cites_policy_and_has_a_severity(taxonomy: Taxonomy) -> None:
    for category in taxonomy.categories:
        assert category.policy_refs, f"{category.code} cites no policy"
        assert taxonomy.severity_of(category.code) in {"low", "medium", "high", "critical"}


def test_unknown_code_is_an_error_not_neutral(taxonomy: Taxonomy) -> None:
    with pytest.raises(UnknownCategoryError, match=r"conduct\.nonsense"):
        taxonomy.category("conduct.nonsense")
    assert taxonomy.severity_of("none") == "none"


def test_repeated_code_is_rejected(tmp_path: Path, taxonomy: Taxonomy) -> None:
    # given a taxonomy file that lists one category twice
    data = taxonomy.model_dump(mode="json")
    data["categories"].append(data["categories"][0])
    path = tmp_path / "taxonomy.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    # when / then loading it fails with the file named
    with pytest.raises(ConductConfigError, match="appears twice"):
        load_taxonomy(path)
