"""Which model URIs a service follows, and the one-line failure text of a load."""

from __future__ import annotations

import pytest

from servekit.loading import follows_an_alias, one_line, registry_version


@pytest.mark.parametrize(
    ("uri", "follows"),
    [
        ("models:/bankchurn@champion", True),
        ("models:/bankchurn@canary-2", True),
        ("models:/bankchurn/3", False),  # a pinned version never moves
        ("runs:/0123abcd/model", False),
        ("s3://bucket/bankchurn/model", False),
    ],
)
def test_only_an_alias_is_followed(uri: str, follows: bool) -> None:
    assert follows_an_alias(uri) is follows


def test_the_version_of_a_uri_outside_the_registry_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="runs:/0123abcd/model is not a models:/ URI"):
        registry_version("runs:/0123abcd/model", "http://127.0.0.1:1")


def test_a_failure_is_one_line_of_bounded_length() -> None:
    text = one_line(RuntimeError("first line\n  second line " + "x" * 1000))
    assert text.startswith("RuntimeError: first line second line xxx")
    assert "\n" not in text
    assert len(text) <= len("RuntimeError: ") + 500
