"""Outcome monitoring: audited decisions meet late labels; precision and recall per flag."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.operations import FLAG_QUALITY_RESULT, operations_store
from decisioning.core.decision import DecisionTimestamps, RiskDecision
from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.monitoring.errors import OutcomeInputError
from pipelines.monitoring.outcomes import decision_rows, flag_quality, labelled_decisions

WHEN = datetime(2026, 6, 1, 10, tzinfo=UTC)
AS_OF = pd.Timestamp("2026-06-20", tz="UTC")
# transaction, customer, action, category, label, label known at
CASES = [
    ("tx1", "C1", "decline", "fraud.card_testing", 1, "2026-06-05"),
    ("tx2", "C1", "decline", "fraud.card_testing", 0, "2026-06-05"),
    ("tx3", "C2", "review", "fraud.account_takeover", 1, "2026-06-05"),
    ("tx4", "C2", "approve", "fraud.none", 1, "2026-06-05"),
    ("tx5", "C3", "approve", "fraud.none", 0, "2026-06-05"),
    ("tx6", "C3", "review", "fraud.account_takeover", 1, "2026-07-30"),  # not known yet
]
VULNERABLE = frozenset({"C2"})


def body(transaction_id: str, customer_id: str, action: str, category: str) -> dict[str, object]:
    decision = RiskDecision(
        decision_id=f"dec_{transaction_id}",
        subject="transaction",
        risk_score=0.5,
        risk_category=category,
        action=action,  # type: ignore[arg-type]
        policy_version="p1",
        timestamps=DecisionTimestamps(event=WHEN, decided=WHEN),
        trace_id="0" * 32,
        input_hash="h",
    )
    transaction = {"transaction_id": transaction_id, "customer_id": customer_id}
    return {"decision": decision.model_dump(mode="json"), "request": {"transaction": transaction}}


def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [c[0] for c in CASES],
            "occurred_at": pd.Timestamp(WHEN),
            "customer_id": [c[1] for c in CASES],
            "terminal_id": "T1",
            "amount": 10.0,
            "label": pd.array([c[4] for c in CASES], dtype="Int8"),
            "label_available_at": pd.to_datetime([c[5] for c in CASES], utc=True),
        }
    )


def row(rows: list[dict[str, object]], **key: str) -> dict[str, object]:
    (found,) = [r for r in rows if all(r[k] == v for k, v in key.items())]
    return found


def test_precision_and_recall_count_only_labels_known_by_the_as_of_time() -> None:
    # given six payment decisions and one message-only decision, one label not yet known
    bodies = [body(*case[:4]) for case in CASES]
    bodies.append({"decision": {"decision_id": "dec_m"}, "request": {"text": {"text": "hi"}}})

    # when they are joined with the labels known on 20 June
    joined = labelled_decisions(decision_rows(bodies), labels(), AS_OF, VULNERABLE)
    rows = flag_quality(joined)

    # then tx6 (labelled in July) and the message are left out
    assert sorted(joined["transaction_id"]) == ["tx1", "tx2", "tx3", "tx4", "tx5"]
    everyone = row(rows, action="review_or_decline", category="all", cohort="all")
    assert (everyone["flagged"], everyone["fraud"], everyone["flagged_fraud"]) == (3, 3, 2)
    assert everyone["precision"] == pytest.approx(2 / 3) and everyone["recall"] == pytest.approx(
        2 / 3
    )
    decline = row(rows, action="decline", category="fraud.card_testing", cohort="all")
    assert decline["precision"] == 0.5 and decline["recall"] is None, (
        "recall is not defined within the category the decision itself assigned"
    )
    vulnerable = row(rows, action="review_or_decline", category="all", cohort="vulnerable")
    assert vulnerable["recall"] == 0.5, "C2 had two frauds, one flagged (tx3), one approved (tx4)"


def test_no_labelled_decision_is_an_error_not_an_empty_report() -> None:
    decisions = decision_rows([body("tx9", "C9", "decline", "fraud.card_testing")])

    with pytest.raises(OutcomeInputError, match="none of 1 audited payment decisions"):
        labelled_decisions(decisions, labels(), AS_OF)


def test_the_command_reads_the_audit_store_and_writes_the_report(
    risk_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an audit store with the decisions, and labels with customers beside them
    store = AuditStore.open(load_settings().audit.url)
    for case in CASES:
        store.append("decision", f"dec_{case[0]}", body(*case[:4]))
    store.close()
    labels().to_parquet(tmp_path / "transactions.parquet")
    pd.DataFrame(
        {"customer_id": ["C1", "C2", "C3"], "vulnerable": [False, True, False]}
    ).to_parquet(tmp_path / "customers.parquet")

    # when outcomes are measured as of 20 June
    code = main(
        [
            "monitor", "outcomes",
            "--labels", str(tmp_path / "transactions.parquet"),
            "--out", str(tmp_path / "report"),
            "--as-of", "2026-06-20T00:00:00",
        ]
    )  # fmt: skip

    # then the report, the table and the copy the service publishes agree
    assert code == 0
    report = json.loads((tmp_path / "report" / "outcomes.json").read_text())
    assert report["labelled_decisions"] == 5
    assert {r["cohort"] for r in report["rows"]} == {"all", "vulnerable", "not_vulnerable"}
    assert "flag precision and recall" in capsys.readouterr().out
    with operations_store(load_settings().operations.url) as operations:
        published = operations.latest_result(FLAG_QUALITY_RESULT)
    assert published is not None and published["rows"] == report["rows"]
