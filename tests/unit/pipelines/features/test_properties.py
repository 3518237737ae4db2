"""Property tests: a feature at time t sees neither later payments nor labels not yet available.

Hypothesis draws small payment histories of a few customers and terminals over ten days, many
crowded into the first two hours so the short windows and equal timestamps are exercised, with
labels that arrive late, at once, never, or at an unrecorded time (which the build assumes is
``LABEL_DELAY_WHEN_UNKNOWN`` after the payment). A moment t is one of the payments' times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.features.build import LABEL_DELAY_WHEN_UNKNOWN, build_feature_tables
from tests.support.payments import T0

DAY = 86_400
DAYS = 10
NEVER = None  # a label that never arrives: no label and no label time
UNRECORDED = -1  # a label whose arrival time the file does not hold


@dataclass(frozen=True)
class Payment:
    """One drawn payment; times in seconds after T0, the label delay in seconds after it."""

    second: int
    customer_id: str
    terminal_id: str
    amount: float
    country: str | None
    label: int | None
    label_delay: int | None


def _payment(seconds: st.SearchStrategy[int]) -> st.SearchStrategy[Payment]:
    # Half the labels are frauds and half the delays are late ones, so leaks have a chance to show.
    delay = st.one_of(st.integers(1, 12 * DAY), st.sampled_from([0, UNRECORDED]))
    return st.builds(
        Payment,
        second=seconds,
        customer_id=st.sampled_from(["c0", "c1", "c2"]),
        terminal_id=st.sampled_from(["m0", "m1", "m2"]),
        amount=st.integers(1, 50_000).map(lambda cents: cents / 100),
        country=st.sampled_from(["GB", "FR", None]),
        label=st.sampled_from([0, 1, 1, NEVER]),
        label_delay=delay,
    ).map(lambda p: p if p.label is not NEVER else replace(p, label_delay=NEVER))


_SECONDS = st.one_of(st.integers(0, DAYS * DAY), st.integers(0, 2 * 3_600))
_HISTORIES = st.lists(_payment(_SECONDS), min_size=1, max_size=25)


def _frame(drawn: list[Payment]) -> pd.DataFrame:
    """The transactions file of the drawn payments, ids numbered in draw order."""
    occurred = T0 + pd.to_timedelta([p.second for p in drawn], unit="s")
    delays = [None if p.label_delay in (NEVER, UNRECORDED) else p.label_delay for p in drawn]
    return pd.DataFrame(
        {
            "transaction_id": [f"tx{i:03d}" for i in range(len(drawn))],
            "occurred_at": occurred,
            "customer_id": [p.customer_id for p in drawn],
            "terminal_id": [p.terminal_id for p in drawn],
            "amount": [p.amount for p in drawn],
            "country": [p.country for p in drawn],
            "label": pd.array([p.label for p in drawn], dtype="Int8"),
            "label_available_at": occurred + pd.to_timedelta(delays, unit="s"),
        }
    )


def _features_up_to(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Every activity and terminal-risk feature of the payments at or before ``cutoff``."""
    tables = build_feature_tables(frame)
    activity = tables.customer_activity.set_index("transaction_id")
    risk = tables.terminal_risk.set_index("transaction_id").drop(columns=["terminal_id"])
    features = activity.join(risk, rsuffix="_risk")
    return features[features["event_timestamp"] <= cutoff].sort_index()


def _assert_same_features(before: pd.DataFrame, after: pd.DataFrame, why: str) -> None:
    assert list(before.index) == list(after.index), f"{why}: payments up to t differ"
    # Totals run per customer, so another customer's payments cannot move even the last bits.
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-12, atol=1e-12, obj=why)


@settings(max_examples=50, deadline=None)
@given(drawn=_HISTORIES, data=st.data())
def test_no_feature_at_time_t_depends_on_a_later_payment(
    drawn: list[Payment], data: st.DataObject
) -> None:
    # given a payment history and a moment t at one of its payments
    cutoff = data.draw(st.sampled_from(sorted({p.second for p in drawn})), label="t")
    later = [i for i, p in enumerate(drawn) if p.second > cutoff]
    # when the later payments get other amounts and labels, and more payments are appended
    changes = data.draw(  # only their amounts and labels are used
        st.lists(_payment(st.just(0)), min_size=len(later), max_size=len(later)), label="changes"
    )
    rewritten = list(drawn)
    for i, change in zip(later, changes, strict=True):
        rewritten[i] = replace(
            drawn[i], amount=change.amount, label=change.label, label_delay=change.label_delay
        )
    after_t = st.integers(cutoff + 1, cutoff + 3 * DAY)
    appended = data.draw(st.lists(_payment(after_t), max_size=8), label="appended")
    original, altered = _frame(drawn), _frame(rewritten + appended)
    # then every payment up to t has the same features as before
    moment = T0 + pd.Timedelta(seconds=cutoff)
    _assert_same_features(
        _features_up_to(original, moment),
        _features_up_to(altered, moment),
        "features up to t changed when only later payments did",
    )


@settings(max_examples=50, deadline=None)
@given(drawn=_HISTORIES, data=st.data())
def test_no_terminal_fraud_rate_at_time_t_uses_a_label_not_yet_available(
    drawn: list[Payment], data: st.DataObject
) -> None:
    # given a payment history and a moment t at one of its payments
    cutoff = data.draw(st.sampled_from(sorted({p.second for p in drawn})), label="t")
    moment = T0 + pd.Timedelta(seconds=cutoff)
    original = _frame(drawn)
    # when every label that becomes available only after t is flipped
    available_at = original["label_available_at"].fillna(
        original["occurred_at"] + LABEL_DELAY_WHEN_UNKNOWN
    )
    unknown_at_t = original["label"].notna() & (available_at > moment)
    flipped = original.copy()
    flipped.loc[unknown_at_t, "label"] = 1 - flipped.loc[unknown_at_t, "label"]
    # then nothing at or before t changes, terminal fraud rates included
    _assert_same_features(
        _features_up_to(original, moment),
        _features_up_to(flipped, moment),
        "features up to t changed when only labels not yet available did",
    )
