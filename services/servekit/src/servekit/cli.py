"""``mlp``: train, promote and serve any installed model service.

Services are found through the ``servekit.services`` entry points, so a new
service needs no change here.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servekit import registry
from servekit.datasets import DatasetError
from servekit.errors import ServekitError
from servekit.metrics.names import CANARY_FAILURE_RATIO, CANARY_LATENCY_FACTOR
from servekit.replay import MAX_LISTED
from servekit.settings import SettingsError
from servekit.termination import terminated_as_exit

if TYPE_CHECKING:
    from servekit.replay import Captured
    from servekit.scoring.limits import RejectionLimit

DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"
#: The service ``mlp serve`` runs when none is named (set by the container image).
SERVICE_ENV = "MLP_SERVICE"
#: How long ``mlp api-key``'s keys live unless told: a quarter, as cloud providers advise for
#: access keys; ApiKeyExpiresSoon warns two weeks before a client's last key runs out.
API_KEY_DAYS = 90
#: How soon a changed keys file takes effect (servekit.auth.RELOAD_SECONDS, plus the kubelet's
#: refresh when it is a Secret's).
RELOAD_NOTE = "5 s (of a replaced Secret: about a minute, the kubelet's refresh)"


#: ``mlp score``'s exit status when more rows were rejected than ``--max-rejected`` allows: apart
#: from 1 (the registry or the model could not be reached; worth retrying) and 2 (the input or the
#: command cannot run), so a Job fails at once on it rather than scoring the same file again.
SCORE_OVER_REJECTION_LIMIT = 3


class UsageError(Exception):
    """A command line that cannot run; printed as ``mlp: ...`` with exit status 2."""


def _tracking_uri(arg: str | None) -> str:
    return arg or os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def cmd_train(args: argparse.Namespace) -> int:
    from servekit.training.trainer import current_champion, registry_client, train

    if args.data is not None and len(args.services) > 1:
        raise UsageError("train: --data is one service's file; name a single service with it")
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"train: --data {args.data}: no such file")
    # Names, data file and server are checked before anything trains: a typo costs no run.
    specs = [registry.get_service(name) for name in args.services]
    tracking_uri = _tracking_uri(args.tracking_uri)
    client = registry_client(tracking_uri)
    for spec in specs:
        champion = current_champion(client, spec.name) if args.if_no_champion else None
        if champion is not None:
            print(f"{spec.name}: champion v{champion} exists; not training")
            continue
        try:
            result = train(spec, tracking_uri, args.data, seed=args.seed)
        except DatasetError as exc:
            raise UsageError(f"train {spec.name}: {args.data}: {exc}") from exc
        figures = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()))
        print(f"{spec.name}: registered v{result.version} (run {result.run_id}) as challenger; {figures}")
        print(f"{spec.name}: {result.decision}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from servekit.training.trainer import promote

    spec = registry.get_service(args.service)
    print(promote(spec, _tracking_uri(args.tracking_uri), args.version))
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    from servekit.training.trainer import set_canary

    spec = registry.get_service(args.service)
    if args.end and args.percent is not None:
        raise UsageError("canary: --percent sets the share of a new canary; --end sends it none")
    tracking_uri = _tracking_uri(args.tracking_uri)
    print(set_canary(spec, tracking_uri, None if args.end else args.version, args.percent))
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from servekit.rollout import Criteria, PrometheusReader, rollout

    spec = registry.get_service(args.service)
    criteria = Criteria(args.max_failure_ratio, args.latency_factor, args.min_requests)
    reader = PrometheusReader(args.prometheus, spec.name, match=args.match)
    promoted = rollout(
        spec,
        _tracking_uri(args.tracking_uri),
        args.version,
        reader,
        criteria=criteria,
        interval=args.interval,
        steps=args.steps,
        ramp=args.ramp,
    )
    return 0 if promoted else 1


def cmd_versions(args: argparse.Namespace) -> int:
    from servekit.training.trainer import registry_client
    from servekit.training.versions import list_versions, render

    spec = registry.get_service(args.service)
    tracking_uri = _tracking_uri(args.tracking_uri)
    rows = list_versions(spec, registry_client(tracking_uri), args.limit)
    print(render(spec, rows, tracking_uri))
    return 0


@contextmanager
def _capture_log(command: str, path: str) -> Iterator[Iterator[Captured]]:
    """The captures of a log (a file, a directory of files, or ``-``: standard input) for ``mlp
    replay`` and ``mlp evaluate``, read as they are iterated.

    A missing path, a directory without a file, and a capture line that cannot be read are the
    command's usage errors.
    """
    from servekit.replay import CaptureLineError, log_files, read_log

    if path != "-":
        if not Path(path).exists():
            raise UsageError(f"{command}: {path}: no such file or directory")
        if not log_files(Path(path)):
            raise UsageError(f"{command}: {path}: a directory without a file to read")
    try:
        yield read_log(path)
    except CaptureLineError as exc:
        raise UsageError(f"{command}: {path}: {exc}") from exc


def cmd_replay(args: argparse.Namespace) -> int:
    from servekit.loading import load_artifact
    from servekit.model import ServedModel
    from servekit.replay import render, replay
    from servekit.spec import ServiceSpec

    tracking_uri = _tracking_uri(args.tracking_uri)

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
    return 0 if reproduced else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from servekit.evaluation import (
        MIN_ROWS,
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
    from servekit.training.trainer import registry_client

    spec = registry.get_service(args.service)
    job = _evaluation_job(args)
    # The files and the registry are checked before the log, which can take minutes, is read.
    with _capture_log("evaluate", args.captures) as captures:
        if not args.truth.is_file():
            raise UsageError(f"evaluate: --truth {args.truth}: no such file")
        try:
            truth = read_truth(args.truth, spec.recipe)
        except DatasetError as exc:
            raise UsageError(f"evaluate: --truth {args.truth}: {exc}") from exc
        client = registry_client(_tracking_uri(args.tracking_uri))
        grouper = Grouper(spec.recipe)
        joined = join(captures, spec.name, grouper, truth)
        # Let go before the figures, which need none of it: a key per truth row, 86 MiB at 400,000.
        del truth
    if not joined.versions:
        raise UsageError(
            f"evaluate: none of the {joined.captured:,} captured answers of {spec.name} in {args.captures} "
            f"has a row in {args.truth} (by {spec.name}'s request id and instance)"
        )
    qualities = []
    unregistered: set[str] = set()  # scored, but neither compared nor recorded
    for answers in joined.versions:
        try:
            held_out = held_out_figure(client, spec.name, answers.version, spec.recipe.primary_metric)
        except VersionNotRegisteredError as exc:
            held_out = HeldOut(None, str(exc))
            unregistered.add(answers.version)
        qualities.append(
            assess(
                answers,
                grouper,
                held_out.figure,
                held_out_note=held_out.note,
                held_out_rows=held_out.rows,
                held_out_parity=held_out.parity,
                min_rows=args.min_rows or MIN_ROWS,
            )
        )
    canaries = compare_canaries(joined, grouper, min_rows=args.min_rows or MIN_ROWS)
    shadows = compare_shadows(joined, grouper, min_rows=args.min_rows or MIN_ROWS)
    print(render(joined, qualities, str(args.truth), canaries, shadows))
    if args.log:
        source = str(args.captures)
        for quality in qualities:
            if quality.version in unregistered:
                continue
            run_id = log_run(client, quality, source, job)
            print(
                f"{spec.name} v{quality.version}: logged as run {run_id} "
                "(and the version's live.* tags, which mlp versions shows)"
            )
        for shadow in shadows:
            log = partial(log_shadow_run, client, shadow, source, job)
            _log_comparison(client, spec.name, "shadow", shadow.shadow, log=log, read_by="mlp versions shows")
        for canary in canaries:
            if canary.stable:  # else no one stable version in its period to hold it against
                log = partial(log_canary_run, client, canary, source, job)
                _log_comparison(
                    client, spec.name, "canary", canary.canary, log=log, read_by="mlp promote prints"
                )
    # A shadow serves nobody: its verdict informs a promotion, it is no failure of what is served.
    verdicts = [q.verdict for q in qualities] + [c.verdict for c in canaries]
    return 1 if "worse" in verdicts else 0


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
    client: Any, name: str, role: str, version: str, *, log: Callable[[], str], read_by: str
) -> None:
    """Log a shadow's or a canary's comparison (``log``) on its version, or say why not: it is not
    a registered version, whose tags could hold it."""
    from servekit.evaluation import VersionNotRegisteredError, registered_run_id

    try:
        registered_run_id(client, name, version)
    except VersionNotRegisteredError as exc:
        print(f"{name} {role} v{version}: not logged: {exc}")
        return
    run_id = log()
    print(
        f"{name} {role} v{version}: logged as run {run_id} (and the version's {role}.* tags, which {read_by})"
    )


def cmd_score(args: argparse.Namespace) -> int:
    from servekit.loading import ModelLoadError, load_artifact
    from servekit.scoring import score_file, write_summary
    from servekit.scoring.formats import ScoringError
    from servekit.scoring.pool import usable_cpus
    from servekit.training.trainer import registry_client

    if not args.input.exists():
        raise UsageError(f"score: {args.input}: no such file or directory")
    if args.summary is not None:
        if args.summary.resolve() in {args.input.resolve(), args.output.resolve()}:
            raise UsageError(f"score: --summary {args.summary}: the input or the output; name another file")
        if not args.summary.parent.is_dir():
            raise UsageError(f"score: --summary {args.summary}: no directory {args.summary.parent}")
    started = datetime.now(UTC)
    spec = registry.get_service(args.service)
    uri = args.model_uri or f"models:/{spec.name}@champion"
    tracking_uri = _tracking_uri(args.tracking_uri)
    registry_client(tracking_uri)  # an unreachable registry is one line, not a retrying traceback
    try:
        model = spec.model(load_artifact(spec.name, uri, tracking_uri))
    except ModelLoadError as exc:
        print(f"mlp: score: {uri}: {exc}", file=sys.stderr)
        return 1
    try:
        summary = score_file(
            spec,
            model,
            args.input,
            args.output,
            explain=args.explain,
            prefix=args.prefix,
            chunk_rows=args.chunk_rows,
            workers=args.workers or usable_cpus(),
            progress=lambda line: print(f"mlp: score: {spec.name}: {line}", file=sys.stderr, flush=True),
        )
    except ScoringError as exc:
        raise UsageError(f"score: {args.input}: {exc}") from exc
    print(summary.render(model, args.output))
    limit: RejectionLimit = args.max_rejected
    allowed = limit.allowed(summary.rows)
    over = limit.exceeded(summary.rejected, summary.rows)
    status = SCORE_OVER_REJECTION_LIMIT if over else 0
    if args.summary is not None:
        written = {
            **summary.as_json(model, args.input, args.output),
            "max_rejected": {"limit": str(limit), "allowed": allowed, "exceeded": over},
            "started_at": started.isoformat(timespec="seconds"),
            "exit_status": status,
        }
        write_summary(args.summary, written)
    if over:
        print(
            f"mlp: score: {spec.name}: {summary.rejected:,} of {summary.rows:,} rows rejected, over "
            f"--max-rejected {limit} ({allowed:,}); the output is written, with each row's problem",
            file=sys.stderr,
        )
    elif summary.rejected:
        print(f"{summary.rejected:,} rejected rows are within --max-rejected {limit} ({allowed:,})")
    return status


def service_name(args: argparse.Namespace, environ: Mapping[str, str | None] = os.environ) -> str:
    """The service ``mlp serve`` runs: its argument, else ``$MLP_SERVICE`` (set by the image)."""
    service = args.service or (environ.get(SERVICE_ENV) or "").strip()
    if not service:
        raise UsageError(
            f"serve: name a service or set {SERVICE_ENV} (installed: {', '.join(registry.available())})"
        )
    return str(service)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from servekit.logs import configure_logging
    from servekit.rest import create_app
    from servekit.settings import load_settings

    spec = registry.get_service(service_name(args))
    settings = load_settings(spec.name)
    handler = configure_logging(
        settings.log_level,
        settings.log_format,
        spec.name,
        google_cloud_project=settings.google_cloud_project,
    )
    app = create_app(spec, settings, grpc_host=args.host)
    handler.meter = app.state.metrics.count_log_line
    # Not uvicorn's access log: servekit's own (servekit.rest.access_log) names the error and
    # its fields, leaves out probes and caps its rate.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port or registry.local_port(spec),
        access_log=False,
        log_config=None,  # uvicorn's lines go through configure_logging's handler
        log_level=settings.log_level.lower(),
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_package_sagemaker(args: argparse.Namespace) -> int:
    from servekit.managed.packaging import package_from_registry

    spec = registry.get_service(args.service)
    model_uri = args.model_uri or f"models:/{spec.name}@champion"
    output, notes = package_from_registry(spec.name, model_uri, _tracking_uri(args.tracking_uri), args.output)
    for note in notes:
        print(f"{spec.name}: {note}")
    print(f"{spec.name}: {model_uri} packaged as {output}")
    return 0


def cmd_api_keys(args: argparse.Namespace) -> int:
    from servekit.auth import KeysFileError
    from servekit.keys_file import listing, replace, without

    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
        now = datetime.now(UTC)
        if not (args.prune or args.revoke):
            listed = listing(text, str(path))
        elif args.prune:
            kept, listed = without(
                text, str(path), lambda key: key.expires is not None and key.expires <= now
            )
        else:
            kept, listed = without(text, str(path), lambda key: args.revoke in (key.client, key.key_id))
            if not listed:
                raise UsageError(f"api-keys: {path} holds no key of a client or with an id {args.revoke!r}")
    except (OSError, UnicodeDecodeError, KeysFileError) as exc:
        raise UsageError(f"api-keys: {exc}") from None
    if args.prune or args.revoke:
        if listed:
            replace(path, kept)  # whole, keeping its mode: a service reading it sees one or the other
            print(
                f"mlp: taken out of {path}, the services refuse them within {RELOAD_NOTE}:", file=sys.stderr
            )
        else:
            print(f"mlp: {path} holds no expired key", file=sys.stderr)
    width = max((len(key.client) for key in listed), default=6)
    for key in listed:
        print(f"{key.client:<{width}}  {key.key_id}  {key.state(now)}")
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    from servekit.auth import KeysFileError, expires_in, expiry, expiry_text, key_line, new_key, parse_keys

    key = new_key()
    try:
        if args.no_expiry:
            expires = None
        elif args.expires is not None:
            expires = expiry(args.expires)
            if expires <= datetime.now(UTC):
                raise ValueError(f"--expires {args.expires}: already past; the key would be refused at once")
        else:
            if args.expires_in <= 0:
                raise ValueError(f"--expires-in {args.expires_in:g}: a key must live at least part of a day")
            expires = expires_in(args.expires_in)
        line = key_line(args.client, key, expires)
    except ValueError as exc:
        raise UsageError(f"api-key: {exc}") from None
    lifetime = "never expires" if expires is None else f"expires on {expiry_text(expires)}"
    if args.append is None:
        print(line, file=sys.stderr)
        print(key)
        return 0
    path: Path = args.append
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        parse_keys(existing, str(path))  # never append to a file the services would refuse
    except KeysFileError as exc:
        raise UsageError(f"api-key: {exc}") from None
    separator = "" if not existing or existing.endswith("\n") else "\n"
    # Created readable by its owner only; digests are no keys, but nobody else needs them.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as keys_file:
        keys_file.write(f"{separator}{line}\n")
    print(f"mlp: {args.client}'s key ({lifetime}) added to {path}; it is shown once, below", file=sys.stderr)
    print(key)
    return 0


def cmd_services(_: argparse.Namespace) -> int:
    for name in registry.available():
        spec = registry.get_service(name)
        print(f"{name}\t{registry.local_port(spec)}\t{spec.title}")
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def _rejection_limit(text: str) -> RejectionLimit:
    from servekit.scoring.limits import RejectionLimit

    try:
        return RejectionLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percent(text: str) -> float:
    from servekit.routing import parse_share

    try:
        return parse_share(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shares(text: str) -> list[float]:
    shares = [_percent(part.strip()) for part in text.split(",")]
    if any(later < earlier for earlier, later in itertools.pairwise(shares)):
        raise argparse.ArgumentTypeError(f"{text!r}: a ramp only goes up (a key's model never changes back)")
    return shares


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlp", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train, register as challenger, promote if better")
    train.add_argument("services", nargs="+", metavar="service", help="one or more, trained in order")
    train.add_argument("--data", type=Path, help="real CSV (default: synthetic data)")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--tracking-uri", help=f"default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI}")
    train.add_argument("--if-no-champion", action="store_true", help="do nothing when a champion exists")
    train.set_defaults(func=cmd_train)

    promote = sub.add_parser("promote", help="set the champion alias to VERSION by hand")
    promote.add_argument("service")
    promote.add_argument("version")
    promote.add_argument("--tracking-uri")
    promote.set_defaults(func=cmd_promote)

    canary = sub.add_parser(
        "canary", help="set the canary alias to VERSION (a canary rollout), or --end it on the champion"
    )
    canary.add_argument("service")
    which = canary.add_mutually_exclusive_group(required=True)
    which.add_argument("version", nargs="?")
    which.add_argument("--end", action="store_true", help="point canary at the champion's version")
    canary.add_argument(
        "--percent",
        type=_percent,
        help="share of requests the pods send it, read from the registry at their next refresh "
        "(default: each pod's <SVC>_CANARY_TRAFFIC_PERCENT)",
    )
    canary.add_argument("--tracking-uri")
    canary.set_defaults(func=cmd_canary)

    roll = sub.add_parser(
        "rollout",
        help="start VERSION as the canary and promote it, or roll it back, on what Prometheus sees",
    )
    roll.add_argument("service")
    roll.add_argument("version")
    roll.add_argument("--prometheus", required=True, help="base URL of the Prometheus scraping the pods")
    roll.add_argument("--match", default="", help='extra label matchers, e.g. namespace="ml-platform"')
    roll.add_argument("--interval", type=float, default=60.0, help="seconds between readings (default 60)")
    roll.add_argument("--steps", type=_positive, default=10, help="readings before promoting (default 10)")
    roll.add_argument(
        "--ramp",
        type=_shares,
        help="shares the canary answers, e.g. 5,25,50: each reading that judged it sound moves it to "
        "the next, and the last holds (default: the pods' own share throughout)",
    )
    roll.add_argument("--min-requests", type=_positive, default=100, help="canary requests needed to judge")
    roll.add_argument("--max-failure-ratio", type=float, default=CANARY_FAILURE_RATIO)
    roll.add_argument("--latency-factor", type=float, default=CANARY_LATENCY_FACTOR)
    roll.add_argument("--tracking-uri")
    roll.set_defaults(func=cmd_rollout)

    versions = sub.add_parser(
        "versions", help="registered versions: aliases, held-out metric, data, decision"
    )
    versions.add_argument("service")
    versions.add_argument("--limit", type=_positive, default=20, help="newest N versions (default 20)")
    versions.add_argument("--tracking-uri")
    versions.set_defaults(func=cmd_versions)

    score = sub.add_parser(
        "score",
        help="score a CSV or Parquet file offline with a registry version: every row kept, rejects named",
    )
    score.add_argument("service")
    score.add_argument(
        "input",
        type=Path,
        help="CSV, or Parquet (.parquet, .pq), with the request fields as columns (others are copied); "
        "or a directory of such parts, read in the order of their names as one table",
    )
    score.add_argument(
        "--output",
        type=Path,
        required=True,
        help="the input's columns, then the scores; Parquet (.parquet, .pq) or CSV (.csv, .csv.gz "
        "gzip-compressed) as its name says, whatever the input (named neither: the input's format)",
    )
    score.add_argument("--explain", action="store_true", help="add each row's explanation (JSON)")
    score.add_argument("--model-uri", help="default: models:/<service>@champion")
    score.add_argument("--prefix", default="", help="before each added column's name, e.g. predicted_")
    score.add_argument(
        "--chunk-rows", type=_positive, default=10_000, help="rows read at a time (default 10000)"
    )
    score.add_argument(
        "--workers",
        type=_positive,
        help="processes scoring the chunks past the first, in parallel (default: the CPUs this "
        "process may use, within its container's CPU limit); 1 scores in this process alone",
    )
    score.add_argument(
        "--max-rejected",
        type=_rejection_limit,
        default="0",
        help="rejected rows the run may have and still exit 0: a count (100) or a share of the rows "
        f"read (0.5%%); more exits {SCORE_OVER_REJECTION_LIMIT}, the output written (default 0)",
    )
    score.add_argument(
        "--summary",
        type=Path,
        help="also write what the run did as JSON: the version, rows scored and rejected, the first "
        "rejections, the inputs outside the training range, the time and the exit status",
    )
    score.add_argument("--tracking-uri")
    score.set_defaults(func=cmd_score)

    replay = sub.add_parser(
        "replay",
        help="answer captured predictions again with the versions that gave them, and compare",
    )
    replay.add_argument(
        "file",
        help="log lines (JSON or text; other lines are skipped), a directory of such files (every file "
        "under it, in path order: a log store's export), or - for stdin",
    )
    replay.add_argument(
        "--max-listed",
        type=_non_negative,
        default=MAX_LISTED,
        help=f"differences listed per version; the rest are counted (default {MAX_LISTED}; 0: all)",
    )
    replay.add_argument("--tracking-uri")
    replay.set_defaults(func=cmd_replay)

    evaluate = sub.add_parser(
        "evaluate",
        help="score captured answers against the truth that came later, each version against "
        "its held-out figure",
        description="Joins prediction capture lines with a truth file by request id and instance, and "
        "reports each version's primary metric on its live answers, with its 95% bootstrap interval, "
        "per group too, against the figure it scored on its held-out split. Exits 1 when a version "
        "does worse beyond the noise of both samples.",
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
        type=_positive,
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

    serve = sub.add_parser("serve", help="serve a model over HTTP (settings from the environment)")
    serve.add_argument("service", nargs="?", help=f"default: ${SERVICE_ENV}")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, help="default: the service's local port")
    serve.set_defaults(func=cmd_serve)

    package = sub.add_parser(
        "package-sagemaker",
        help="model.tar.gz for SageMaker: model, handlers, requirements pinned as trained",
    )
    package.add_argument("service")
    package.add_argument("--model-uri", help="default: models:/<service>@champion")
    package.add_argument("--tracking-uri", help=f"default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI}")
    package.add_argument("--output", type=Path, default=Path("model.tar.gz"))
    package.set_defaults(func=cmd_package_sagemaker)

    key = sub.add_parser(
        "api-key",
        help="a new API key for CLIENT: the key on stdout (shown once), its keys-file line on stderr",
    )
    key.add_argument("client", help="who gets the key; what log lines name its requests by")
    key.add_argument(
        "--append", type=Path, metavar="FILE", help="add the line to this keys file (created 0600)"
    )
    lifetime = key.add_mutually_exclusive_group()
    lifetime.add_argument(
        "--expires-in",
        type=float,
        default=API_KEY_DAYS,
        metavar="DAYS",
        help=f"refused from the UTC midnight after DAYS days on (default {API_KEY_DAYS})",
    )
    lifetime.add_argument(
        "--expires", metavar="DATE", help="refused from DATE on (2027-03-01, or 2027-03-01T12:00:00Z)"
    )
    lifetime.add_argument(
        "--no-expiry", action="store_true", help="never expires: revoke it by removing its line"
    )
    key.set_defaults(func=cmd_api_key)

    keys = sub.add_parser(
        "api-keys",
        help="list a keys file's keys (client, key id, expiry), or take lines out of it",
        description="Without an option, lists the keys. The key id is what the services' log lines "
        "name (key_id), so a rotation can be followed: once the old key's id is no longer logged, "
        "revoke it.",
    )
    keys.add_argument(
        "file", type=Path, metavar="FILE", help="the keys file (what <SVC>_API_KEYS_FILE names)"
    )
    change = keys.add_mutually_exclusive_group()
    change.add_argument("--prune", action="store_true", help="take out the lines of expired keys")
    change.add_argument(
        "--revoke", metavar="CLIENT_OR_KEY_ID", help="take out every key of a client, or one key by its id"
    )
    keys.set_defaults(func=cmd_api_keys)

    services = sub.add_parser(
        "services", help="list installed services and their local ports (plus $MLP_PORT_OFFSET)"
    )
    services.set_defaults(func=cmd_services)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    # mlp serve leaves SIGTERM to uvicorn, whose graceful shutdown drains the requests in flight.
    guard = nullcontext() if args.func is cmd_serve else terminated_as_exit()
    try:
        with guard:
            return int(args.func(args))
    except (LookupError, UsageError, SettingsError, registry.PortOffsetError) as exc:
        print(f"mlp: {exc}", file=sys.stderr)
        return 2
    except ServekitError as exc:  # 4xx: what was asked cannot be done; 5xx: try again later
        print(f"mlp: {exc.message}", file=sys.stderr)
        return 2 if exc.status_code < 500 else 1


if __name__ == "__main__":
    raise SystemExit(main())
