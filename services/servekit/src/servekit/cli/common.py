"""What every ``mlp`` command shares: its usage error, the tracking server, argument types."""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    #: The ``mlp`` parser's sub-commands, which each module of this package adds to.
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"


def documented_parser(prog: str, docstring: str | None, **kwargs: Any) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows ``docstring`` (a module's) as its reader wrote it: its lines,
    paragraphs and lists kept, not re-flowed into one block, and without reStructuredText's markup,
    which ``mlp --help`` printed as it stood (````mlp````, ``:mod:`...```)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=plain_text(docstring or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def plain_text(docstring: str) -> str:
    """``docstring`` with its inline literals and roles (``:mod:`~servekit.x```) as plain text."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", docstring).replace("``", "")


class UsageError(Exception):
    """A command line that cannot run; printed as ``mlp: ...`` with exit status 2."""


def not_a_file(path: Path) -> str:
    """Why ``path``, which is not a file, cannot be read as one."""
    if path.is_dir():
        return "a directory, not a CSV file"
    if path.exists():  # a pipe (<(...)) or a device: read twice, once for its shape, once for its rows
        return "not a regular file (a pipe?); save it to a file and name that"
    return "no such file"


def resolve_tracking_uri(arg: str | None) -> str:
    return arg or os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


#: ``mlp rollout --interval``'s bound: time.sleep overflows near 1e12 seconds, and only after the
#: canary was set; a day between readings is already longer than any rollout waits.
MAX_INTERVAL_SECONDS = 86_400


def interval_seconds(text: str) -> float:
    """Seconds between two readings: over 0 and at most a day (NaN, inf and -1 refused)."""
    seconds = _float(text)
    if not 0 < seconds <= MAX_INTERVAL_SECONDS:  # NaN fails every comparison
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds over 0 and at most {MAX_INTERVAL_SECONDS} (a day)"
        )
    return seconds


def failure_ratio(text: str) -> float:
    """A fraction of requests, 0 to under 1: at 1 or NaN no canary ever fails the check."""
    ratio = _float(text)
    if not 0 <= ratio < 1:
        percent = f"; for {ratio:g} % write {ratio / 100:g}" if 1 <= ratio <= 100 else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fraction from 0 to under 1 (0.01 is 1 %){percent}"
        )
    return ratio


def latency_factor(text: str) -> float:
    """How many times the stable model's p95 the canary's may be: 1 (no slower) or more. Under 1
    a canary as fast as the stable model would fail; NaN or inf would let any canary pass."""
    factor = _float(text)
    if not 1 <= factor < math.inf:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a factor of 1 or more (1.5: the canary's p95 may be 1.5 times the "
            "stable model's)"
        )
    return factor


def registry_version(text: str) -> str:
    """A registered version's number, as the registry names it ("3"): anything else would reach
    the registry and come back as a traceback, as did a number over the largest it can hold."""
    from servekit.model_uri import MAX_REGISTRY_VERSION, holdable_version

    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a registered version's number (1, 2, ...)")
    if not holdable_version(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a registered version's number: a registry holds none over "
            f"{MAX_REGISTRY_VERSION} (2**63 - 1)"
        )
    return str(int(text))


#: The TCP ports ``mlp serve --port`` may name.
MAX_PORT = 65535


def port_number(text: str) -> int:
    """``mlp serve --port``: 1 to 65535. The operating system took a larger one modulo 65536
    (99999 listened on 34463, 73537 on bankchurn's 8001) while uvicorn logged the number given, and
    0 meant the service's own port without a word; leaving ``--port`` out says that."""
    if not text.isdecimal() or not 1 <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port from 1 to {MAX_PORT} (leave --port out for the service's own port)"
        )
    return int(text)


def reasons_count(text: str) -> int:
    """``--reasons``: 1 to MAX_REASONS, the bound of ``?reasons=`` on the API."""
    from servekit.reasons import MAX_REASONS

    if not text.isdigit() or not 1 <= int(text) <= MAX_REASONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_REASONS}")
    return int(text)


#: ``mlp train --seed``'s bound: NumPy's and scikit-learn's generators take 0 to 2**32 - 1, and
#: outside it scikit-learn's error surfaced as the data's ("rows cannot be split").
MAX_SEED = 2**32 - 1


def random_seed(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def share_percent(text: str) -> float:
    from servekit.routing import parse_share

    try:
        return parse_share(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ramp_shares(text: str) -> list[float]:
    shares = [share_percent(part.strip()) for part in text.split(",")]
    if any(later < earlier for earlier, later in itertools.pairwise(shares)):
        raise argparse.ArgumentTypeError(f"{text!r}: a ramp only goes up (a key's model never changes back)")
    return shares
