from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from nlpinsight import data
from nlpinsight import text as text_rules
from nlpinsight.schema import FinancialText
from nlpinsight.text import MAX_TEXT_CHARS


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("\u200b", False),
        ("\ufeff", False),
        ("\x00", False),
        ("\u2060", False),
        ("\u00ad", False),
        ("\u200b\u200c\u200d", False),
        ("\ufe0f\u3164", False),
        (" \t\n\u00a0\u3000", False),
        ("", False),
        (".", True),
        ("\u200ba", True),
        ("\U0001f680", True),
    ],
)
def test_a_text_of_invisible_characters_only_has_nothing_visible(text: str, visible: bool) -> None:
    assert text_rules.has_visible(text) is visible


#: Texts at the edges of what the service classifies.
EDGES = [
    "up",
    " up ",
    "\u200bup",
    "x" * MAX_TEXT_CHARS,
    " " * (MAX_TEXT_CHARS - 1) + "x",
    "x" * (MAX_TEXT_CHARS + 1),
    " " * MAX_TEXT_CHARS + "x",
    "",
    "   ",
    "\u200b\ufeff",
    "\x00\u3164",
    # U+FDFA is 18 characters in compatibility form (NFKC), as the model reads it.
    "\ufdfa" * (MAX_TEXT_CHARS // 18),
    "\ufdfa" * (MAX_TEXT_CHARS // 18 + 1),
]


@pytest.mark.parametrize("sent", EDGES)
def test_the_loader_trains_on_a_text_exactly_when_the_service_classifies_it(sent: str) -> None:
    """A row the service refuses is dropped (nothing visible) or fails the file (too long): a model
    trained on texts no request can carry has its figures measured on the wrong population."""
    try:
        FinancialText(text=sent)
        classified = True
    except ValidationError:
        classified = False
    frame = pd.DataFrame({data.TEXT: ["down", sent], data.TARGET: [0, 1]})
    try:
        trained_on = sent in data.validate_frame(frame)[data.TEXT].tolist()
    except data.DatasetError:
        trained_on = False
    assert trained_on is classified
    assert (text_rules.text_problem(sent) is None) is classified


def test_a_text_is_refused_by_its_length_as_the_model_reads_it() -> None:
    """5,000 characters as sent can be 90,000 once in compatibility form: the length that the
    model's time, on the event loop, grows with."""
    sent = "\ufdfa" * (MAX_TEXT_CHARS // 18 + 1)
    assert text_rules.read_length(sent) == 18 * len(sent) > MAX_TEXT_CHARS
    assert text_rules.text_problem(sent) == (
        f"has over {MAX_TEXT_CHARS} characters in Unicode compatibility form (NFKC), which the "
        f"model reads; send at most {MAX_TEXT_CHARS} characters in that form"
    )
    assert text_rules.text_problem("\ufdfa" * (MAX_TEXT_CHARS // 18)) is None


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("x" * 10, 10),
        ("caf\u00e9", 4),  # NFKC already
        ("cafe\u0301", 5),  # composed whole it is 4: counted a character at a time, never fewer
        ("\ufb01ne", 4),  # the ligature fi is two
        ("\uff21\uff22", 2),  # fullwidth AB
    ],
)
def test_the_length_the_model_reads_counts_each_character_in_compatibility_form(
    text: str, length: int
) -> None:
    assert text_rules.read_length(text) == length


def test_counting_stops_past_the_limit() -> None:
    """So that refusing 5,000 U+FDFA costs microseconds, not the 4.8 ms normalising them took."""
    counted = text_rules.read_length("\ufdfa" * 5_000, limit=100)
    assert 100 < counted <= 100 + 18
