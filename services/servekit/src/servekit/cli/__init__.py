"""``mlp``: train, promote and serve any installed model service.

Services are found through the ``servekit.services`` entry points, so a new
service needs no change here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext

from servekit import logs, registry
from servekit.cli import captures, keys, lifecycle, score, serving
from servekit.cli.common import UsageError, documented_parser, resolve_tracking_uri
from servekit.errors import ServekitError
from servekit.loading import ModelLoadError
from servekit.redaction import redact
from servekit.settings import SettingsError
from servekit.termination import silence_output, terminated_as_exit

#: The exit status of a command stopped by Ctrl-C, as a shell gives one killed by SIGINT (128 + 2).
INTERRUPTED = 130
#: The exit status of a command whose reader went away first (``mlp score --output - | head``,
#: ``mlp versions | head -3``): 128 + SIGPIPE, what a shell reports of ``cat`` or ``gzip`` there,
#: which SIGPIPE ends without a word. Not 0: not all was written, and ``set -o pipefail`` should see
#: it; not 1 and a message, which would call the normal end of a pipeline an error of the command.
READER_GONE = 141


def parser() -> argparse.ArgumentParser:
    root = documented_parser("mlp", __doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for group in (lifecycle, score, captures, serving, keys):
        group.add_commands(commands)
    return root


def is_retry(record: logging.LogRecord) -> bool:
    """urllib3's warning that it retries a request (its exception the second argument)."""
    return record.name == "urllib3.connectionpool" and str(record.msg).startswith("Retrying ")


def first_retry_only() -> Callable[[logging.LogRecord], bool]:
    """A filter passing urllib3's first retry warning and no later one. A command's requests go to
    the registry, and when the last try fails too the command's one error line names the server and
    why; the first warning is a sign of life in between (a hung server takes minutes to give up on),
    the later ones only said the same again."""
    said = False

    def first(record: logging.LogRecord) -> bool:
        nonlocal said
        if not is_retry(record):
            return True
        if said:
            return False
        said = True
        return True

    return first


class CommandFormatter(logs.RedactingFormatter):
    """Libraries' lines as ``LEVEL logger message``; urllib3's retry warning in mlp's words, one line
    naming the tracking server and the cause. Through redaction both: either may quote the tracking
    URI, its query's token too."""

    def __init__(self, tracking_uri: str) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")
        self.tracking_uri = tracking_uri

    def format(self, record: logging.LogRecord) -> str:
        if not is_retry(record):
            return super().format(record)
        from servekit import mlflow_registry

        args = record.args if isinstance(record.args, tuple) else ()
        error = next((arg for arg in args if isinstance(arg, BaseException)), None)
        return redact(f"mlp: {mlflow_registry.retrying(self.tracking_uri, error)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(CommandFormatter(resolve_tracking_uri(getattr(args, "tracking_uri", None))))
    handler.addFilter(first_retry_only())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # SIGTERM and SIGHUP unwind a command as Ctrl-C does (its partial files removed); mlp serve
    # leaves them to uvicorn, whose graceful shutdown drains the requests in flight.
    guard = nullcontext() if args.func is serving.cmd_serve else terminated_as_exit()
    try:
        with guard:
            return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C: what the command was doing is of no interest, only that it stopped
        print("mlp: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # Standard output, if it was the pipe, is pointed at /dev/null: Python's flush of it at
        # exit would print the error again.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            silence_output()
        return READER_GONE
    except (LookupError, UsageError, SettingsError, registry.PortOffsetError) as exc:
        print(f"mlp: {exc}", file=sys.stderr)
        return 2
    except ServekitError as exc:  # 4xx: what was asked cannot be done; 5xx: try again later
        print(f"mlp: {exc.message}", file=sys.stderr)
        return 2 if exc.status_code < 500 else 1
    except ModelLoadError as exc:  # no retry brings a name, version or alias the registry lacks
        print(f"mlp: {exc}", file=sys.stderr)
        return 2 if exc.missing else 1
    except Exception as exc:
        lost = tracking_server_lost(args, exc)
        if lost is None:  # anything else is a bug of mlp's: its traceback says where
            raise
        print(f"mlp: {lost}", file=sys.stderr)
        return 1


def tracking_server_lost(args: argparse.Namespace, exc: BaseException) -> str | None:
    """One line for an MLflow request no server answered, the tracking server gone during a
    command that found it answering (a first request that fails is said by ``registry_client``):
    MLflow's error nests requests' and urllib3's, 100 lines of tracebacks. None for any other."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import RequestException, Timeout

    from servekit import mlflow_registry

    links = list(mlflow_registry.causes(exc))
    if not any(isinstance(link, RequestsConnectionError | Timeout) for link in links):
        return None
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException | RequestException):
        return None
    where = resolve_tracking_uri(getattr(args, "tracking_uri", None))
    because = mlflow_registry.unreachable_because(exc)
    lost = f"the MLflow tracking server at {where} stopped answering ({because})"
    if args.func is lifecycle.cmd_train:
        return redact(
            f"{lost}: the training's run may be left RUNNING in MLflow, which cannot mark it failed "
            "while the server is down; train again once it answers"
        )
    return redact(f"{lost}; run the command again once it answers")


if __name__ == "__main__":
    raise SystemExit(main())
