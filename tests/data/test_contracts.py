"""The Great Expectations suites: pass on simulated data, fail on each kind of corruption."""

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import pytest
import time_machine

from pipelines.errors import QualityGateFailed
from pipelines.ingest import conform
from pipelines.quality import require_valid, validate_frame
from pipelines.simulate import SimulatedWorld
from tests.support.clock import NOW

# "Future" means after the platform's clock, which every test here reads frozen at NOW.
pytestmark = [pytest.mark.calendar, pytest.mark.usefixtures("fixed_now")]

Corruption = Callable[[pd.DataFrame], pd.DataFrame]


def _set(column: str, value: object, rows: int = 3) -> Corruption:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        bad = frame.copy()
        bad.loc[bad.index[:rows], column] = value
        return bad

    return corrupt


def _duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.head(2)], ignore_index=True)


FUTURE = pd.Timestamp(NOW) + pd.Timedelta(days=30)

TRANSACTION_CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "negative amount": (_set("amount", -10.0), "amount"),
    "null amount": (_set("amount", float("nan")), "amount"),
    "duplicate ids": (_duplicate, "transaction_id"),
    "missing column": (lambda f: f.drop(columns=["terminal_id"]), "table"),
    "unknown currency": (_set("currency", "XYZ"), "currency"),
    "the marker rows' terminal id": (_set("terminal_id", "__materialized__"), "terminal_id"),
    "future timestamp": (_set("occurred_at", FUTURE), "occurred_at"),
    "label before payment": (
        lambda f: f.assign(label_available_at=f["occurred_at"] - pd.Timedelta(days=1)),
        "label_available_at",
    ),
}

TEXT_CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "empty text": (_set("text", ""), "text"),
    "blank text": (_set("text", "   "), "text"),
    "null text": (_set("text", None), "text"),
    "duplicate ids": (_duplicate, "message_id"),
    "future timestamp": (_set("received_at", FUTURE), "received_at"),
    "unknown channel": (_set("channel", "fax"), "channel"),
    "missing column": (lambda f: f.drop(columns=["received_at"]), "table"),
}


@pytest.fixture(scope="module")
def transactions(small_world: SimulatedWorld) -> pd.DataFrame:
    return conform(small_world.transactions, "transactions")


@pytest.fixture(scope="module")
def texts(small_world: SimulatedWorld) -> pd.DataFrame:
    return conform(small_world.texts, "texts")


def test_simulated_transactions_pass(transactions: pd.DataFrame) -> None:
    result = validate_frame(transactions, "transactions")

    assert result.success, result.report()


def test_simulated_texts_pass(texts: pd.DataFrame) -> None:
    result = validate_frame(texts, "texts")

    assert result.success, result.report()


@pytest.mark.parametrize("name", sorted(TRANSACTION_CORRUPTIONS))
def test_transactions_suite_fails_on(name: str, transactions: pd.DataFrame) -> None:
    corrupt, column = TRANSACTION_CORRUPTIONS[name]

    result = validate_frame(corrupt(transactions), "transactions")

    assert not result.success, f"the suite accepted {name}"
    assert column in result.summary(), f"the summary should name {column}: {result.summary()}"


@pytest.mark.parametrize("name", sorted(TEXT_CORRUPTIONS))
def test_texts_suite_fails_on(name: str, texts: pd.DataFrame) -> None:
    corrupt, column = TEXT_CORRUPTIONS[name]

    result = validate_frame(corrupt(texts), "texts")

    assert not result.success, f"the suite accepted {name}"
    assert column in result.summary(), f"the summary should name {column}: {result.summary()}"


def test_training_set_suite_needs_both_classes(transactions: pd.DataFrame) -> None:
    training = transactions.rename(columns={"occurred_at": "event_timestamp"}).dropna(
        subset=["label"]
    )
    assert validate_frame(training, "training-set").success

    only_genuine = training[training["label"] == 0]
    result = validate_frame(only_genuine, "training-set")

    assert not result.success and "label" in result.summary()


def test_zero_amounts_pass_as_card_verifications(transactions: pd.DataFrame) -> None:
    # given payments of 0.00, as a card verification is written
    verifications = _set("amount", 0.0, rows=42)(transactions)

    result = validate_frame(verifications, "transactions")

    assert result.success, f"zero amounts are ordinary: {result.report()}"


def test_the_gate_stops_naming_expectation_column_count_and_examples(
    transactions: pd.DataFrame,
) -> None:
    # given three refunds written as negative payments
    corrupt, _ = TRANSACTION_CORRUPTIONS["negative amount"]

    # when the gate runs
    with pytest.raises(QualityGateFailed) as failure:
        require_valid(corrupt(transactions), "transactions")

    # then its one-line message says what failed, where, how often, with values, and what to do
    message = str(failure.value)
    for part in ("expect_column_values_to_be_between", "amount", "3 rows", "-10.0", "refund"):
        assert part in message, f"the message should name {part!r}: {message}"
    assert "3 rows" in failure.value.report


def test_a_failed_pair_expectation_names_both_columns_and_readable_times(
    transactions: pd.DataFrame,
) -> None:
    corrupt, _ = TRANSACTION_CORRUPTIONS["label before payment"]

    summary = validate_frame(corrupt(transactions), "transactions").summary()

    assert "label_available_at vs occurred_at" in summary, summary
    assert "numpy" not in summary and "np.datetime64" not in summary, summary


@pytest.mark.parametrize("day", ["2025-11-03", "2026-03-16", "2026-09-01"])
def test_the_future_is_read_from_the_platform_clock(day: str, transactions: pd.DataFrame) -> None:
    # given payments moved to the day the clock says, one of them an hour ahead of it
    clock = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
    moved = transactions.head(50).drop(columns=["label", "label_available_at"])
    moved["occurred_at"] = pd.Timestamp(clock) - pd.Timedelta(days=1)
    moved.loc[moved.index[0], "occurred_at"] = pd.Timestamp(clock) + pd.Timedelta(hours=1)

    # when the gate runs with the clock at that day, and then a day later
    with time_machine.travel(clock, tick=False):
        on_the_day = validate_frame(moved, "transactions")
    with time_machine.travel(clock + pd.Timedelta(days=1), tick=False):
        a_day_later = validate_frame(moved, "transactions")

    # then only the payment ahead of the clock is refused, and only while it is ahead
    assert not on_the_day.success and "occurred_at" in on_the_day.summary()
    assert a_day_later.success, a_day_later.report()
