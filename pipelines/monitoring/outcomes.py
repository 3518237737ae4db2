"""Outcome monitoring: were the payments we flagged the ones that turned out to be fraud?

Labels arrive days after a decision (chargebacks, confirmations), so drift alone cannot say
whether the service still works. These pure functions join audited decisions with the labels
known at an as-of time and measure, per flagging action (review, decline, either):

- precision: of the payments flagged, the share labelled fraud; by the decision's category too;
- recall: of the payments labelled fraud, the share flagged; overall and per customer cohort
  (a category is what the decision assigned, so an approved fraud has no category to recall in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pipelines.monitoring.errors import OutcomeInputError

FLAGS: dict[str, frozenset[str]] = {
    "review": frozenset({"review"}),
    "decline": frozenset({"decline"}),
    "review_or_decline": frozenset({"review", "decline"}),
}
ALL = "all"
DECISION_COLUMNS = ("decision_id", "transaction_id", "customer_id", "category", "action")


def decision_rows(bodies: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per audited decision about a payment, from the audit records' bodies."""
    rows = []
    for body in bodies:
        transaction = body.get("request", {}).get("transaction")
        if not transaction:
            continue  # a decision about a message only has no payment label to meet
        decision = body["decision"]
        rows.append(
            {
                "decision_id": decision["decision_id"],
                "transaction_id": str(transaction["transaction_id"]),
                "customer_id": str(transaction["customer_id"]),
                "category": decision["risk_category"],
                "action": decision["action"],
            }
        )
    return pd.DataFrame(rows, columns=list(DECISION_COLUMNS))


def labelled_decisions(
    decisions: pd.DataFrame,
    labels: pd.DataFrame,
    as_of: pd.Timestamp,
    vulnerable_customers: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Decisions joined with the labels known at ``as_of``; adds ``fraud`` and ``cohort``."""
    known = labels[labels["label"].notna()]
    if "label_available_at" in known.columns:
        available = known["label_available_at"]
        known = known[available.isna() | (available <= as_of)]
    known = known.drop_duplicates("transaction_id", keep="last")
    joined = decisions.merge(
        known[["transaction_id", "label"]].astype({"transaction_id": str}),
        on="transaction_id",
        how="inner",
    )
    if joined.empty:
        raise OutcomeInputError(
            f"none of {len(decisions):,} audited payment decisions has a label known by {as_of}"
        )
    joined["fraud"] = joined["label"].astype(int) == 1
    if vulnerable_customers is None:
        joined["cohort"] = "unknown"
    else:
        is_vulnerable = joined["customer_id"].isin(vulnerable_customers)
        joined["cohort"] = is_vulnerable.map({True: "vulnerable", False: "not_vulnerable"})
    return joined.drop(columns=["label"])


def flag_quality(joined: pd.DataFrame) -> list[dict[str, object]]:
    """Precision and recall per flagging action, for everyone, per cohort and per category."""
    rows: list[dict[str, object]] = []
    for action, flagged_actions in FLAGS.items():
        flagged = joined["action"].isin(flagged_actions)
        groups = [(ALL, ALL, pd.Series(True, index=joined.index))]
        groups += [
            (ALL, cohort, joined["cohort"] == cohort) for cohort in _values(joined, "cohort")
        ]
        groups += [
            (category, ALL, joined["category"] == category)
            for category in _values(joined, "category")
        ]
        for category, cohort, member in groups:
            rows.append(_row(action, category, cohort, flagged[member], joined["fraud"][member]))
    return rows


def _row(
    action: str, category: str, cohort: str, flagged: pd.Series, fraud: pd.Series
) -> dict[str, object]:
    true_flags = int((flagged & fraud).sum())
    n_flagged, n_fraud = int(flagged.sum()), int(fraud.sum())
    recall_defined = category == ALL and n_fraud > 0
    return {
        "action": action,
        "category": category,
        "cohort": cohort,
        "decisions": len(flagged),
        "flagged": n_flagged,
        "fraud": n_fraud,
        "flagged_fraud": true_flags,
        "precision": true_flags / n_flagged if n_flagged else None,
        "recall": true_flags / n_fraud if recall_defined else None,
    }


def _values(frame: pd.DataFrame, column: str) -> list[str]:
    return sorted(str(value) for value in frame[column].dropna().unique())
