"""``mlp score``: a file scored offline by a registry version (``servekit.scoring``)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from servekit import registry
from servekit.cli.common import (
    UsageError,
    not_a_file,
    positive_int,
    reasons_count,
    resolve_tracking_uri,
)
from servekit.model_uri import check_service

if TYPE_CHECKING:
    from servekit.cli.common import Commands
    from servekit.scoring.limits import RejectionLimit

#: ``mlp score``'s exit status when more rows were rejected than ``--max-rejected`` allows: apart
#: from 1 (the registry or the model could not be reached; worth retrying) and 2 (the input or the
#: command cannot run), so a Job fails at once on it rather than scoring the same file again.
SCORE_OVER_REJECTION_LIMIT = 3
#: Out of memory outside a chunk's scoring (reading or writing it), where no rows can be named.
_OUT_OF_MEMORY = "out of memory; run with a smaller --chunk-rows (or fewer --workers)"


def cmd_score(args: argparse.Namespace) -> int:
    from servekit.loading import ModelLoadError, load_artifact
    from servekit.mlflow_registry import registry_client
    from servekit.scoring import score_file, write_summary
    from servekit.scoring.files import is_standard_output
    from servekit.scoring.formats import ScoringError
    from servekit.scoring.pool import ChunkOutOfMemoryError, WorkerDiedError, usable_cpus
    from servekit.scoring.summary import counted

    _check_files(args)
    started = datetime.now(UTC)
    workers = args.workers or usable_cpus()
    spec = registry.get_service(args.service)
    uri = args.model_uri or f"models:/{spec.name}@champion"
    check_service(uri, spec.name, f"its answers would be given as {spec.name}'s")
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    registry_client(tracking_uri)  # an unreachable registry is one line, not a retrying traceback
    try:
        model = spec.model(load_artifact(spec.name, uri, tracking_uri))
    except ModelLoadError as exc:
        print(f"mlp: score: {uri}: {exc}", file=sys.stderr)
        return 2 if exc.missing else 1  # no retry brings a version the registry does not hold
    # With the scores on standard output, what the run says goes to standard error.
    to_stdout = is_standard_output(args.output) or (
        args.summary is not None and is_standard_output(args.summary)
    )
    report = sys.stderr if to_stdout else sys.stdout
    try:
        summary = score_file(
            spec,
            model,
            args.input,
            args.output,
            explain=args.explain,
            prefix=args.prefix,
            chunk_rows=args.chunk_rows,
            keep=args.keep,
            reasons=args.reasons,
            workers=workers,
            progress=lambda line: print(f"mlp: score: {spec.name}: {line}", file=sys.stderr, flush=True),
        )
    except ScoringError as exc:
        # Named once: an error that names the input itself ("x.csv has no rows to score") was
        # printed after it ("score: x.csv: x.csv has ...").
        said = str(exc)
        where = "" if said.startswith(f"{args.input} ") else f"{args.input}: "
        raise UsageError(f"score: {where}{said}") from exc
    except (WorkerDiedError, MemoryError) as exc:
        # Exit 2, as for a file that cannot be scored: the same invocation on the same file runs out
        # of memory again (a worker SIGKILLed is the kernel's OOM killer, nearly always), so a
        # scheduler's retry would only spend hours on it. What mends it is in the line.
        said = str(exc) if isinstance(exc, WorkerDiedError | ChunkOutOfMemoryError) else _OUT_OF_MEMORY
        print(f"mlp: score: {spec.name}: {said}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader gone, not the run failed (servekit.cli.main; the workers are stopped)
    except OSError as exc:  # checked writable before the run: a disk full, a reader gone
        print(f"mlp: score: {exc.filename or args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(summary.render(model, args.output), file=report)
    limit: RejectionLimit = args.max_rejected
    allowed = limit.allowed(summary.rows)
    over = limit.exceeded(summary.rejected, summary.rows)
    status = SCORE_OVER_REJECTION_LIMIT if over else 0
    if args.summary is not None:
        written = {
            **summary.as_json(model, args.input, args.output),
            "max_rejected": {"limit": str(limit), "allowed": allowed, "exceeded": over},
            # What shaped the output, so the file can be read, and the run repeated, from this alone.
            "options": {
                "explain": args.explain,
                "reasons": args.reasons,
                "keep": list(args.keep) if args.keep is not None else None,
                "prefix": args.prefix,
                "chunk_rows": args.chunk_rows,
                "workers": workers,
            },
            "started_at": started.isoformat(timespec="seconds"),
            "exit_status": status,
        }
        write_summary(args.summary, written)
    if over:
        print(
            f"mlp: score: {spec.name}: {summary.rejected:,} of {counted(summary.rows)} rejected, over "
            f"--max-rejected {limit} ({allowed:,}); the output is written, with each row's problem",
            file=sys.stderr,
        )
    elif summary.rejected:
        are = "is" if summary.rejected == 1 else "are"
        within = (
            f"{counted(summary.rejected, 'rejected row')} {are} within --max-rejected {limit} ({allowed:,})"
        )
        print(within, file=report)
    return status


def _check_files(args: argparse.Namespace) -> None:
    """The input readable as a file and the output and the summary writable, before the model is
    loaded and the rows scored: found after, a directory or a missing right was a traceback at the
    end of the run, with exit status 1 (worth retrying) for what no retry mends."""
    from servekit.scoring.files import is_standard_output, output_name_problem, writable_problem

    source: Path = args.input
    if str(source) == "-":  # read twice, once for its shape and once for its rows, as a pipe
        raise UsageError("score: -: standard input is not a regular file; save it to a file and name that")
    if not source.exists():
        raise UsageError(f"score: {source}: no such file or directory")
    if not (source.is_file() or source.is_dir()):
        raise UsageError(f"score: {source}: {not_a_file(source)}")
    problem = output_name_problem(args.output) or writable_problem(args.output)
    if problem:
        raise UsageError(f"score: --output {args.output}: {problem}")
    if args.summary is not None:
        if is_standard_output(args.summary):
            if is_standard_output(args.output):
                raise UsageError(
                    f"score: --summary {args.summary}: the scores are written to standard output; name a file"
                )
        elif args.summary.resolve() in {source.resolve(), args.output.resolve()}:
            raise UsageError(f"score: --summary {args.summary}: the input or the output; name another file")
        elif args.summary.resolve() in _input_files(source):
            raise UsageError(f"score: --summary {args.summary}: a part of the input; name another file")
        elif source.is_dir() and args.summary.resolve().is_relative_to(source.resolve()):
            # As --output is refused there (scoring.files.check_output): a part's name was
            # replaced by the summary's JSON, exit 0, and a new name was read as a part next run.
            raise UsageError(
                f"score: --summary {args.summary}: inside the input directory, where the next run would read "
                "it as a part; write it elsewhere"
            )
        problem = writable_problem(args.summary)
        if problem:
            raise UsageError(f"score: --summary {args.summary}: {problem}")


def _input_files(source: Path) -> set[Path]:
    """The real paths of a directory's parts: one may be a link to a file elsewhere (a mounted
    volume's), which a summary written there would replace. None for a file (the input is its
    own path), or for a directory that cannot be read as parts (the run says why)."""
    from servekit.scoring.files import ScoringError, parts

    if not source.is_dir():
        return set()
    try:
        return {path.resolve() for path in parts(source)}
    except (ScoringError, OSError):
        return set()


def column_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: name each column, separated by commas")
    # Kept once, a column named twice would leave the output a column short of what was asked.
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        named = ", ".join(map(repr, twice))
        raise argparse.ArgumentTypeError(f"{text!r} names {named} twice; name each column once")
    return names


def rejection_limit(text: str) -> RejectionLimit:
    from servekit.scoring.limits import RejectionLimit

    try:
        return RejectionLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(commands: Commands) -> None:
    """Adds ``mlp score``."""
    score = commands.add_parser(
        "score",
        help="score a CSV, Parquet or JSON Lines file offline with a registry version: every row kept, "
        "rejects named",
    )
    score.add_argument("service")
    score.add_argument(
        "input",
        type=Path,
        help="CSV, Parquet (.parquet, .pq) or JSON Lines (.jsonl, .ndjson), with the request fields as "
        "columns or keys (others are copied), .gz for gzip-compressed CSV or JSON Lines; or a directory "
        "of such parts (subdirectories' too), read in the order of their paths as one table",
    )
    score.add_argument(
        "--output",
        type=Path,
        required=True,
        help="the input's columns, then the scores; Parquet (.parquet, .pq), CSV (.csv) or JSON Lines "
        "(.jsonl, .ndjson), .gz for gzip-compressed CSV or JSON Lines, as its name says, whatever the "
        "input (named none: the input's format; a name of another format, .json or .xlsx, is refused); "
        "- for standard output. A file appears whole or not at all (a link: the file it names); a "
        "device or a pipe is written as the rows are scored",
    )
    score.add_argument(
        "--keep",
        type=column_names,
        metavar="COLUMNS",
        help="the input columns copied into the output, comma-separated, in that order (e.g. "
        "CustomerId: the key that joins the scores back); default: every column",
    )
    score.add_argument("--explain", action="store_true", help="add each row's explanation (JSON)")
    score.add_argument(
        "--reasons",
        type=reasons_count,
        default=0,
        metavar="N",
        help="add each row's N inputs that argued most for its answer (the largest SHAP contributions "
        "toward a label, either way for a number), strongest first: "
        "reason_<k>_field, reason_<k>_value and reason_<k>_contribution (the principal reasons an "
        "adverse-action notice gives); the whole explanation only with --explain",
    )
    score.add_argument("--model-uri", help="default: models:/<service>@champion")
    score.add_argument("--prefix", default="", help="before each added column's name, e.g. predicted_")
    score.add_argument(
        "--chunk-rows", type=positive_int, default=10_000, help="rows read at a time (default 10000)"
    )
    score.add_argument(
        "--workers",
        type=positive_int,
        help="processes scoring the chunks past the first, in parallel (default: the CPUs this "
        "process may use, within its container's CPU limit); 1 scores in this process alone",
    )
    score.add_argument(
        "--max-rejected",
        type=rejection_limit,
        default="0",
        help="rejected rows the run may have and still exit 0: a count (100) or a share of the rows "
        f"read (0.5%%); more exits {SCORE_OVER_REJECTION_LIMIT}, the output written (default 0)",
    )
    score.add_argument(
        "--summary",
        type=Path,
        help="also write what the run did as JSON: the version, rows scored and rejected, the first "
        "rejections, the inputs outside the training range, the time and the exit status (- for "
        "standard output)",
    )
    score.add_argument("--tracking-uri")
    score.set_defaults(func=cmd_score)
