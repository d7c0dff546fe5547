"""Numeric options of ``mlp``: a bad value is refused before anything runs, naming the option."""

from __future__ import annotations

from pathlib import Path

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
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--workers", "0"],
            "argument --workers: '0' is not a positive",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--reasons", "0"],
            "argument --reasons: '0' is not a whole number from 1 to 50",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--reasons", "51"],
            "argument --reasons: '51' is not a whole number from 1 to 50",
        ),
        # A version the registry cannot parse came back from it as a traceback.
        (["promote", "bankchurn", "abc"], "argument version: 'abc' is not a registered version's number"),
        (["canary", "bankchurn", "v2"], "argument version: 'v2' is not a registered version's number"),
        (
            ["rollout", "bankchurn", "0", "--prometheus", "http://p"],
            "argument version: '0' is not a registered version's number",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--keep", "CustomerId,,Surname"],
            "argument --keep: 'CustomerId,,Surname': name each column, separated by commas",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--keep", "CustomerId,Age,CustomerId"],
            "argument --keep: 'CustomerId,Age,CustomerId' names 'CustomerId' twice; name each column once",
        ),
        (
            ["score", "bankchurn", "in.csv", "--output", "out.csv", "--max-rejected", "5 rows"],
            "argument --max-rejected: '5 rows' is neither a number of rows (12) nor a share of them (0.5%)",
        ),
        (["replay", "log.txt", "--max-listed", "-1"], "argument --max-listed: '-1' is not a whole number"),
        (["replay", "log.txt", "--max-listed", "1.5"], "argument --max-listed: '1.5' is not a whole number"),
        (["canary", "bankchurn", "2", "--percent", "120"], "argument --percent: '120' is not a percentage"),
        # NumPy's ValueError came as a traceback, and scikit-learn's as the data's fault.
        (
            ["train", "bankchurn", "--seed", "-1"],
            "argument --seed: '-1' is not a whole number from 0 to 4294967295",
        ),
        (
            ["train", "bankchurn", "--seed", "4294967296"],
            "argument --seed: '4294967296' is not a whole number from 0 to 4294967295",
        ),
        (["canary", "bankchurn", "2", "--percent", "half"], "argument --percent: 'half' is not a number"),
        (
            ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--ramp", "5,50,25"],
            "argument --ramp: '5,50,25': a ramp only goes up",
        ),
        (
            ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--ramp", "5,,50"],
            "argument --ramp: '' is not a number",
        ),
        # Each reached time.sleep after the canary was set, which raised and left it unwatched.
        *(
            (
                ["rollout", "bankchurn", "2", "--prometheus", "http://p", f"--interval={seconds}"],
                f"argument --interval: '{seconds}' is not a number of seconds over 0 and at most 86400",
            )
            for seconds in ("-1", "0", "nan", "inf", "1e12")
        ),
        # NaN compares false with every figure: it turned the failure check off.
        (
            ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--max-failure-ratio", "nan"],
            "argument --max-failure-ratio: 'nan' is not a fraction from 0 to under 1 (0.01 is 1 %)",
        ),
        (
            ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--max-failure-ratio", "5"],
            "argument --max-failure-ratio: '5' is not a fraction from 0 to under 1 (0.01 is 1 %); "
            "for 5 % write 0.05",
        ),
        (
            ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--max-failure-ratio", "1"],
            "argument --max-failure-ratio: '1' is not a fraction",
        ),
        *(
            (
                ["rollout", "bankchurn", "2", "--prometheus", "http://p", f"--latency-factor={factor}"],
                f"argument --latency-factor: '{factor}' is not a factor of 1 or more",
            )
            for factor in ("nan", "0", "0.5", "inf")
        ),
    ],
)
def test_a_bad_count_is_a_usage_error_naming_the_option(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert problem in capsys.readouterr().err


def test_the_columns_kept_are_a_list_and_default_to_every_one() -> None:
    argv = ["score", "bankchurn", "in.csv", "--output", "out.csv"]
    assert cli.parser().parse_args([*argv, "--keep", "CustomerId, Surname"]).keep == ("CustomerId", "Surname")
    assert cli.parser().parse_args(argv).keep is None


def test_max_listed_takes_0_for_all_and_defaults_to_100() -> None:
    assert cli.parser().parse_args(["replay", "log.txt", "--max-listed", "0"]).max_listed == 0
    assert cli.parser().parse_args(["replay", "log.txt"]).max_listed == 100


def test_a_ramp_is_a_list_of_shares_and_a_canary_ended_takes_no_share(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = cli.parser().parse_args(
        ["rollout", "bankchurn", "2", "--prometheus", "http://p", "--ramp", "5, 25,50"]
    )
    assert args.ramp == [5.0, 25.0, 50.0]
    assert cli.parser().parse_args(["canary", "bankchurn", "2", "--percent", "12.5"]).percent == 12.5
    # Refused before the registry is asked (none runs at this address).
    assert (
        cli.main(["canary", "bankchurn", "--end", "--percent", "5", "--tracking-uri", "http://127.0.0.1:9"])
        == 2
    )
    assert "--end sends it none" in capsys.readouterr().err


def test_a_summary_nowhere_to_write_or_over_a_file_of_the_run_is_refused_before_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("CustomerId\n1\n")
    score = ["score", "bankchurn", str(source), "--output", str(tmp_path / "scores.csv")]
    # No registry runs at this address: a refusal that came after asking it would be exit 1.
    nowhere = tmp_path / "missing" / "run.json"
    assert cli.main([*score, "--summary", str(nowhere), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert f"--summary {nowhere}: no directory {nowhere.parent}" in capsys.readouterr().err
    assert cli.main([*score, "--summary", str(source), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "the input or the output; name another file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_the_rollouts_thresholds_take_their_bounds_and_say_what_they_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rollout = ["rollout", "bankchurn", "2", "--prometheus", "http://p"]
    args = cli.parser().parse_args([*rollout, "--max-failure-ratio", "0", "--latency-factor", "1"])
    assert (args.max_failure_ratio, args.latency_factor, args.interval) == (0.0, 1.0, 60.0)
    assert cli.parser().parse_args([*rollout, "--interval", "0.5"]).interval == 0.5
    with pytest.raises(SystemExit):
        cli.main(["rollout", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "--max-failure-ratio MAX_FAILURE_RATIO fraction of the canary's requests that may fail" in help_text
    )
    assert "0.01 is 1 %" in help_text
    assert "--latency-factor LATENCY_FACTOR times the stable model's p95 model time" in help_text


def test_a_reader_gone_first_ends_any_command_quietly_as_sigpipe_would() -> None:
    """``mlp versions | head -3``: the end of a pipeline, not an error of the command."""
    import os
    import subprocess
    import sys

    reader, writer = os.pipe()
    os.close(reader)
    try:
        ran = subprocess.run(
            [str(Path(sys.executable).with_name("mlp")), "services"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(writer)
    assert (ran.returncode, ran.stderr) == (141, "")
