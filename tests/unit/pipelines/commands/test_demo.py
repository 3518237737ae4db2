"""The demo's table shows each decision's explanation; the demo fails when one is missing or when
the trace it points to is not in the service's log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from decisioning.adapters.llm.explanation import UNAVAILABLE, DecisionExplanation
from pipelines.commands.demo import DemoFailed, require_explained, require_traced
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


def explanation(decision_id: str, status: str = "ok") -> DecisionExplanation:
    return DecisionExplanation.model_validate(
        {
            "decision_id": decision_id,
            "decision_seq": 1,
            "decision_row_hash": "0" * 64,
            "action": "review",
            "status": status,
            "prompt_name": "decision_explanation",
            "prompt_version": "decision_explanation@1",
            "provider": "OfflineProvider",
            "model": "offline-template",
            "input_hash": "sha256:" + "0" * 64,
            "output": "Sent to review." if status == "ok" else UNAVAILABLE,
            "call_id": "c1" if status == "ok" else "",
            "error": "" if status == "ok" else "circuit open after repeated provider failures",
        }
    )


def explained(*decision_ids: str) -> dict[str, DecisionExplanation]:
    return {decision_id: explanation(decision_id) for decision_id in decision_ids}


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


def test_the_explanation_is_readable_at_the_width_the_demo_prints_to_a_file() -> None:
    # given the demo's console width when its output is not a terminal (a log, CI): 160 columns
    from pipelines.commands.serve import console

    # and a decision whose other cells fill their columns, as the demo's do
    long_cells = {
        "risk_category": "conduct.unclear_communication_x",
        "reason_codes": [
            {"code": "velocity.long_term_ratio", "description": "x"},
            {"code": "velocity.burst_10m_count", "description": "y"},
        ],
        "evidence": [{"kind": "text", "quote": "the letter you sent makes no sense " * 3}],
    }
    decisions = [{**decision("dec_a", "review"), **long_cells}]
    text = "Sent to review: nine payments at one terminal in ten minutes."
    console_width = console.width if console.width else 160

    # when the table with explanations is printed at that width
    console_out = Console(width=console_width, record=True)
    console_out.print(decision_table(decisions, {"dec_a": text}))
    shown = " ".join(console_out.export_text().split())

    # then the explanation's words are there (the column was once squeezed to nothing)
    for word in ("nine", "payments", "terminal", "minutes."):
        assert word in shown, f"{word!r} missing from the table at {console_width} columns"


def test_every_review_and_escalation_must_be_explained_and_nothing_else() -> None:
    decisions = [decision("dec_a", "review"), decision("dec_b", "escalate")]
    decisions.append(decision("dec_c", "approve"))

    require_explained(decisions, explained("dec_a", "dec_b"), offline=True)
    with pytest.raises(DemoFailed, match="1 review/escalate decisions have none"):
        require_explained(decisions, explained("dec_a"), offline=True)
    with pytest.raises(DemoFailed, match="1 others have one"):
        require_explained(decisions, explained("dec_a", "dec_b", "dec_c"), offline=True)


def test_an_unavailable_explanation_fails_under_the_offline_provider_and_is_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a review explained and an escalation whose explanation is unavailable
    decisions = [decision("dec_a", "review"), decision("dec_b", "escalate")]
    explanations = {**explained("dec_a"), "dec_b": explanation("dec_b", "unavailable")}

    # then under the offline provider, which cannot be down, the demo fails and says why
    with pytest.raises(DemoFailed, match="1 of 2 unavailable under the offline provider") as exc:
        require_explained(decisions, explanations, offline=True)
    assert "circuit open" in str(exc.value)

    # and under a real provider the unavailable one is reported, not counted as explained
    require_explained(decisions, explanations, offline=False)
    assert "1 review/escalate decisions explained" in capsys.readouterr().out


def test_customer_and_llm_text_is_shown_as_written_never_as_markup() -> None:
    quoted = decision("dec_a", "review")
    quoted["evidence"] = [{"kind": "span", "reference": "m1:rule", "quote": "paid [/i] today"}]
    explanation = "See [link=https://evil.example]the policy[/link] [bold]now[/bold]."

    shown = rendered(decision_table([quoted], {"dec_a": explanation}))

    assert "[/i]" in shown, "a closing tag in a quote must not raise MarkupError or vanish"
    assert "[link=https://evil.example]" in shown and "[bold]" in shown, "no hidden link"


CONSOLE_SPAN = """{
    "name": "decision",
    "context": {
        "trace_id": "0x%s",
        "span_id": "0x367a461560d1847f",
        "trace_state": "[]"
    },
    "kind": "SpanKind.INTERNAL"
}
"""


def test_the_demo_fails_when_the_trace_it_points_to_was_not_exported(tmp_path: Path) -> None:
    repeat = {"decision_id": "dec_r", "trace_id": "1" * 32, "replay": True}
    decision = {"decision_id": "dec_a", "trace_id": "b3ed0729607e8f69440c3bd82183fca8"}
    log = tmp_path / "service.log"
    other_trace = CONSOLE_SPAN % ("0" * 31 + "1")
    access_line = '{"logger": "bentoml.access", "trace_id": "b3ed0729607e8f69440c3bd82183fca8"}\n'

    log.write_text(other_trace + access_line)
    with pytest.raises(DemoFailed, match="spans of decision dec_a"):
        require_traced([repeat, decision], log)

    log.write_text(other_trace + CONSOLE_SPAN % decision["trace_id"])
    assert "dec_a" in require_traced([repeat, decision], log)


def test_a_demo_run_again_has_no_trace_to_show_for_its_repeats(tmp_path: Path) -> None:
    # a repeat carries the trace id of the run that decided it, exported to that run's log
    repeat = {"decision_id": "dec_r", "trace_id": "1" * 32, "replay": True}
    log = tmp_path / "service.log"
    log.write_text("")

    assert require_traced([repeat], log).startswith("none")
