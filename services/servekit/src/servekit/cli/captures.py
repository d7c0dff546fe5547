"""``mlp replay | evaluate``: the answers a service captured, answered again or scored against the
truth that came later."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servekit import registry
from servekit.cli.common import (
    UsageError,
    non_negative_int,
    not_a_file,
    positive_int,
    resolve_tracking_uri,
)
from servekit.datasets import DatasetError
from servekit.replay.report import MAX_LISTED

if TYPE_CHECKING:
    from servekit.cli.common import Commands
    from servekit.evaluation.joining import Joined
    from servekit.replay.capture_objects import Captured

#: ``mlp evaluate``'s exit status when a version, or a canary against the stable model, does worse
#: beyond the noise: a verdict on the run's files, which running it again repeats, so a Job fails at
#: once on it, as on ``mlp score``'s 3 (over --max-rejected). Not 1, which is the registry
#: unreachable (or a fault no one foresaw) and worth retrying, nor 2, a run that cannot start.
EVALUATE_WORSE = 3
#: ``mlp replay``'s exit status when a captured answer differs from the one its version gives now,
#: or names a version the registry does not hold: a verdict too, for the same reasons.
REPLAY_DIFFERS = 3


@contextmanager
def _capture_log(command: str, path: str) -> Iterator[Iterator[Captured]]:
    """The captures of a log (a file, a directory of files, or ``-``: standard input) for ``mlp
    replay`` and ``mlp evaluate``, read as they are iterated.

    A missing path, a directory without a file, and a capture line that cannot be read are the
    command's usage errors.
    """
    from servekit.replay.capture_objects import CaptureLineError
    from servekit.replay.log_files import log_files, read_log

    if path != "-":
        if not Path(path).exists():
            raise UsageError(f"{command}: {path}: no such file or directory")
        if not log_files(Path(path)):
            raise UsageError(f"{command}: {path}: a directory without a file to read")
    try:
        yield read_log(path)
    except CaptureLineError as exc:
        raise UsageError(f"{command}: {path}: {exc}") from exc


def _nothing_joined(joined: Joined, service: str, args: argparse.Namespace) -> str:
    """Why no captured answer met its truth, told apart: a bare "none has a row" would send the
    reader to the truth file when the log holds another service, or each answer twice."""
    where = f"{args.captures}"
    if not joined.captured and not joined.other_services:
        return f"{where}: no capture lines of {service} (logger servekit.capture) in it"
    if not joined.captured:
        others = joined.other_services
        return f"{where}: no captured answer of {service}; its {others:,} captures are another service's"
    if joined.ambiguous:
        return (
            f"every captured answer of {service} in {where} with a row in {args.truth} was captured "
            f"more than once ({joined.ambiguous:,} of them: the same log read twice?), so the truth "
            "cannot say which answer it is the truth of"
        )
    if joined.without_request_id == joined.captured:
        return (
            f"none of the {joined.captured:,} captured answers of {service} in {where} has a request "
            "id to meet the truth by (capture objects without the log line around them?)"
        )
    return (
        f"none of the {joined.captured:,} captured answers of {service} in {where} has a row in "
        f"{args.truth} (by {service}'s request id and instance)"
    )


def cmd_replay(args: argparse.Namespace) -> int:
    """0 when every captured answer is reproduced; REPLAY_DIFFERS when one differs or its version is
    not in the registry (whatever else could not be checked: no retry makes that pass); else 1, a
    version that could not be loaded for a cause that may pass (the registry unreachable)."""
    from servekit.loading import load_artifact
    from servekit.mlflow_registry import require_database
    from servekit.model import ServedModel
    from servekit.replay.replaying import replay
    from servekit.replay.report import failed_for_good, render
    from servekit.spec import ServiceSpec

    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    # Before MLflow, which would make an empty registry at a mistyped path and report every
    # version in the log as not registered.
    require_database(tracking_uri, create=False)

    def load(name: str, version: str) -> tuple[ServiceSpec, ServedModel]:
        spec = registry.get_service(name)
        return spec, spec.model(load_artifact(spec.name, f"models:/{name}/{version}", tracking_uri))

    # Read as replayed: a capture log can be far bigger than memory.
    with _capture_log("replay", args.file) as captures:
        reports = replay(captures, load, listed=args.max_listed)
    if not reports:
        raise UsageError(f"replay: {args.file}: no capture lines (logger servekit.capture) in it")
    text, reproduced = render(reports)
    print(text)
    if reproduced:
        return 0
    return REPLAY_DIFFERS if failed_for_good(reports) else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from servekit.evaluation import (
        CANARY_KIND,
        KIND,
        MIN_ROWS,
        SHADOW_KIND,
        Grouper,
        HeldOut,
        VersionNotRegisteredError,
        assess,
        compare_canaries,
        compare_shadows,
        held_out_figure,
        join,
        log_canary_run,
        log_run,
        log_shadow_run,
        read_truth,
        render,
    )
    from servekit.evaluation.trained_on import TrainingTypes
    from servekit.mlflow_registry import registry_client

    spec = registry.get_service(args.service)
    job = _evaluation_job(args)
    began = time.time()  # an earlier try of its Job logged within a Job's life before this
    # The files and the registry are checked before the log, which can take minutes, is read.
    if not args.truth.is_file():
        raise UsageError(f"evaluate: --truth {args.truth}: {not_a_file(args.truth)}")
    captured = _captured_keys(args, spec.name)
    with _capture_log("evaluate", args.captures) as captures:
        try:
            truth = read_truth(args.truth, spec.recipe, captured)
        except DatasetError as exc:
            raise UsageError(f"evaluate: --truth {args.truth}: {exc}") from exc
        del captured
        tracking_uri = resolve_tracking_uri(args.tracking_uri)
        client = registry_client(tracking_uri)
        grouper = Grouper(spec.recipe)
        joined = join(captures, spec.name, grouper, truth, TrainingTypes(spec.recipe).hashes)
        record = truth.record
        # Let go before the figures, which need none of it: a key per truth row kept.
        del truth
    if not joined.versions:
        raise UsageError(f"evaluate: {_nothing_joined(joined, spec.name, args)}")
    qualities = []
    unregistered: set[str] = set()  # scored, but neither compared nor recorded
    for answers in joined.versions:
        try:
            held_out = held_out_figure(client, spec.name, answers.version, spec.recipe.primary_metric)
        except VersionNotRegisteredError as exc:
            held_out = HeldOut(None, str(exc))
            unregistered.add(answers.version)
        left, note = _without_training_rows(client, answers, tracking_uri, unregistered)
        qualities.append(
            replace(
                assess(
                    left.answers,
                    grouper,
                    held_out.figure,
                    held_out_note=held_out.note,
                    held_out_rows=held_out.rows,
                    held_out_parity=held_out.parity,
                    min_rows=args.min_rows or MIN_ROWS,
                ),
                training_rows_left_out=left.left_out,
                training_rows_note=note,
            )
        )
    canaries = compare_canaries(joined, grouper, min_rows=args.min_rows or MIN_ROWS)
    shadows = compare_shadows(joined, grouper, min_rows=args.min_rows or MIN_ROWS)
    report = render(joined, qualities, str(args.truth), canaries, shadows)
    print("\n".join(line for line in (report, record.left_out_line(spec.name)) if line))
    if args.log:
        source = str(args.captures)
        # This evaluation's own runs, never taken for those of an earlier try of its Job.
        logged: set[str] = set()
        already = partial(_logged_already, client, spec.name, job=job, began=began, logged=logged)
        for quality in qualities:
            if quality.version in unregistered:
                continue
            if already(f"v{quality.version}", quality.version, kind=KIND):
                continue
            run = log_run(client, quality, source, job, truth=record)
            logged.add(run.run_id)
            print(_logged_line(spec.name, quality, run.run_id, run.kept))
        for shadow in shadows:
            log = partial(log_shadow_run, client, shadow, source, job)
            what = f"shadow v{shadow.shadow} against v{shadow.served}"
            done = partial(already, what, shadow.shadow, kind=SHADOW_KIND, against=shadow.served)
            _log_comparison(
                client,
                spec.name,
                "shadow",
                shadow.shadow,
                log=log,
                read_by="mlp versions shows",
                done=done,
                logged=logged,
            )
        for canary in canaries:
            if canary.stable:  # else no one stable version in its period to hold it against
                log = partial(log_canary_run, client, canary, source, job)
                what = f"canary v{canary.canary} against v{canary.stable}"
                done = partial(already, what, canary.canary, kind=CANARY_KIND, against=canary.stable)
                _log_comparison(
                    client,
                    spec.name,
                    "canary",
                    canary.canary,
                    log=log,
                    read_by="mlp promote prints",
                    done=done,
                    logged=logged,
                )
    # A shadow serves nobody: its verdict informs a promotion, it is no failure of what is served.
    verdicts = [q.verdict for q in qualities] + [c.verdict for c in canaries]
    return EVALUATE_WORSE if "worse" in verdicts else 0


def _logged_line(name: str, quality: Any, run_id: str, kept: str) -> str:
    """What ``--log`` did of a version: its run, and its tags replaced or (``kept``) left as they
    were, as a run without a figure says nothing of the verdict the pods fire on."""
    if kept:
        return (
            f"{name} v{quality.version}: logged as run {run_id}; its verdict left as it was ({kept}): "
            f"this run has no figure to replace it ({quality.note})"
        )
    return (
        f"{name} v{quality.version}: logged as run {run_id} "
        "(and the version's live.* tags, which mlp versions shows)"
    )


def _captured_keys(args: argparse.Namespace, service: str) -> set[tuple[str, int]] | None:
    """The (request id, instance) of every capture of ``service``, read before the truth so that
    only its rows of them are kept: a cumulative truth file grows every day, the answers of a run
    do not. None for a log on standard input, which cannot be read twice: every row is kept."""
    if args.captures == "-":
        return None
    with _capture_log("evaluate", args.captures) as captures:
        return {(c.request_id, c.instance) for c in captures if c.name == service}


def _without_training_rows(
    client: Any, answers: Any, tracking_uri: str, unregistered: set[str]
) -> tuple[Any, str]:
    """A version's answers less those of rows it was trained on (``LeftOut``), and what to say of
    them: how many, or why they could not be found."""
    from servekit.evaluation.trained_on import LeftOut, left_out_note, training_rows, without_training_rows

    if answers.version in unregistered:
        return LeftOut(answers, None), ""  # its verdict says it is not registered
    trained, why = training_rows(client, answers.name, answers.version, tracking_uri)
    if trained is not None and answers.rows is None:
        trained, why = None, "the captured inputs cannot be typed as its training rows were"
    left = without_training_rows(answers, trained)
    return left, left_out_note(answers.version, len(answers.truths), left, why)


def _evaluation_job(args: argparse.Namespace) -> str:
    """The Job ``--job`` names (empty: none), which only ``--log`` records."""
    if args.job is None:
        return ""
    if not args.log:
        raise UsageError(f"evaluate: --job {args.job}: names the Job on the runs --log records; add --log")
    if not args.job.strip():
        raise UsageError("evaluate: --job: empty; name the Kubernetes Job running the evaluation")
    return str(args.job)


def _log_comparison(
    client: Any,
    name: str,
    role: str,
    version: str,
    *,
    log: Callable[[], str],
    read_by: str,
    done: Callable[[], bool],
    logged: set[str],
) -> None:
    """Log a shadow's or a canary's comparison (``log``) on its version, or say why not: it is not
    a registered version, whose tags could hold it, or this Job logged it already (``done``, said
    when it did). ``logged``: the runs this evaluation logged, which this one's joins."""
    from servekit.evaluation import VersionNotRegisteredError, registered_run_id

    try:
        registered_run_id(client, name, version)
    except VersionNotRegisteredError as exc:
        print(f"{name} {role} v{version}: not logged: {exc}")
        return
    if done():
        return
    run_id = log()
    logged.add(run_id)
    print(
        f"{name} {role} v{version}: logged as run {run_id} (and the version's {role}.* tags, which {read_by})"
    )


def _logged_already(
    client: Any,
    name: str,
    what: str,
    version: str,
    *,
    kind: str,
    against: str = "",
    job: str,
    began: float,
    logged: set[str],
) -> bool:
    """Whether the Job ``job`` logged ``what`` (``v2``, ``shadow v3 against v2``) already
    (``logged_by_job``: since ``began`` less a Job's life, not among ``logged``, this evaluation's
    own runs), said when it did: a retry of the Job after a registry failure part-way logs only
    what it had not."""
    from servekit.evaluation import logged_by_job

    run_id = logged_by_job(client, name, kind, version, job, against=against, began=began, ignored=logged)
    if run_id is None:
        return False
    print(f"{name} {what}: logged by Job {job} already, as run {run_id}; not logged again")
    return True


def add_commands(commands: Commands) -> None:
    """Adds ``mlp replay``, ``mlp evaluate``."""
    replay = commands.add_parser(
        "replay",
        help="answer captured predictions again with the versions that gave them, and compare",
        description="Reads capture lines, loads each version they name from the registry, answers "
        "each captured input again and compares every field of the answer. Exits "
        f"{REPLAY_DIFFERS} when an answer differs or a version is not in the registry; 1 when a "
        "version could not be loaded otherwise (the registry unreachable: worth retrying); 2 when "
        "the file or the command cannot run.",
    )
    replay.add_argument(
        "file",
        help="log lines (JSON or text; other lines are skipped), a directory of such files (every file "
        "under it, in path order: a log store's export), or - for stdin",
    )
    replay.add_argument(
        "--max-listed",
        type=non_negative_int,
        default=MAX_LISTED,
        help=f"differences listed per version; the rest are counted (default {MAX_LISTED}; 0: all)",
    )
    replay.add_argument("--tracking-uri")
    replay.set_defaults(func=cmd_replay)

    evaluate = commands.add_parser(
        "evaluate",
        help="score captured answers against the truth that came later, each version against "
        "its held-out figure",
        description="Joins prediction capture lines with a truth file by request id and instance, and "
        "reports each version's primary metric on its live answers, with its 95% bootstrap interval, "
        "per group too, against the figure it scored on its held-out split. Exits "
        f"{EVALUATE_WORSE} when a version does worse beyond the noise of both samples; 1 when the "
        "registry cannot be reached (worth retrying); 2 when the files or the command cannot run.",
    )
    evaluate.add_argument("service")
    evaluate.add_argument(
        "captures",
        help="log lines holding capture lines (as mlp replay reads them), a directory of such files, "
        "or - for stdin",
    )
    evaluate.add_argument(
        "--truth",
        type=Path,
        required=True,
        metavar="CSV",
        help="request_id, the service's target column and, for batch instances, instance (default 0)",
    )
    evaluate.add_argument(
        "--min-rows",
        type=positive_int,
        help="answers with their truth a version needs for a figure (default: what a group of "
        "held-out rows needs at training, 100)",
    )
    evaluate.add_argument(
        "--log",
        action="store_true",
        help="record each version's figures as an MLflow run, and tag the version",
    )
    evaluate.add_argument(
        "--job",
        metavar="NAME",
        help="the Kubernetes Job running this evaluation, recorded on the runs --log makes (the "
        "live-evaluation component passes its own): LiveEvaluationFailed then tells the worse "
        "verdict this Job recorded from one recorded by anyone else",
    )
    evaluate.add_argument("--tracking-uri")
    evaluate.set_defaults(func=cmd_evaluate)
