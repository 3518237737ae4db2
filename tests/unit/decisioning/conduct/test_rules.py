from pathlib import Path

import pytest
import yaml

from decisioning.conduct.errors import ConductConfigError
from decisioning.conduct.rules import RuleSet, load_rules
from decisioning.conduct.taxonomy import Taxonomy
from tests.support.configs import CONFIGS

RULES = yaml.safe_load((CONFIGS / "rules.yaml").read_text())["rules"]
POSITIVES = [(r["id"], text) for r in RULES for text in r["examples"]["positive"]]
NEGATIVES = [(r["id"], text) for r in RULES for text in r["examples"]["negative"]]


@pytest.mark.parametrize(("rule_id", "text"), POSITIVES)
def test_rule_fires_on_its_positive_example(rules: RuleSet, rule_id: str, text: str) -> None:
    hits = [hit for hit in rules.find(text) if hit.rule_id == rule_id]
    assert hits, f"{rule_id} should fire on {text!r}"


@pytest.mark.parametrize(("rule_id", "text"), NEGATIVES)
def test_rule_is_silent_on_its_negative_example(rules: RuleSet, rule_id: str, text: str) -> None:
    hits = [hit for hit in rules.find(text) if hit.rule_id == rule_id]
    assert not hits, f"{rule_id} should not fire on {text!r}, quoted {hits[0].span.text!r}"


@pytest.mark.parametrize(("rule_id", "text"), POSITIVES)
def test_span_offsets_quote_the_text_exactly(rules: RuleSet, rule_id: str, text: str) -> None:
    for hit in rules.find(text):
        assert text[hit.span.start : hit.span.end] == hit.span.text
        assert hit.span.text.strip() == hit.span.text, "a quote should not start or end blank"


def test_offsets_survive_a_prefix(rules: RuleSet) -> None:
    # given a hit, when text is prepended, then the span moves by exactly the prefix length
    text = "I was scammed by a caller."
    prefix = "Dear team, ünïcode first. "
    before = rules.find(text)[0].span
    after = rules.find(prefix + text)[0].span
    assert (after.start, after.end) == (before.start + len(prefix), before.end + len(prefix))


def test_proximity_needs_both_terms_within_the_window(rules: RuleSet) -> None:
    near = "My complaint has been ignored."
    far = "My complaint " + "and then more words here " * 4 + "was ignored."
    assert any(h.rule_id == "complaint.ignored" for h in rules.find(near))
    assert not any(h.rule_id == "complaint.ignored" for h in rules.find(far))


def test_version_is_a_content_hash(tmp_path: Path, taxonomy: Taxonomy) -> None:
    # given two rule files that differ by one byte of content
    original = (CONFIGS / "rules.yaml").read_text()
    (tmp_path / "a.yaml").write_text(original)
    (tmp_path / "b.yaml").write_text(original + "\n# edited\n")
    # then their versions differ, and reloading the same content gives the same version
    a, b = load_rules(tmp_path / "a.yaml", taxonomy), load_rules(tmp_path / "b.yaml", taxonomy)
    assert a.version != b.version
    assert a.version == load_rules(tmp_path / "a.yaml", taxonomy).version


def test_rule_naming_an_unknown_category_is_rejected(tmp_path: Path, taxonomy: Taxonomy) -> None:
    bad = {"rules": [{**RULES[0], "category": "conduct.nope"}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ConductConfigError, match=r"conduct\.nope"):
        load_rules(tmp_path / "rules.yaml", taxonomy)
