"""Media types and weighted lists, read one way for every transport (RFC 9110)."""

from __future__ import annotations

import pytest

from servekit.media_types import accepts_coding, accepts_media_type, parse_media_type, weight

JSON = "application/json"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (JSON, (JSON, {})),
        (
            'Text/CSV; Header=present; charset="UTF-8"',
            ("text/csv", {"header": "present", "charset": "UTF-8"}),
        ),
        (f"{JSON};", (JSON, {})),
        ("text/csv; ; explain=true;", ("text/csv", {"explain": "true"})),
        ("text/csv; header", ("text/csv", {"header": ""})),
        ("", ("", {})),
    ],
)
def test_a_media_type_is_its_lowercased_type_and_named_parameters(
    value: str, parsed: tuple[str, dict[str, str]]
) -> None:
    assert parse_media_type(value) == parsed


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [({}, 1.0), ({"q": "0.5"}, 0.5), ({"q": "0.000"}, 0.0), ({"q": "zero"}, 0.0), ({"q": ""}, 0.0)],
)
def test_a_weight_is_one_unless_given_and_zero_when_unreadable(
    parameters: dict[str, str], expected: float
) -> None:
    assert weight(parameters) == expected


@pytest.mark.parametrize(
    ("accept", "taken"),
    [
        (JSON, True),
        ("APPLICATION/JSON", True),
        (f"text/html,{JSON};q=0.9,*/*;q=0.8", True),
        ("text/html, */*;q=0.1", True),
        ("application/*", True),
        ("text/html", False),
        ("application/problem+json", False),
        (f"text/html, {JSON};q=0", False),
        # The most specific range decides (12.5.1): a wildcard does not undo a refusal.
        (f"{JSON};q=0, */*", False),
        ("application/*;q=0, */*", False),
        (f"application/*;q=0, {JSON}", True),
        (f"*/*;q=0, {JSON};q=0.2", True),
        (f"{JSON};q=x", False),
        ("", False),
    ],
)
def test_accept_takes_a_media_type_by_its_most_specific_range(accept: str, taken: bool) -> None:
    assert accepts_media_type(accept, JSON) is taken


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # gzip named explicitly: its own weight wins over the wildcard
        ("*;q=0", False),
        ("identity", False),
        ("br, zstd", False),
        ("", False),
        ("gzip;q=zero", False),
        # The unencoded response weighed above gzip is preferred; at equal weights gzip is sent.
        ("gzip;q=0.001, identity;q=1", False),
        ("gzip;q=0.5, *", False),
        ("gzip;q=0.5, identity;q=0.5", True),
        ("gzip, identity;q=0.5", True),
        ("gzip, *;q=0.5", True),
    ],
)
def test_gzip_is_accepted_by_the_weights_not_by_a_substring(header: str, accepted: bool) -> None:
    assert accepts_coding(header) is accepted
