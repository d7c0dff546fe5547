"""What the command-line tools share: ``--help`` shows a module's docstring as its reader wrote it."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from servekit import cli
from servekit.cli.common import plain_text, port_number, registry_version

#: Every tool whose ``--help`` prints its module's docstring (the module with its ``main``).
TOOLS = [
    "servekit.cli",
    "servekit.bench",
    "servekit.bench.batch_scoring",
    "servekit.bench.cpu",
    "servekit.bench.family",
    "servekit.bench.observed",
    "servekit.bench.soak",
    "servekit.rpc.generate",
    "servekit.managed.sagemaker_deploy",
]


@pytest.mark.parametrize(
    ("docstring", "plain"),
    [
        ("``mlp``: train", "mlp: train"),
        (
            "see :mod:`servekit.spans` and :class:`~servekit.rest.telemetry.Timings`",
            "see servekit.spans and servekit.rest.telemetry.Timings",
        ),
        ("``<SVC>_MAX_BATCH_SIZE`` (``413``)", "<SVC>_MAX_BATCH_SIZE (413)"),
        ("no markup", "no markup"),
    ],
)
def test_a_docstring_loses_its_markup_and_keeps_its_words(docstring: str, plain: str) -> None:
    assert plain_text(docstring) == plain


@pytest.mark.parametrize("module", TOOLS)
def test_help_prints_the_docstring_without_markup_and_with_its_own_lines(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mlp --help`` printed ````mlp````, and the benchmarks' lists ran together in one block."""
    tool = importlib.import_module(module)
    main = getattr(tool, "main", None) or importlib.import_module(f"{module}.__main__").main
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert "``" not in shown
    assert not re.search(r":[a-z]+:`", shown), shown
    # The docstring's first line, markup aside, stands as a line of its own.
    documented = importlib.import_module(main.__module__).__doc__ or ""
    assert plain_text(documented.splitlines()[0]) in shown.splitlines(), shown


def test_a_version_number_over_what_a_registry_holds_is_refused_by_the_argument() -> None:
    """MLflow stores a version as a 64-bit integer: one over 2**63 - 1 reached the registry and came
    back as a traceback (SQLite's "Python int too large", a server's 500 retried), exit 1."""
    assert registry_version("9223372036854775807") == "9223372036854775807"
    assert registry_version("007") == "7"
    for number in ("9223372036854775808", "99999999999999999999"):
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            registry_version(number)
        assert str(refused.value) == (
            f"{number!r} is not a registered version's number: a registry holds none over "
            "9223372036854775807 (2**63 - 1)"
        )
    for text in ("0", "-1", "abc", "1.0", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a registered version's number"):
            registry_version(text)


@pytest.mark.parametrize("command", [["promote", "toy"], ["canary", "toy"], ["rollout", "toy"]])
def test_promote_canary_and_rollout_refuse_a_version_over_int64_with_exit_2(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main([*command, "99999999999999999999", "--tracking-uri", "http://127.0.0.1:9"])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "'99999999999999999999' is not a registered version's number" in err
    assert "Traceback" not in err


def test_a_port_outside_1_to_65535_is_refused() -> None:
    """99999 listened on 34463 (the number modulo 65536; 73537 would be bankchurn's own 8001) while
    uvicorn logged 99999; 0 meant the service's own port without a word."""
    assert port_number("1") == 1
    assert port_number("65535") == 65535
    for text in ("0", "65536", "99999", "73537", "-1", "80.0", "http", ""):
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            port_number(text)
        assert str(refused.value) == (
            f"{text!r} is not a port from 1 to 65535 (leave --port out for the service's own port)"
        )
