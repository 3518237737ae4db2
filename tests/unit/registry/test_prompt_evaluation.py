"""Prompt versions scored on their golden sets: schema, spans, faithfulness, expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decisioning.adapters.llm.gateway import (
    Completion,
    InMemoryLlmCallRecorder,
    LlmGateway,
    OfflineProvider,
    RenderedPrompt,
)
from decisioning.conduct.prompts import load_prompt
from registry.prompt_evaluation import (
    evaluate_prompt,
    evaluate_prompt_gates,
    load_golden_set,
    load_prompt_gates,
    unsupported_facts,
)
from registry.prompt_promotion import evaluate_against_gates
from tests.support.configs import CONFIGS

PROMPTS = CONFIGS / "prompts"
NAMES = sorted(p.parent.name for p in PROMPTS.glob("*/v1.yaml"))


class ScriptedProvider:
    """Answers every prompt with one fixed output, as a misbehaving model would."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, output: str) -> None:
        self.output = output

    def complete(self, prompt: RenderedPrompt) -> Completion:
        return Completion(self.output)


def _gateway(provider: object) -> LlmGateway:
    return LlmGateway(provider, PROMPTS, InMemoryLlmCallRecorder())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_every_prompt_has_a_golden_set_the_offline_provider_is_faithful_on(name: str) -> None:
    # given the prompt's golden set, when its highest version runs on the offline provider
    cases = load_golden_set(PROMPTS, name)
    evaluation = evaluate_prompt(_gateway(OfflineProvider()), load_prompt(PROMPTS, name), cases)
    # then every output has the declared shape and states nothing the input does not hold
    assert len(cases) >= 5, f"{name}: a golden set of at least five cases"
    assert evaluation.metrics["schema_validity"] == 1.0, evaluation.cases
    assert evaluation.metrics["faithfulness"] == 1.0, [c.problems for c in evaluation.cases]
    assert evaluation.metrics["expectations"] >= 0.8, [c.problems for c in evaluation.cases]
    gated = evaluate_against_gates(
        _gateway(OfflineProvider()),
        PROMPTS,
        name,
        None,
        load_prompt_gates(CONFIGS / "gates.yaml", name),
        None,
    )
    assert not gated.failed, f"the shipped gates pass on the offline provider: {gated.failed}"


def test_an_explanation_that_invents_a_number_is_unfaithful() -> None:
    # given a provider that adds an amount and a date that no reason or evidence holds
    invented = (
        "Sent to review as fraud because velocity.burst_10m: 6 payments in the last 10 minutes; "
        "the customer lost £9,999 on 12 March."
    )
    name = "decision_explanation"
    cases = load_golden_set(PROMPTS, name)
    evaluation = evaluate_prompt(
        _gateway(ScriptedProvider(invented)), load_prompt(PROMPTS, name), cases[:1]
    )
    # then the case is unfaithful and says which facts were invented
    (case,) = evaluation.cases
    assert case.schema_valid, "plain text is the declared shape of an explanation"
    assert not case.faithful and evaluation.metrics["faithfulness"] == 0.0
    assert "unfaithful: number 9,999" in case.problems, case.problems
    assert "unfaithful: date 12 march" in case.problems, case.problems
    assert not any("velocity" in p or "number 6" in p for p in case.problems), "6 is in the input"


def test_faithfulness_flags_codes_and_quotes_the_input_lacks() -> None:
    source = '- conduct.scam_report: scam\n- span msg_1:rule: "moved £2,500 to a safe account"'
    claims = ['Escalated under conduct.scam_report and FRAUD_99: "moved £2,500 to a new payee"']
    missing = unsupported_facts(claims, source, quoted=False)
    assert set(missing) == {"code FRAUD_99", "number 99", 'quote "moved £2,500 to a new payee"'}
    assert unsupported_facts(['Escalated: "moved £2,500 to a safe account"'], source, False) == []


def test_extraction_with_a_span_off_the_text_and_an_invented_fact_fails_its_gates() -> None:
    # given a provider whose facts quote the text at the wrong offsets, and one fact not there
    name = "conduct_facts"
    case = load_golden_set(PROMPTS, name)[0]  # "... I pulled out 30 pounds ..."
    facts = [
        {"kind": "amount", "text": "30 pounds", "start": 0, "end": 9},
        {"kind": "amount", "text": "£75", "start": 10, "end": 13},
    ]
    gateway = _gateway(ScriptedProvider(json.dumps({"facts": facts})))
    evaluation = evaluate_prompt(gateway, load_prompt(PROMPTS, name), [case])
    # then spans, faithfulness and expectations fail; the shape itself is valid
    assert evaluation.metrics == {
        "schema_validity": 1.0,
        "faithfulness": 0.0,
        "expectations": 0.0,
        "span_validity": 0.0,
    }, evaluation.cases
    results = evaluate_prompt_gates(
        load_prompt_gates(CONFIGS / "gates.yaml", name), evaluation, None
    )
    failed = {r.name for r in results if not r.passed}
    assert {"span_validity_floor", "faithfulness_floor", "expectations_floor"} <= failed


def test_output_that_is_not_the_declared_shape_is_schema_invalid() -> None:
    name = "conduct_extraction"
    gateway = _gateway(ScriptedProvider('{"amounts": ["£5"], "dates": []}'))  # no products
    evaluation = evaluate_prompt(
        gateway, load_prompt(PROMPTS, name), load_golden_set(PROMPTS, name)
    )
    assert evaluation.metrics["schema_validity"] == 0.0
    assert all(c.problems[0].startswith("schema:") for c in evaluation.cases)


def test_a_prompt_without_gates_cannot_be_judged(tmp_path: Path) -> None:
    from registry.errors import GatesConfigError

    gates = tmp_path / "gates.yaml"
    gates.write_text("models: {}\n")
    with pytest.raises(GatesConfigError, match="no gates for prompt conduct_facts"):
        load_prompt_gates(gates, "conduct_facts")
