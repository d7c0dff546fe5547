"""``python -m servekit.bench.family``: how often a comparison per group calls a group apart by
chance, with each group's interval at 95 % and with the groups' intervals held together at 95 %
(Bonferroni, as ``mlp evaluate`` does: :mod:`servekit.evaluation.groups`), and what holding them
together costs in the power to find a group truly worse.

Each run simulates a shadow and the served version answering the same requests of ``--groups``
groups of ``--rows`` answers (a fare regressor's, scored by MAE): the two versions' errors are
drawn alike, so any group called better or worse is noise. A second set of runs makes the shadow's
errors in one group ``--worse`` times larger: the share of those runs in which that group is called
worse is the power. The figures are measured, beside what theory says of the first:
1 - 0.95^groups at 95 % each, at most 5 % together.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from servekit.cli.common import documented_parser
from servekit.evaluation.verdicts import verdict_of
from servekit.training import uncertainty

METRIC = uncertainty.PRIMARY_METRICS["mae"]


@dataclass(frozen=True)
class Rates:
    """Shares of runs, at one level per group."""

    #: Runs in which some group of two alike versions was called better or worse.
    any_apart: float
    #: Runs in which the group truly worse was called worse.
    power: float


def one_run(
    rng: np.random.Generator, groups: int, rows: int, worse: float, levels: Sequence[float], *, seed: int
) -> list[tuple[bool, bool]]:
    """For each level: whether some group was called apart when the versions are alike, and
    whether the group truly worse (the first) was called worse."""
    found = []
    truth = rng.normal(size=(groups, rows))
    served = truth + rng.normal(size=(groups, rows))
    shadow = truth + rng.normal(size=(groups, rows))
    made_worse = shadow.copy()
    made_worse[0] = truth[0] + (shadow[0] - truth[0]) * worse
    for level in levels:
        apart = any(
            verdict_of(
                uncertainty.paired_difference(METRIC, truth[g], shadow[g], served[g], level=level, seed=seed),
                greater_is_better=False,
            )
            != "within the noise"
            for g in range(groups)
        )
        first = uncertainty.paired_difference(
            METRIC, truth[0], made_worse[0], served[0], level=level, seed=seed
        )
        found.append((apart, verdict_of(first, greater_is_better=False) == "worse"))
    return found


def measure(runs: int, groups: int, rows: int, worse: float, seed: int = 0) -> dict[str, Rates]:
    """The two rates at 95 % each and at the groups' Bonferroni level, over ``runs`` runs."""
    levels = {"95% each": uncertainty.LEVEL, "95% together": uncertainty.each_of(groups)}
    rng = np.random.default_rng(seed)
    tallies = np.zeros((len(levels), 2))
    for run in range(runs):
        tallies += np.array(one_run(rng, groups, rows, worse, list(levels.values()), seed=run))
    return {name: Rates(*(tallies[i] / runs)) for i, name in enumerate(levels)}


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench.family", __doc__)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--rows", type=int, default=200, help="answers with their truth in each group")
    p.add_argument(
        "--worse", type=float, default=1.3, help="the shadow's errors in the worse group, times the served"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    found = measure(args.runs, args.groups, args.rows, args.worse)
    each, together = found["95% each"], found["95% together"]
    print(
        f"{args.runs} runs of {args.groups} groups of {args.rows} answers "
        f"({time.perf_counter() - started:.0f} s):"
    )
    print(
        f"  two alike versions, some group called apart: {each.any_apart:.1%} at 95% each "
        f"(theory {1 - uncertainty.LEVEL**args.groups:.1%}), {together.any_apart:.1%} held together "
        f"at {uncertainty.percent(uncertainty.each_of(args.groups))} each (theory: at most 5%)"
        + (f"; {each.any_apart / together.any_apart:.1f} times fewer" if together.any_apart else "")
    )
    print(
        f"  one group's errors {args.worse:g} times the served version's, called worse: "
        f"{each.power:.1%} at 95% each, {together.power:.1%} held together"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
