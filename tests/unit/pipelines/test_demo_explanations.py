"""The demo's table shows each decision's explanation; the demo fails when one is missing."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from pipelines.commands.demo import DemoFailed, require_explained
from pipelines.commands.serve import decision_table


def decision(decision_id: str, action: str) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "subject": "transaction",
        "action": action,
        "risk_score": 0.5,
        "risk_category": "fraud.card_testing",
        "reason_codes": [{"code": "velocity.burst_10m", "description": "9 payments"}],
        "evidence": [],
        "degraded": [],
    }


def rendered(table: object) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


def test_the_table_has_an_explanation_column_only_when_given_explanations() -> None:
    decisions = [decision("dec_a", "review"), decision("dec_b", "approve")]

    with_column = rendered(decision_table(decisions, {"dec_a": "Sent to review as card testing."}))
    without = rendered(decision_table(decisions))

    assert "explanation" in with_column and "Sent to review as card testing." in with_column
    assert "explanation" not in without


def test_every_review_and_escalation_must_be_explained_and_nothing_else() -> None:
    decisions = [decision("dec_a", "review"), decision("dec_b", "escalate")]
    decisions.append(decision("dec_c", "approve"))

    require_explained(decisions, {"dec_a": "x", "dec_b": "y"})
    with pytest.raises(DemoFailed, match="1 review/escalate decisions have none"):
        require_explained(decisions, {"dec_a": "x"})
    with pytest.raises(DemoFailed, match="1 others have one"):
        require_explained(decisions, {"dec_a": "x", "dec_b": "y", "dec_c": "z"})


def test_customer_and_llm_text_is_shown_as_written_never_as_markup() -> None:
    quoted = decision("dec_a", "review")
    quoted["evidence"] = [{"kind": "span", "reference": "m1:rule", "quote": "paid [/i] today"}]
    explanation = "See [link=https://evil.example]the policy[/link] [bold]now[/bold]."

    shown = rendered(decision_table([quoted], {"dec_a": explanation}))

    assert "[/i]" in shown, "a closing tag in a quote must not raise MarkupError or vanish"
    assert "[link=https://evil.example]" in shown and "[bold]" in shown, "no hidden link"
