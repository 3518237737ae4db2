import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisioning.conduct import redaction
from decisioning.conduct.redaction import EMAIL, _Emails, redact, redact_text


@pytest.mark.parametrize(
    ("text", "secret", "tag"),
    [
        ("my card 4539 1488 0343 6467 was used", "4539 1488 0343 6467", "[CARD]"),
        ("card 4539-1488-0343-6467", "4539-1488-0343-6467", "[CARD]"),
        ("write to jo.bloggs+bank@example.co.uk please", "jo.bloggs+bank@example.co.uk", "[EMAIL]"),
        ("call me on 07700 900123 today", "07700 900123", "[PHONE]"),
        ("or +44 20 7946 0958", "+44 20 7946 0958", "[PHONE]"),
        ("account 12345678 please", "12345678", "[ACCOUNT]"),
        ("sort code 12-34-56", "12-34-56", "[SORT_CODE]"),
        ("IBAN GB33BUKB20201555555555", "GB33BUKB20201555555555", "[IBAN]"),
        ("My name is Sarah Connor and", "Sarah Connor", "[NAME]"),
        ("I spoke to Mrs Patel yesterday", "Patel", "[NAME]"),
    ],
)
def test_personal_data_is_replaced_by_its_tag(text: str, secret: str, tag: str) -> None:
    result = redact(text)
    assert secret not in result.text, f"{secret!r} leaked: {result.text!r}"
    assert tag in result.text
    assert result.counts[tag.strip("[]")] >= 1


def test_amounts_and_dates_survive_redaction() -> None:
    text = "I paid £250.00 on 12/03/2024 and was charged 35 pounds."
    assert redact(text).text == text, "extraction needs amounts and dates"


def test_each_redacted_character_knows_where_it_came_from() -> None:
    original = "Mail a@b.co or call 020 7946 0958, Mr Smith"
    redaction = redact(original)

    at = redaction.text.index("or call")
    assert redaction.original_span(at, at + 7) == (
        original.index("or call"),
        original.index("or call") + 7,
    )
    tag = redaction.text.index("[EMAIL]")
    assert redaction.original_span(tag, tag + 7) is None, "a tag has no place in the original"
    assert redaction.original_span(tag + 6, tag + 10) is None, "nor a span running into one"


# Text built from the pieces the patterns look for, so most examples hold something to mask.
_PIECES = st.sampled_from(
    [
        "4539 1488 0343 6467",
        "12345678",
        "12-34-56",
        "07700 900123",
        "+44 20 7946 0958",
        "jo.bloggs+bank@example.co.uk",
        "GB33BUKB20201555555555",
        "My name is Sarah Connor",
        "Mrs Patel",
        "Regards, Ann\n",
        " ",
        "-",
        "\n",
        # the pieces each pattern needs, alone and in other scripts' digits and spaces: a text
        # without any is returned as it is, so a missed one would show here
        "1",
        "123",
        "\u0663\u0664\u0665",
        "\u00a0",
        "\t",
        "@",
        "AB12",
        "Dr. Who",
        "Mx Lee",
        "Miss Jones",
        "Signed Eve",
        "thanks, Bob",
        "name, Al",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=12).map("".join))
def test_the_log_lines_redaction_masks_exactly_what_the_full_one_does(text: str) -> None:
    """``redact_text`` (log lines) skips the offset map; its text must be ``redact``'s."""
    assert redact_text(text) == redact(text).text


@pytest.mark.parametrize(
    "text",
    [
        "call +1\t20\t123\u00a0456 today",  # a phone number split by tabs and a no-break space
        "account \u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "sort code 12-34-56",
        "GB33BUKB20201555555555",
        "Regards, Ann",
    ],
)
def test_the_log_lines_redaction_does_not_skip_a_text_only_an_edge_of_a_pattern_matches(
    text: str,
) -> None:
    assert redact_text(text) == redact(text).text != text


_EMAILISH = st.text(alphabet="ab1_.+-@ éх\t", max_size=40)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.one_of(_EMAILISH, st.sampled_from(["x@y.z", "@", ".", "a.b@c-d.e"])), max_size=8
    ).map("".join)
)
def test_e_mails_are_found_from_each_at_exactly_where_the_pattern_finds_them(text: str) -> None:
    # the linear search gives the regular expression's own matches, and the same replacement
    assert [m.span() for m in _Emails().finditer(text)] == [m.span() for m in EMAIL.finditer(text)]
    assert _Emails().sub("[EMAIL]", text) == EMAIL.sub("[EMAIL]", text)


@pytest.mark.parametrize(
    "text",
    ["x@y.z+w@q.r", "x@y@b.com", "a@b", "@a.b", "a@.b", "ab-@c.d.e@f.g", "é@х.д " * 3],
)
def test_touching_and_broken_e_mails_are_found_as_the_pattern_finds_them(text: str) -> None:
    assert [m.span() for m in _Emails().finditer(text)] == [m.span() for m in EMAIL.finditer(text)]


def test_a_long_run_of_word_characters_before_an_at_is_tried_from_one_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a message of 20,000 word characters ending in "@": the pattern's search tries each
    # of its 20,000 starts, reading the rest of the run each time
    text = "a" * 20_000 + "@"
    starts: list[int] = []

    class Counted:
        @staticmethod
        def match(target: str, start: int = 0) -> re.Match[str] | None:
            starts.append(start)
            return EMAIL.match(target, start)

    monkeypatch.setattr(redaction, "EMAIL", Counted)

    # when its e-mails are searched
    found = list(_Emails().finditer(text))

    # then the match is tried from the run's first character only, and none is found
    assert found == [] and starts == [0]
