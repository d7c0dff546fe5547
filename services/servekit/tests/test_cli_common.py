"""What the command-line tools share: ``--help`` shows a module's docstring as its reader wrote it."""

from __future__ import annotations

import importlib
import re

import pytest

from servekit.cli.common import plain_text

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
