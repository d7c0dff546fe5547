"""Numeric options of ``mlp``: a bad value is refused before anything runs, naming the option."""

from __future__ import annotations

import pytest

from servekit import cli


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--chunk-rows", "0"],
            "'0' is not a positive",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--chunk-rows", "ten"],
            "'ten' is not a positive",
        ),
        (["replay", "log.txt", "--max-listed", "-1"], "argument --max-listed: '-1' is not a whole number"),
        (["replay", "log.txt", "--max-listed", "1.5"], "argument --max-listed: '1.5' is not a whole number"),
    ],
)
def test_a_bad_count_is_a_usage_error_naming_the_option(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert problem in capsys.readouterr().err


def test_max_listed_takes_0_for_all_and_defaults_to_100() -> None:
    assert cli.parser().parse_args(["replay", "log.txt", "--max-listed", "0"]).max_listed == 0
    assert cli.parser().parse_args(["replay", "log.txt"]).max_listed == 100
