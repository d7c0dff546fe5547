"""``mlp evaluate``: how good the served answers were, once the truth is known.

Drift says that the inputs moved; only the truth says whether the answers got worse. The truth
comes later, and elsewhere: whether a customer left shows a quarter on, the fare when the trip
ends, a tweet's sentiment when someone reads it. Prediction capture (:mod:`servekit.capture`)
keeps each answer with its request id and its place in the request; a truth file names answers
by the same two and says what happened. Joined, each version's primary metric on the answers it
gave, with its bootstrap interval, is held against the figure the version scored on its own
held-out split when it was trained (SageMaker Model Monitor's model-quality job, on the
platform's own capture and registry).

The capture log is read as it is joined (it can be gigabytes): only captures with a truth row
are kept, and of each only the scored output, its groups, the variant that gave it, how the
router chose it, and when.

The parts, one module each: :mod:`~servekit.evaluation.truth` (the truth file),
:mod:`~servekit.evaluation.joining` (the log joined as it is read), :mod:`~servekit.evaluation.quality`
(the figures and verdicts), :mod:`~servekit.evaluation.canary` (a canary against the stable version),
:mod:`~servekit.evaluation.shadow` (a shadow against the served version on the same requests),
:mod:`~servekit.evaluation.held_out` (the training run's figures), :mod:`~servekit.evaluation.recording`
(``--log``) and :mod:`~servekit.evaluation.report` (the lines printed).
"""

from __future__ import annotations

from servekit.evaluation.canary import CanaryComparison, compare_canaries
from servekit.evaluation.groups import GroupComparison
from servekit.evaluation.held_out import (
    HeldOut,
    HeldOutAnswers,
    VersionNotRegisteredError,
    held_out_answers,
    held_out_figure,
    held_out_parity,
    read_held_out_answers,
    registered_run_id,
    run_artifact_text,
)
from servekit.evaluation.joining import Answers, Grouper, Joined, ShadowAnswers, join
from servekit.evaluation.quality import (
    ParityChange,
    Quality,
    assess,
    independent_difference,
    live_parity,
    parity_against_held_out,
)
from servekit.evaluation.recording import (
    CANARY_KIND,
    KIND,
    KIND_TAG,
    SHADOW_KIND,
    SUPPRESS_RUN_LINKS,
    log_canary_run,
    log_run,
    log_shadow_run,
    logged_by_job,
    run_links_unprinted,
    version_tags,
)
from servekit.evaluation.report import render, verdict
from servekit.evaluation.shadow import ShadowComparison, compare_shadows
from servekit.evaluation.truth import INSTANCE_COLUMN, REQUEST_COLUMN, read_truth
from servekit.evaluation.verdicts import MIN_ROWS, why_no_figure

__all__ = [
    "CANARY_KIND",
    "INSTANCE_COLUMN",
    "KIND",
    "KIND_TAG",
    "MIN_ROWS",
    "REQUEST_COLUMN",
    "SHADOW_KIND",
    "SUPPRESS_RUN_LINKS",
    "Answers",
    "CanaryComparison",
    "GroupComparison",
    "Grouper",
    "HeldOut",
    "HeldOutAnswers",
    "Joined",
    "ParityChange",
    "Quality",
    "ShadowAnswers",
    "ShadowComparison",
    "VersionNotRegisteredError",
    "assess",
    "compare_canaries",
    "compare_shadows",
    "held_out_answers",
    "held_out_figure",
    "held_out_parity",
    "independent_difference",
    "join",
    "live_parity",
    "log_canary_run",
    "log_run",
    "log_shadow_run",
    "logged_by_job",
    "parity_against_held_out",
    "read_held_out_answers",
    "read_truth",
    "registered_run_id",
    "render",
    "run_artifact_text",
    "run_links_unprinted",
    "verdict",
    "version_tags",
    "why_no_figure",
]
