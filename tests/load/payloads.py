"""Request bodies for load and monitoring tests: rows like those the served model was trained on.

Rows come from the service's own loader or generator (so they are in the schema of the real
data set), are made JSON-safe and are kept only when the service's request schema accepts them
(servekit.testing.valid_requests).

Which data: ``real`` (``../shared/datasets/<service>/*.csv``), ``synthetic`` (the service's
generator) or ``auto``: what the model served at ``host`` was trained on, as its ``GET /model``
says (``data.source``: a file, or ``synthetic(rows=..., seed=...)``). Sending real rows to a
model trained on synthetic ones (``make up``'s) is drift by construction: the input, prediction
and attribution drift alerts would fire for an hour after a load test.

Real rows are the served model's held-out rows when they can be told apart: about 80 % of a file
are rows it trained on, where NLPInsight knows every word of a text, so a load test from the
whole file put ``text_known_word_share`` at a PSI of 0.9 against its held-out baseline. They are
the trainer's own split (``servekit.training.splitting.split``) of the file as the spec loads it,
with the seed its run recorded, checked against what the run logged: the file's frame hash and
the hashes of its training rows. When that cannot be done (another file, no seed to be found),
the whole file is sent and the reason says why.

Two things stop the load test before it sends anything (:class:`RefusalError`): a model trained on a
real file that is not here, nor any real file of its service, would get synthetic rows and raise
the very drift alerts ``auto`` avoids, unless ``LOADTEST_ALLOW_SYNTHETIC=1`` says that is meant;
and a service that refuses the key (``LOADTEST_<SERVICE>_API_KEY``) would answer every request of
the run 401 or 403.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from servekit import registry
from servekit.datasets import SHARED
from servekit.errors import ServekitError

# Imported for its MLflow client settings as well (one retry, not minutes of them, for a
# registry that does not answer): the service's own.
from servekit.loading import one_line
from servekit.mlflow_registry import registry_client
from servekit.redaction import MASK
from servekit.spec import ServiceSpec
from servekit.testing import valid_requests
from servekit.training.fingerprint import is_synthetic, sha256_of_frame
from servekit.training.splitting import split, to_records
from servekit.training.training_rows import row_hashes, training_rows_of

LOG = logging.getLogger("loadtest")
MODES = ("auto", "real", "synthetic")


#: What sending training rows does to the input drift metrics.
TRAINING_ROWS_DRIFT = (
    "expect input drift in what a model knows of its training rows (NLPInsight's text_known_word_share)"
)
#: What sending rows of other data does: none is a training row, each may be unlike them all.
OTHER_DATA_DRIFT = (
    "rows unlike its training data are drift on every input: expect input, prediction and attribution "
    "drift alerts"
)


#: The opt-in to synthetic rows for a model trained on real data that cannot be found here.
ALLOW_SYNTHETIC = "LOADTEST_ALLOW_SYNTHETIC"
#: What synthetic rows do to a model trained on real data: the drift rules' windows are an hour.
SYNTHETIC_DRIFT = (
    "its InputDrift, PredictionDrift and AttributionDrift alerts would fire for about an hour after the run"
)
#: Longest server message quoted: a refusal's reason, not a body.
MESSAGE_CHARS = 300
#: A number in a message (a count, a limit, seconds), not a digit of a name (p95, v2, a request id).
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\.?\w)")


class RefusalError(Exception):
    """The load test must not start against a service: what is wrong and what to do."""


def key_variable(name: str) -> str:
    """The variable holding the API key the load test sends ``name``."""
    return f"LOADTEST_{name.upper()}_API_KEY"


def allows_synthetic() -> bool:
    return os.environ.get(ALLOW_SYNTHETIC, "").strip().lower() in {"1", "true", "yes"}


def server_message(status: int, body: bytes | str | None) -> str:
    """``HTTP <status>: <message>`` of an error answer: servekit's ``message`` (``error`` on Open
    Inference paths, where it is the message), else the start of the body.

    A 5xx or 429 message has its request id and its numbers cut (``<id>``, ``<n>``): Locust keeps
    a row of failures per distinct text, and a row per request id, or per count of instances in
    flight (a full replica's 503), would bury the others; a kind of failure is one row.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        said = parsed.get("message") if isinstance(parsed.get("message"), str) else parsed.get("error")
        text = said if isinstance(said, str) else text
    message = " ".join(text.split())
    if status >= 500 or status == 429:
        message = NUMBER.sub("<n>", re.sub(r"(request id) \S+", r"\1 <id>", message))
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 3] + "..."
    return f"HTTP {status}: {message}" if message else f"HTTP {status}"


def key_refused(name: str, host: str, api_key: str, status: int, *, said: str, asked: str) -> RefusalError:
    """The refusal of the load test when ``host`` answers ``asked`` with 401 or 403."""
    variable = key_variable(name)
    if status == 403:
        fix = (
            f"{variable} may not predict (a read-only key, mlp api-key --read-only?): give it a key "
            f"without a scope (mlp api-key loadtest)"
        )
    elif api_key:
        fix = f"{variable} is not a key of this service (mistyped, expired or revoked?): give it one"
    else:
        fix = f"{variable} is not set and the service asks for an API key: set it (mlp api-key loadtest)"
    return RefusalError(f"{name}: {host} refused {asked} ({said}): {fix}; every request would be refused")


class Payloads(NamedTuple):
    rows: list[dict[str, Any]]
    #: The file the rows come from, or ``synthetic``.
    source: str
    #: Why that data: the mode asked for, or what the served model was trained on.
    reason: str


def served_model(host: str, api_key: str = "", timeout: float = 10.0) -> dict[str, Any]:
    """What the service at ``host`` says of its model (``GET /model``); raises ``OSError`` or
    ``ValueError`` when it cannot be asked."""
    request = urllib.request.Request(f"{host.rstrip('/')}/model", headers=auth_headers(api_key))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        described = json.load(response)
    if not isinstance(described, dict):
        raise ValueError(f"GET /model answered {type(described).__name__}, not an object")
    return described


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def check_access(name: str, host: str, api_key: str, row: dict[str, Any], timeout: float = 10.0) -> None:
    """One prediction of ``row``, as the run's first would be: ``RefusalError`` when the service refuses
    the key (401, or 403: a read-only key opens ``GET /model`` but no prediction).

    Anything else is left to the run, whose verdicts name it: a service down fails its endpoints.
    """
    request = urllib.request.Request(
        f"{host.rstrip('/')}/predict",
        data=json.dumps(row).encode(),
        headers={"Content-Type": "application/json", **auth_headers(api_key)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            said = server_message(exc.code, exc.read())
            raise key_refused(name, host, api_key, exc.code, said=said, asked="a prediction") from None
    except (OSError, ValueError):
        pass


def served_training_data(host: str, api_key: str = "", timeout: float = 10.0) -> tuple[str, str]:
    """``data.source`` and version of the model served at ``host`` (``GET /model``).

    Raises ``LookupError`` (or ``OSError``, ``ValueError``) when the service cannot be asked or
    its model does not say.
    """
    described = served_model(host, api_key, timeout)
    version = str(described.get("version", "?"))
    source = (described.get("data") or {}).get("source")
    if not source:
        raise LookupError(f"its model (version {version}) does not say what it was trained on")
    return str(source), version


def choose(name: str, mode: str, host: str | None, api_key: str = "") -> tuple[str, Path | None, str]:
    """``real`` or ``synthetic``, the file of real rows, and why."""
    return decide(name, mode, host, api_key)[:3]


def decide(name: str, mode: str, host: str | None, api_key: str = "") -> tuple[str, Path | None, str, bool]:
    """:func:`choose`'s answer, and whether the served model is known to be one of real data."""
    if mode not in MODES:
        raise ValueError(f"LOADTEST_DATA={mode!r}: expected one of {', '.join(MODES)}")
    files = sorted((SHARED / name).glob("*.csv"))
    shared = files[0] if files else None
    if mode != "auto":
        return mode, shared, f"LOADTEST_DATA={mode}", False
    if host is None:
        return ("real" if shared else "synthetic"), shared, "no service to ask: real data when present", False
    try:
        source, version = served_training_data(host, api_key)
    except urllib.error.HTTPError as exc:
        said = server_message(exc.code, exc.read())
        if exc.code in (401, 403):
            raise key_refused(name, host, api_key, exc.code, said=said, asked="GET /model") from None
        reason = f"could not tell what {host}'s model was trained on ({said}): real data when present"
        return ("real" if shared else "synthetic"), shared, reason, False
    except (OSError, ValueError, LookupError) as exc:
        reason = f"could not tell what {host}'s model was trained on ({exc}): real data when present"
        return ("real" if shared else "synthetic"), shared, reason, False
    trained = f"the served model (version {version}) was trained on {source}"
    if is_synthetic(source):
        return "synthetic", None, trained, False
    path = Path(source)
    if path.is_file():
        return "real", path, trained, True
    if shared is not None:
        return "real", shared, f"{trained}, not found here: the shared file instead", True
    missing = f"{trained}, not found here, nor a file under {SHARED / name}"
    if not allows_synthetic():
        raise RefusalError(synthetic_refused(name, missing))
    return "synthetic", None, f"{missing}: synthetic rows ({ALLOW_SYNTHETIC}=1): expect drift alerts", True


def synthetic_refused(name: str, why: str) -> str:
    """Why synthetic rows are not sent to ``name``'s model of real data, and what to do."""
    return (
        f"{name}: {why}: synthetic rows would be drift to a model trained on real data: "
        f"{SYNTHETIC_DRIFT}. Give the load test the file it was trained on, at that path (the Load test "
        f"workflow copies it from TRAINING_DATA_DIR, as Retrain does), or set {ALLOW_SYNTHETIC}=1 to "
        "send synthetic rows anyway"
    )


def held_out(
    spec: ServiceSpec, frame: pd.DataFrame, described: dict[str, Any]
) -> tuple[pd.DataFrame | None, str]:
    """The features of the rows of ``frame`` the model ``described`` (``GET /model``) held out from
    training, and how they were told apart; None, and why not, when they cannot be.

    The split is the trainer's, with the seed and held-out share its run recorded (``mlp train``
    logs them as parameters in the registry ``GET /model`` names, or ``data.seed`` when the model
    says so itself). It is trusted only on a frame with the hash the model recorded, or when it
    gives the training rows the run logged (``training_rows.npy``), or both when both are there;
    the caller (:func:`real_rows`) has checked the hash.
    """
    data = described.get("data") or {}
    recorded = data.get("frame_sha256")
    params, learnt, unread = run_record(described)
    seed = data.get("seed", params.get("seed"))
    if seed is None:
        return None, f"no split seed recorded: {unread or 'its run has no seed parameter'}"
    test_size = params.get("test_size")
    if test_size is not None and float(test_size) != spec.recipe.test_size:
        return (
            None,
            f"its run held out {test_size} of the rows, this recipe holds out {spec.recipe.test_size}",
        )
    if not recorded and learnt is None:
        return (
            None,
            f"nothing recorded to match the file with (no frame_sha256, {unread or 'no training_rows.npy'})",
        )
    data_split = split(spec, frame, int(seed))
    if learnt is not None and not np.array_equal(row_hashes(data_split.x_train, data_split.y_train), learnt):
        return None, f"the split with seed {seed} is not the one its run logged (training_rows.npy)"
    return (
        data_split.x_test,
        f"the {len(data_split.x_test):,} rows it held out of {len(frame):,} (split seed {seed})",
    )


def real_rows(spec: ServiceSpec, frame: pd.DataFrame, described: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The features of the rows of ``frame`` to send the model ``described`` (``GET /model``), and
    what they are: the rows it held out, or every row and what that does to its drift metrics.

    Whether these rows hold its training rows at all comes first: a model trained on synthetic
    rows, or on another file, has none here, and the warning is of other data, not of
    training rows (``LOADTEST_DATA=real`` against ``make up``'s model).
    """
    data = described.get("data") or {}
    source = str(data.get("source") or "")
    every_row = spec.recipe.features(frame)
    if is_synthetic(source):
        return (
            every_row,
            f"every row of the file, none of them its training rows (it was trained on {source}): "
            + OTHER_DATA_DRIFT,
        )
    recorded = data.get("frame_sha256")
    if recorded and recorded != sha256_of_frame(frame):
        return (
            every_row,
            "every row of the file, not the data it was trained on (another frame_sha256 than it recorded), "
            f"so none need be its training rows; {OTHER_DATA_DRIFT} where the two differ",
        )
    found, how = held_out(spec, frame, described)
    if found is not None:
        return found, how
    return every_row, f"every row of the file, training rows included ({how}): {TRAINING_ROWS_DRIFT}"


#: What MLflow signs in to a registry with, whichever registry it is given.
REGISTRY_CREDENTIALS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def registry_of(described: dict[str, Any]) -> tuple[str, str]:
    """The registry to read the run of the model ``described`` from, or none and why.

    ``MLFLOW_TRACKING_URI`` when set: the credentials in the environment are for it. The registry
    the model names only without them: MLflow would send them to whatever URI a service's
    ``GET /model`` answers (a service the person running the load test typed the address of).
    """
    own = os.environ.get("MLFLOW_TRACKING_URI", "")
    if own:
        return own, ""
    served = str(described.get("registry_uri") or "")
    if not served or MASK in served:  # redacted by GET /model: a password in it
        return "", "the model names no registry to read its run from (set MLFLOW_TRACKING_URI)"
    credentials = [name for name in REGISTRY_CREDENTIALS if os.environ.get(name)]
    if credentials:
        return "", (
            f"its registry {served} is not read with {credentials[0]} set, which would be sent to it: "
            "set MLFLOW_TRACKING_URI to the registry those credentials are for"
        )
    return served, ""


def run_record(described: dict[str, Any]) -> tuple[dict[str, str], np.ndarray | None, str]:
    """The parameters and training-row hashes of the run of the model ``described``, and why none
    when they cannot be read."""
    run_id = str(described.get("run_id") or "")
    if not run_id:
        return {}, None, "the model names no run to read"
    tracking_uri, unread = registry_of(described)
    if not tracking_uri:
        return {}, None, unread
    try:
        params = dict(registry_client(tracking_uri).get_run(run_id).data.params)
    except Exception as exc:  # any registry problem is a reason to fall back, not to stop
        why = exc.message if isinstance(exc, ServekitError) else one_line(exc)
        return {}, None, f"its run {run_id} cannot be read from the registry ({why})"
    return params, training_rows_of(run_id, tracking_uri), ""


def payloads(
    name: str,
    n: int = 300,
    seed: int = 11,
    mode: str | None = None,
    *,
    host: str | None = None,
    api_key: str = "",
) -> Payloads:
    """Up to ``n`` valid request bodies for ``name``, where they came from and why.

    ``mode``: ``auto`` (like the data the model served at ``host`` was trained on; without a
    host, real data when present), ``real`` or ``synthetic``; default from ``LOADTEST_DATA``.
    """
    spec = registry.get_service(name)
    recipe = spec.recipe
    asked = mode or os.environ.get("LOADTEST_DATA", "auto")
    chosen, path, reason, real_model = decide(name, asked, host, api_key)
    if chosen == "real":
        if path is None:
            raise FileNotFoundError(f"no real data set under {SHARED / name}")
        try:
            frame = recipe.load_csv(path)  # as ``mlp train`` loads a file (``TrainingRecipe.load``)
            features, which = recipe.features(frame), "every row of the file"
            if host is None:
                which += " (no service to ask what it was trained on, or held out)"
            else:
                try:
                    features, which = real_rows(spec, frame, served_model(host, api_key))
                except Exception as exc:  # not knowing which rows were held out is no reason to stop
                    which += f", its training rows too if any (which it held out cannot be told: {exc})"
            features = features.sample(n=min(n, len(features)), random_state=seed)
            rows = valid_requests(spec, to_records(features))
            if rows:
                return Payloads(rows, str(path.resolve()), f"{reason}; {which}")
            raise ValueError("no row passes the request schema")
        except Exception as exc:  # a loader problem must not stop the load test
            if asked == "real":
                raise
            reason = f"{reason}; but {path} is unusable ({exc})"
            # Unless the served model is one of real data: synthetic rows would be drift to it.
            if real_model and not allows_synthetic():
                raise RefusalError(synthetic_refused(name, reason)) from None
            LOG.warning("%s: real data unusable (%s), using synthetic rows", name, exc)
    rows = valid_requests(spec, to_records(recipe.features(recipe.generate(n, seed))))
    if not rows:
        raise ValueError(f"{name}: no synthetic row passes the request schema")
    return Payloads(rows, "synthetic", reason)
