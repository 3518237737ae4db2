"""A customer's history document reads back as written, in the JSON it always had."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from decisioning.adapters.feast.history import decode_history, encode_history
from decisioning.fraud.activity import CustomerHistory, RecentPayment

IDS = st.text(min_size=1, max_size=12)
AMOUNTS = st.floats(min_value=0, allow_infinity=False)  # the event's bounds: finite, not negative
NANOS = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def histories(draw: st.DrawFn, totals: st.SearchStrategy[float] = AMOUNTS) -> CustomerHistory:
    recent = draw(st.lists(st.builds(RecentPayment, NANOS, AMOUNTS, IDS), max_size=8))
    return CustomerHistory(
        recent=recent,
        payments=draw(st.integers(min_value=0, max_value=2**40)),
        amount_sum=draw(totals),
        amount_squares=draw(totals),
        last_payment_ns=draw(st.none() | NANOS),
        country_counts=draw(st.dictionaries(IDS, st.integers(0, 10**6), max_size=3)),
        usual_country=draw(st.none() | IDS),
        terminal_counts=draw(st.dictionaries(IDS, st.integers(0, 10**6), max_size=4)),
        terminal_amount_sums=draw(st.dictionaries(IDS, totals, max_size=4)),
    )


def legacy(history: CustomerHistory) -> str:
    """The document as the service wrote it before msgspec (json over ``to_json``)."""
    return json.dumps(history.to_json(), separators=(",", ":"))


@given(histories())
def test_a_history_reads_back_as_written_in_the_same_document(history: CustomerHistory) -> None:
    written = encode_history(history)

    assert decode_history(written) == history
    assert json.loads(written) == json.loads(legacy(history))


@given(histories())
def test_documents_written_before_read_as_they_did(history: CustomerHistory) -> None:
    document = legacy(history)

    assert decode_history(document) == CustomerHistory.from_json(json.loads(document))
    assert decode_history(document.encode()) == history


@given(histories(totals=st.floats(min_value=0)))  # infinity too: an amount near float's limit
def test_an_infinite_total_reads_back_infinite(history: CustomerHistory) -> None:
    read = decode_history(encode_history(history))

    assert math.isinf(read.amount_squares) == math.isinf(history.amount_squares)
    assert read == history


def test_a_document_without_the_later_fields_reads_with_their_defaults() -> None:
    old = '{"recent":[],"payments":2,"amount_sum":3.0,"amount_squares":5.0,"last_payment_ns":1}'

    history = decode_history(old)

    assert history.payments == 2 and history.terminal_amount_sums == {}
    assert history.usual_country is None
