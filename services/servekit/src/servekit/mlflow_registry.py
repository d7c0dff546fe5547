"""The MLflow registry an ``mlp`` command opens: checked to answer before any work is done, and,
when it does not, why, in one line (nothing listening, a proxy, a TLS or Host-header refusal,
a SQLite file that is not there)."""

from __future__ import annotations

import re
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.redaction import redact


def registry_client(tracking_uri: str, *, create: bool = False) -> Any:
    """A client of the MLflow server at ``tracking_uri``, checked to answer before any work.

    ``mlp train`` asks first, so an unreachable server costs no training run. ``create``: a SQLite
    file that does not exist yet may be made (``mlp train``); every other command only reads a
    registry or moves its aliases, and MLflow would make an empty one at a mistyped path, which
    they would then report as holding nothing.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    require_database(tracking_uri, create=create)
    try:
        client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    except MlflowException as exc:  # a scheme MLflow has no store for, or its retired file store
        raise ServekitError(
            400,
            "registry_uri_unusable",
            f"MLflow cannot use the tracking URI {redact(tracking_uri)!r} ({one_line(exc)}); pass "
            "--tracking-uri http://HOST:PORT (an MLflow server) or sqlite:///PATH",
        ) from exc
    try:
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        raise unanswered(tracking_uri, exc) from exc
    return client


def sqlite_database(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (relative to the working directory unless ``PATH``
    starts with ``/``); None for a server, or an in-memory database."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database)


def require_database(tracking_uri: str, *, create: bool) -> None:
    """Refuse a SQLite registry that is not there, before MLflow makes it: a new database file,
    and the directories above it, wherever a mistyped ``--tracking-uri`` points."""
    database = sqlite_database(tracking_uri)
    if database is None:
        return
    where = redact(tracking_uri)  # a SQLite URI's query may hold a token as well as a server's
    if database.is_file():
        require_sqlite_file(database, where, create=create)
        return
    if database.is_dir():
        raise ServekitError(
            400, "registry_not_a_file", f"{where}: {database} is a directory, not a SQLite file"
        )
    if not create:
        raise ServekitError(
            404,
            "registry_not_found",
            f"no registry at {where}: {database.absolute()} does not exist (a typo?); pass the "
            "--tracking-uri of an existing registry, or `mlp train SERVICE --tracking-uri "
            f"{where}` creates one there",
        )
    # Made for ``mlp train``, as asked, but only in a directory that exists: MLflow would make any
    # directories missing, and a typo in them would put the registry where nothing looks for it.
    if not database.resolve().parent.is_dir():
        raise ServekitError(
            400,
            "registry_directory_missing",
            f"{where}: no directory {database.parent} to create the registry in (a typo?); "
            f"`mkdir -p {database.parent}` first if that is where it belongs",
        )


#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def require_sqlite_file(database: Path, where: str, *, create: bool) -> None:
    """Refuse a registry file that is not a SQLite database (a CSV named by mistake), which
    SQLAlchemy failed on with a traceback; and, but for ``mlp train``, an empty file, which MLflow
    would make a registry of, reported then as holding nothing. A file that cannot be read is left
    to MLflow, whose error says why."""
    try:
        with database.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError:
        return
    if head == SQLITE_HEADER or (not head and create):
        return
    if not head:
        raise ServekitError(
            404,
            "registry_not_found",
            f"no registry at {where}: {database.absolute()} is an empty file, not a registry; pass "
            "the --tracking-uri of an existing registry, or `mlp train SERVICE --tracking-uri "
            f"{where}` makes one in it",
        )
    raise ServekitError(
        400,
        "registry_not_sqlite",
        f"{where}: {database.absolute()} is not a SQLite database (it begins {head[:8]!r}); pass "
        "--tracking-uri sqlite:///PATH of an MLflow registry, or http://HOST:PORT of an MLflow server",
    )


#: What an MLflow server (``--allowed-hosts``) answers, with 403, a request whose Host header it
#: does not know: behind an Ingress, the public host name the client asked for.
INVALID_HOST = "Invalid Host header"


def unanswered(tracking_uri: str, exc: Exception) -> ServekitError:
    """Why ``tracking_uri`` gave no answer to a first request: nothing answers there (worth retrying
    later), or a server answered with an error, which retrying does not change unless it is a 5xx."""
    where = redact(tracking_uri)
    status, body = answered_status(exc)
    if status is None:
        if not tracking_uri.startswith(("http://", "https://")):
            return ServekitError(
                503, "registry_unavailable", f"MLflow cannot read the registry at {where} ({one_line(exc)})"
            )
        proxy = failed_proxy(exc)
        if proxy is not None:  # HTTP(S)_PROXY named one that failed: the server was never asked
            return ServekitError(
                503,
                "registry_proxy_unavailable",
                f"{the_proxy(proxy)} for {where} could not be reached ({unreachable_because(exc)}): check "
                "HTTPS_PROXY/HTTP_PROXY/NO_PROXY (the tracking server itself was not reached)",
            )
        return ServekitError(
            503,
            "registry_unavailable",
            f"no MLflow tracking server answers at {where} ({unreachable_because(exc)}); "
            "`make up` starts one, or pass --tracking-uri or set MLFLOW_TRACKING_URI",
        )
    said = f"{status} ({body})" if body else str(status)
    if status == 403 and INVALID_HOST in body:
        host = urlsplit(tracking_uri).netloc.rpartition("@")[2]
        return ServekitError(
            403,
            "registry_host_not_allowed",
            f"the MLflow server at {where} answered {said}: it answers only the Host names of its "
            f"--allowed-hosts (MLFLOW_SERVER_ALLOWED_HOSTS), and {host} is not among them; add {host} "
            "to the server's --allowed-hosts",
        )
    if status in (401, 403):
        return ServekitError(
            status,
            "registry_refused",
            f"the MLflow server at {where} answered {said}: it wants credentials mlp did not send, or "
            "refused the ones it sent; set MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD) to ones it accepts",
        )
    if status >= 500:
        return ServekitError(
            503,
            "registry_failing",
            f"a server answers at {where}, with {said}: the MLflow server, or a proxy in front of it, "
            "is failing; its logs say why",
        )
    return ServekitError(
        400,
        "registry_not_mlflow",
        f"the server at {where} answered MLflow's API with {said}: is it an MLflow tracking server, "
        "and the URL its root? pass --tracking-uri http://HOST:PORT of one",
    )


def unreachable_because(exc: BaseException) -> str:
    """Why nothing answered, in the words a user acts on: ``connection refused`` (nothing listens
    there), ``host name not resolved`` (a typo, or a host of another network), ``timed out``, or
    the system's words for another socket error (``network is unreachable``); else the whole
    error on one line. MLflow's message nests urllib3's, which repeats itself, the cause last."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    links = list(causes(exc))
    if any(isinstance(link, socket.gaierror | NameResolutionError) for link in links):
        return "host name not resolved"
    # urllib3's failed connection is a timeout by descent, whatever failed; its cause says what.
    if any(
        isinstance(link, TimeoutError | Urllib3Timeout) and not isinstance(link, NewConnectionError)
        for link in links
    ):
        return "timed out"
    for link in links:
        if isinstance(link, OSError) and isinstance(link.strerror, str) and link.strerror:
            return link.strerror[0].lower() + link.strerror[1:]  # "Connection refused"
    return one_line(exc)


def failed_proxy(exc: BaseException) -> str | None:
    """None unless a proxy failed the request (unreachable, or refusing to connect onward): then the
    proxy's URL, redacted (a proxy URL carries its credentials); "" if none is known."""
    from requests.exceptions import ProxyError as RequestsProxyError
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
    from urllib3.exceptions import ProxyError as Urllib3ProxyError

    links = list(causes(exc))
    # A connection urllib3 failed to open was one to the proxy, if it had one: a retry's warning
    # holds that error alone, the ProxyError around it is made for the last try's exception.
    failed = [link for link in links if isinstance(link, ConnectTimeoutError)]
    opened = [getattr(link, "conn", None) or next(iter(link.args), None) for link in failed]
    proxies = [str(getattr(conn, "proxy", None)) for conn in opened if getattr(conn, "proxy", None)]
    if not proxies and not any(isinstance(link, Urllib3ProxyError | RequestsProxyError) for link in links):
        return None
    pools = [link.pool for link in links if isinstance(link, MaxRetryError)]
    proxies += [str(getattr(pool, "proxy", None)) for pool in pools if getattr(pool, "proxy", None)]
    return redact(proxies[0]) if proxies else ""


def the_proxy(proxy: str) -> str:
    return f"the proxy {proxy}" if proxy else "the proxy"


def retrying(tracking_uri: str, error: BaseException | None) -> str:
    """What a command says when urllib3 first retries a request to ``tracking_uri`` that ``error``
    failed: a sign of life during a wait that may last minutes (a hung server times out each try),
    why, and that it goes on."""
    where = redact(tracking_uri)
    because = "no answer" if error is None else unreachable_because(error)
    proxy = None if error is None else failed_proxy(error)
    if proxy is not None:
        return f"{the_proxy(proxy)} for {where} could not be reached yet ({because}); retrying"
    return f"no answer yet from the MLflow tracking server at {where} ({because}); retrying"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error behind it: chained, or held as requests and urllib3 hold theirs (an
    argument; ``MaxRetryError.reason``)."""
    pending, seen = [exc], set[int]()
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        behind = [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args]
        pending += [error for error in behind if isinstance(error, BaseException)]


#: How MLflow's REST client words a server's answer other than 200: its status (with the body, a
#: text answer), or a 5xx it retried until it gave up.
_STATUS = re.compile(
    r"error code (\d{3}) != 200(?:\. Response body: '(.*)')?|too many (\d{3}) error responses"
)


def answered_status(exc: Exception) -> tuple[int | None, str]:
    """The HTTP status and body a server answered with, or (None, "") when none answered (refused,
    timed out, no such host)."""
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, RestException

    if isinstance(exc, RestException):  # a JSON error: an MLflow server, or one speaking its API
        # The status answered, not the one of the body's error_code: a JSON error without MLflow's
        # error_code (a model service's 404, a gateway's) is INTERNAL_ERROR to MLflow, a 500.
        status = responded_status(exc) or int(ERROR_CODE_TO_HTTP_STATUS.get(exc.error_code, 500))
        return status, str(exc.json.get("message", ""))[:200]
    found = _STATUS.search(" ".join(str(exc).split()))
    if found is None:
        return None, ""
    code = found.group(1) or found.group(3)
    return int(code), (found.group(2) or "")[:200]


def responded_status(exc: BaseException) -> int | None:
    """The HTTP status of the response an MLflow error was raised for; None when none is known.

    MLflow's RestException keeps the JSON body and an error code read from it, not the response:
    the response is the one its REST client was verifying where it raised (``verify_rest_response``
    in MLflow 2 and 3), the last frame of the traceback holding one.
    """
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    if isinstance(status, int) and 100 <= status <= 599:
        return status
    answered = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        code = getattr(frame.f_locals.get("response"), "status_code", None)
        if isinstance(code, int) and 100 <= code <= 599:
            answered = code  # the deepest: the response the error was raised for
    return answered
