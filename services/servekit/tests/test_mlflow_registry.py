"""The registry every ``mlp`` command opens first (``mlflow_registry.registry_client``): a SQLite file that is
not there is refused, not made empty, except by ``mlp train``; a server that answers with an error
is told apart from none answering."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pytest
from toy import TOY

from servekit import cli, mlflow_registry
from servekit.local import free_port
from servekit.rollout.readings import PrometheusReader
from servekit.testing import StubHandler, http_stub
from servekit.training import trainer

#: What an MLflow server started with ``--allowed-hosts`` answers a Host it does not list.
INVALID_HOST = "Invalid Host header - possible DNS rebinding attack detected"

READING_COMMANDS = [
    ["versions", "toy"],
    ["promote", "toy", "1"],
    ["canary", "toy", "1"],
    ["canary", "toy", "--end"],
    ["rollout", "toy", "1", "--prometheus", "http://127.0.0.1:1"],
]


class Mlp:
    """``mlp ARGS`` of the toy service: its status and its standard error; ``trained``: the
    services it trained (the trainer itself is not run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.trained = capsys, list[str]()
        monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
        monkeypatch.setattr(trainer, "train", self.train)

    def train(self, spec: Any, *args: Any, **kwargs: Any) -> Any:
        self.trained.append(spec.name)
        return SimpleNamespace(
            version="1", run_id="r", metrics={}, decision="d", canary="", artifacts="", held_out_note=""
        )

    def __call__(self, *args: str) -> tuple[int, str]:
        self.capsys.readouterr()
        status = cli.main(list(args))
        return status, self.capsys.readouterr().err


@pytest.fixture
def mlp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Mlp]:
    yield Mlp(monkeypatch, capsys)
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_a_registry_file_that_is_not_there_is_not_made_by_a_command_that_reads_it(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlp: Mlp
) -> None:
    """MLflow made an empty registry at the mistyped path, directories and all, which the command
    then reported as holding nothing (exit 0) or no such version."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(PrometheusReader, "check", lambda self: None)  # asked before the registry
    for uri, database in [
        (f"sqlite:///{tmp_path}/typo/mlflow.db", tmp_path / "typo" / "mlflow.db"),
        ("sqlite:///typo.db", tmp_path / "typo.db"),
    ]:
        status, err = mlp(*command, "--tracking-uri", uri)
        assert status == 2
        assert err == (
            f"mlp: no registry at {uri}: {database} does not exist (a typo?); pass the --tracking-uri "
            f"of an existing registry, or `mlp train SERVICE --tracking-uri {uri}` creates one there\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_score_refuses_a_registry_file_that_is_not_there(tmp_path: Path, mlp: Mlp) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    uri = f"sqlite:///{tmp_path}/nothing.db"
    status, err = mlp("score", "toy", str(rows), "--output", str(tmp_path / "out.csv"), "--tracking-uri", uri)
    assert status == 2
    assert err.startswith(f"mlp: no registry at {uri}: ")
    assert not (tmp_path / "nothing.db").exists()


def test_train_makes_a_registry_file_but_not_the_directories_above_it(tmp_path: Path, mlp: Mlp) -> None:
    missing = tmp_path / "typo"
    status, err = mlp("train", "toy", "--tracking-uri", f"sqlite:///{missing}/mlflow.db")
    assert status == 2
    assert err == (
        f"mlp: sqlite:///{missing}/mlflow.db: no directory {missing} to create the registry in (a "
        f"typo?); `mkdir -p {missing}` first if that is where it belongs\n"
    )
    assert not missing.exists()
    assert mlp.trained == []
    # In a directory that is there: made, as the first `mlp train` of a new registry does.
    status, err = mlp("train", "toy", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert (status, mlp.trained) == (0, ["toy"]), err
    assert (tmp_path / "mlflow.db").is_file()
    # And then read by the others.
    status, err = mlp("versions", "toy", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert status == 0, err


def test_a_directory_named_as_the_registry_file_is_refused(tmp_path: Path, mlp: Mlp) -> None:
    status, err = mlp("versions", "toy", "--tracking-uri", f"sqlite:///{tmp_path}")
    assert status == 2
    assert err == f"mlp: sqlite:///{tmp_path}: {tmp_path} is a directory, not a SQLite file\n"


@pytest.mark.parametrize("command", [["versions", "toy"], ["promote", "toy", "1"], ["train", "toy"]])
def test_a_registry_file_that_is_not_a_database_is_one_line(
    command: list[str], tmp_path: Path, mlp: Mlp
) -> None:
    """A CSV named as the registry was SQLAlchemy's "file is not a database" traceback, exit 1."""
    data = tmp_path / "churn.csv"
    data.write_text("RowNumber,CustomerId\n1,15634602\n")
    uri = f"sqlite:///{data}"
    status, err = mlp(*command, "--tracking-uri", uri)
    assert (status, err) == (
        2,
        f"mlp: {uri}: {data} is not a SQLite database (it begins b'RowNumbe'); pass --tracking-uri "
        "sqlite:///PATH of an MLflow registry, or http://HOST:PORT of an MLflow server\n",
    )
    assert data.read_text() == "RowNumber,CustomerId\n1,15634602\n"
    assert mlp.trained == []


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_an_empty_registry_file_is_no_registry_but_to_mlp_train(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlp: Mlp
) -> None:
    """``mlp versions`` made a registry of an empty file (and reported it empty): only ``mlp train``
    makes one."""
    monkeypatch.setattr(PrometheusReader, "check", lambda self: None)
    empty = tmp_path / "e.db"
    empty.touch()
    uri = f"sqlite:///{empty}"
    status, err = mlp(*command, "--tracking-uri", uri)
    assert (status, err) == (
        2,
        f"mlp: no registry at {uri}: {empty} is an empty file, not a registry; pass the "
        f"--tracking-uri of an existing registry, or `mlp train SERVICE --tracking-uri {uri}` makes "
        "one in it\n",
    )
    assert empty.stat().st_size == 0
    status, err = mlp("train", "toy", "--tracking-uri", uri)
    assert (status, mlp.trained) == (0, ["toy"]), err
    assert empty.read_bytes().startswith(mlflow_registry.SQLITE_HEADER)


@contextmanager
def answering(status: int, body: str, content_type: str = "text/plain") -> Iterator[str]:
    """A server on 127.0.0.1 answering every request with ``status`` and ``body``."""

    class Handler(StubHandler):
        def every(self) -> None:
            self.answer(status, body.encode(), content_type)

        do_GET = do_POST = every  # noqa: N815 (http.server's names)

    with http_stub(Handler) as url:
        yield url


@pytest.mark.parametrize("command", [["versions", "toy"], ["train", "toy"], ["promote", "toy", "2"]])
def test_an_mlflow_server_refusing_the_host_name_is_told_to_allow_it(command: list[str], mlp: Mlp) -> None:
    """Behind an Ingress with a public host, MLflow answers 403 to a Host not in its --allowed-hosts:
    mlp said no server answered there."""
    with answering(403, INVALID_HOST) as url:
        status, err = mlp(*command, "--tracking-uri", url)
    host = url.removeprefix("http://")
    assert status == 2
    assert err == (
        f"mlp: the MLflow server at {url} answered 403 ({INVALID_HOST}): it answers only the Host "
        f"names of its --allowed-hosts (MLFLOW_SERVER_ALLOWED_HOSTS), and {host} is not among them; "
        f"add {host} to the server's --allowed-hosts\n"
    )
    assert mlp.trained == []


@pytest.mark.parametrize(
    ("answer", "body", "status", "said"),
    [
        (
            401,
            "You are not authenticated",
            2,
            "answered 401 (You are not authenticated): it wants credentials",
        ),
        (403, "Permission denied", 2, "answered 403 (Permission denied): it wants credentials"),
        (404, "default backend - 404", 2, "answered MLflow's API with 404 (default backend - 404): is it"),
        (502, "Bad Gateway", 1, "with 502: the MLflow server, or a proxy in front of it, is failing"),
    ],
)
def test_a_server_answering_with_an_error_is_not_said_to_be_absent(
    answer: int, body: str, status: int, said: str, mlp: Mlp
) -> None:
    """401/403/404 are not worth retrying (exit 2); a 5xx may pass (exit 1)."""
    with answering(answer, body) as url:
        code, err = mlp("versions", "toy", "--tracking-uri", url)
    assert code == status
    assert "no MLflow tracking server answers" not in err
    assert said in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("answer", "body", "status", "said"),
    [
        (
            404,
            {"error": "not_found", "message": "no endpoint at /api/2.0/mlflow/experiments/search"},
            2,
            "answered MLflow's API with 404 (no endpoint at /api/2.0/mlflow/experiments/search): is it",
        ),
        (400, {"message": "Bad request"}, 2, "answered MLflow's API with 400 (Bad request): is it"),
        (
            401,
            {"message": "Unauthorized"},
            2,
            "answered 401 (Unauthorized): it wants credentials",
        ),
        (
            404,
            {"error_code": "ENDPOINT_NOT_FOUND", "message": "No such endpoint"},
            2,
            "answered MLflow's API with 404 (No such endpoint): is it",
        ),
    ],
)
def test_a_json_error_without_mlflows_error_code_is_said_with_the_status_answered(
    answer: int, body: dict[str, str], status: int, said: str, mlp: Mlp
) -> None:
    """A model service named by mistake (its port for MLflow's) answers a JSON 404 without
    MLflow's error_code, which MLflow calls INTERNAL_ERROR: mlp said the server answered 500 and was
    failing (exit 1), where it was no MLflow server (exit 2)."""
    with answering(answer, json.dumps(body), "application/json") as url:
        code, err = mlp("versions", "toy", "--tracking-uri", url)
    assert (code, len(err.splitlines())) == (status, 1), err
    assert said in err
    assert "500" not in err


def test_the_status_of_an_mlflow_error_is_the_one_answered() -> None:
    from mlflow.exceptions import RestException

    def raised(status: int, body: dict[str, str]) -> Exception:
        response = SimpleNamespace(status_code=status)  # the REST client's local, as MLflow raises
        try:
            if response.status_code:
                raise RestException(body)
        except RestException as exc:
            return exc
        raise AssertionError

    assert mlflow_registry.answered_status(raised(404, {"message": "no endpoint"})) == (404, "no endpoint")
    assert mlflow_registry.answered_status(raised(503, {"message": "down"})) == (503, "down")
    # Not raised (no traceback to read): as the body's error_code says.
    unraised = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"})
    assert mlflow_registry.answered_status(unraised) == (404, "gone")
    assert mlflow_registry.answered_status(RestException({"message": "?"})) == (500, "?")


UNREACHABLE_COMMANDS = [
    *READING_COMMANDS,
    ["train", "toy"],
    ["score", "toy", "rows.csv", "--output", "out.csv"],
]


def retried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's requests tried twice, at once, and the CLI's own log handler, as a user's shell sees
    it. Called in the test's body: pytest adds its handlers for that phase, after the fixtures, and
    they would make the CLI's logging.basicConfig a no-op."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)


@pytest.mark.parametrize("command", UNREACHABLE_COMMANDS)
def test_no_server_listening_is_one_line_naming_the_cause(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlp: Mlp
) -> None:
    """urllib3 warned of each retry, and the error line quoted its exception twice over; the hint
    left out the variable the URI is usually set by. The first retry is said in mlp's words."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("x\n1\n")
    monkeypatch.setattr(PrometheusReader, "check", lambda self: None)
    retried_once(monkeypatch)
    nobody = f"http://127.0.0.1:{free_port()}"
    status, err = mlp(*command, "--tracking-uri", nobody)
    assert (status, err) == (
        1,
        f"mlp: no answer yet from the MLflow tracking server at {nobody} (connection refused); "
        "retrying\n"
        f"mlp: no MLflow tracking server answers at {nobody} (connection refused); `make up` starts "
        "one, or pass --tracking-uri or set MLFLOW_TRACKING_URI\n",
    )
    assert mlp.trained == []


def test_a_hung_server_is_said_to_be_retried_before_the_command_gives_up(
    monkeypatch: pytest.MonkeyPatch, mlp: Mlp
) -> None:
    """A server that takes connections and never answers: each try waits out the request timeout
    (120 s by default), and mlp said nothing until it gave up, where urllib3's warning had been a
    sign of life. Once, in mlp's words, through the redacting handler, and no more."""
    retried_once(monkeypatch)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # two retries, one line
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    # The kernel completes connections into the backlog; nothing ever reads or answers them.
    with socket.create_server(("127.0.0.1", 0), backlog=8) as hung:
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}/?token=t0k3n"
        status, err = mlp("versions", "toy", "--tracking-uri", uri)
    shown = uri.replace("t0k3n", "***")
    assert (status, err) == (
        1,
        f"mlp: no answer yet from the MLflow tracking server at {shown} (timed out); retrying\n"
        f"mlp: no MLflow tracking server answers at {shown} (timed out); `make up` starts one, or "
        "pass --tracking-uri or set MLFLOW_TRACKING_URI\n",
    )


def test_a_proxy_that_does_not_answer_is_not_said_to_be_the_tracking_server(
    monkeypatch: pytest.MonkeyPatch, mlp: Mlp
) -> None:
    """HTTP_PROXY named a proxy that was down: mlp said no tracking server answered at the URL of
    one that was up, and the proxy went unnamed. The proxy's password is not shown."""
    retried_once(monkeypatch)
    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)  # requests passes 127.0.0.1 to a proxy unless told
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", f"http://proxy-user:pr0xy-pw@{dead}")
    with answering(200, "{}") as url:
        status, err = mlp("versions", "toy", "--tracking-uri", url)
    proxy = f"the proxy http://***@{dead} for {url}"
    assert (status, err) == (
        1,
        f"mlp: {proxy} could not be reached yet (connection refused); retrying\n"
        f"mlp: {proxy} could not be reached (connection refused): check HTTPS_PROXY/HTTP_PROXY/"
        "NO_PROXY (the tracking server itself was not reached)\n",
    )


def failed_request(reason: Exception) -> Exception:
    """What MLflow's REST client raises when urllib3 gives up on a request for ``reason``: its
    exception, in requests', in MLflow's (chained implicitly, as MLflow raises it)."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from urllib3.exceptions import MaxRetryError

    url = "/api/2.0/mlflow/experiments/search"
    try:
        try:
            raise RequestsConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
        except RequestsConnectionError as exc:
            raise MlflowException(f"API request to {url} failed with exception {exc}")  # noqa: B904
    except MlflowException as exc:
        return exc


def test_the_cause_of_no_answer_is_said_in_a_few_words() -> None:
    from urllib3.exceptions import NameResolutionError, NewConnectionError, ProxyError, ReadTimeoutError

    not_known = socket.gaierror(-2, "Name or service not known")
    unresolved = NameResolutionError("mlflow.typo", None, not_known)  # type: ignore[arg-type]
    unresolved.__cause__ = not_known  # as urllib3 raises it
    unreachable = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    unreachable.__cause__ = OSError(101, "Network is unreachable")
    said = {
        "host name not resolved": failed_request(unresolved),
        "timed out": failed_request(ReadTimeoutError(None, "/", "Read timed out. (read timeout=20)")),  # type: ignore[arg-type]
        "network is unreachable": failed_request(unreachable),
    }
    for words, exc in said.items():
        assert mlflow_registry.unanswered("http://mlflow.typo:5000", exc).message == (
            f"no MLflow tracking server answers at http://mlflow.typo:5000 ({words}); `make up` starts "
            "one, or pass --tracking-uri or set MLFLOW_TRACKING_URI"
        )
    # A proxy's failure, whatever the proxy is (none known here), is not the tracking server's.
    unresolved_proxy = ProxyError("Unable to connect to proxy", unresolved)
    assert mlflow_registry.unanswered("http://mlflow:5000", failed_request(unresolved_proxy)).message == (
        "the proxy for http://mlflow:5000 could not be reached (host name not resolved): check "
        "HTTPS_PROXY/HTTP_PROXY/NO_PROXY (the tracking server itself was not reached)"
    )
    # Anything else is shown whole.
    odd = mlflow_registry.unanswered("http://h:5000", failed_request(ValueError("an odd failure"))).message
    assert "(MlflowException: API request to " in odd
    assert "Caused by ValueError('an odd failure')" in odd
