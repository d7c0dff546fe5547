"""A short headless Locust run against the live services: no errors, p95 within limits, reports;
and the runs that must fail: a service down or without a user, a typo in the thresholds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from processes import BIN, ROOT, KeyedService, Server, free_port
from servekit import http_client
from servekit.auth.api_keys import RELOAD_SECONDS
from servekit.auth.key_lines import key_line, new_key
from servekit.testing import StubHandler, http_stub

pytestmark = pytest.mark.integration


def run_locust(
    live_services: dict[str, Server],
    reports: Path,
    *options: str,
    run_time: str = "15s",
    env: dict[str, str] | None = None,
    users: int | None = None,
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``locust --headless`` against the live services (``env`` added); the run and its whole output.

    The latency SLO is reported, not enforced: these runs check the load test's mechanics on a
    machine whose other tests take the cores the SLO's 50 ms assume (its verdict: test_verdicts.py).
    """
    reports.mkdir()
    extra = env or {}
    env = {**os.environ, "LOADTEST_DATA": os.environ.get("LOADTEST_DATA", "auto"), "LOADTEST_SLO": "report"}
    for name, server in live_services.items():
        env[f"LOADTEST_{name.upper()}_HOST"] = server.url
    env.update(extra)  # last: a test's host (a dead one) wins
    users = users or max(3, len(live_services))
    result = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "tests" / "load" / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            run_time,
            "--csv",
            str(reports / "locust"),
            "--html",
            str(reports / "locust.html"),
            "--json-file",
            str(reports / "locust"),
            *options,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, result.stdout + result.stderr


def test_locust_short_run(live_services: dict[str, Server], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result, output = run_locust(live_services, reports)
    assert result.returncode == 0, output[-5000:]
    assert "loadtest: passed" in output, output[-5000:]
    for service in live_services:
        # Trained on synthetic data (conftest), so sent synthetic rows, and told so.
        said = rf"^loadtest: {service}: \d+ payloads from synthetic \(the served model \(version \d+\) was"
        assert re.search(said, output, re.M), output[-5000:]
        assert f"loadtest: latency SLO: {service} /predict (explained too): " in output, output[-5000:]
    for name in ("locust_stats.csv", "locust_failures.csv", "locust.html", "locust.json"):
        assert (reports / name).is_file(), f"{name} not written: {sorted(p.name for p in reports.iterdir())}"
    stats = json.loads((reports / "locust.json").read_text())
    names = {entry["name"] for entry in stats}
    for service in live_services:
        infer = f"{service} /v2/models/{service}/infer"
        assert {
            f"{service} /predict",
            f"{service} /predict?explain",
            f"{service} /predict/batch",
            infer,
        } <= names


def test_a_service_tag_runs_that_service_with_every_user(
    live_services: dict[str, Server], tmp_path: Path
) -> None:
    # As the README and the locustfile show it: `make loadtest LOAD_TAGS=bankchurn`.
    result, output = run_locust(live_services, tmp_path / "reports", "--tags", "bankchurn", run_time="6s")
    assert result.returncode == 0, output[-5000:]
    assert '"BankchurnUser": 3' in output, output[-5000:]
    assert "No tasks defined" not in output
    stats = json.loads((tmp_path / "reports" / "locust.json").read_text())
    assert {entry["name"].split()[0] for entry in stats} == {"bankchurn"}


def test_tags_that_match_no_task_stop_the_run_with_a_reason(
    live_services: dict[str, Server], tmp_path: Path
) -> None:
    result, output = run_locust(live_services, tmp_path / "reports", "--tags", "bankchrun", run_time="6s")
    assert result.returncode != 0
    assert "loadtest: no task matches the tags given" in output


def test_each_user_sends_its_services_api_key(keyed_bankchurn: KeyedService, tmp_path: Path) -> None:
    services = {"bankchurn": keyed_bankchurn.server}
    keyed = {"LOADTEST_BANKCHURN_API_KEY": keyed_bankchurn.keys["loadtest"]}
    tags = ("--tags", "bankchurn")
    result, output = run_locust(services, tmp_path / "keyed", *tags, run_time="5s", env=keyed)
    assert result.returncode == 0, output[-5000:]
    assert "loadtest: passed" in output, output[-5000:]
    # Without it every request was refused 401 for the whole run, and the start line only said it
    # "could not tell" what the model was trained on: now the run stops before it sends any.
    result, output = run_locust(services, tmp_path / "keyless", *tags, run_time="3s")
    assert result.returncode == 1, output[-5000:]
    said = (
        f"loadtest: bankchurn: {keyed_bankchurn.server.url} refused GET /model (HTTP 401: this endpoint "
        "needs an API key of this service: header.Authorization: missing: "
    )
    assert said in output, output[-5000:]
    assert "LOADTEST_BANKCHURN_API_KEY is not set and the service asks for an API key" in output
    assert " requests, " not in output  # nothing was sent
    assert "Traceback" not in output


def test_a_read_only_key_stops_the_run_before_it_starts(
    keyed_bankchurn: KeyedService, tmp_path: Path
) -> None:
    """A read-only key (mlp api-key --read-only) opens GET /model: every prediction was a bare 403."""
    service = keyed_bankchurn
    reader = new_key()
    staged = service.keys_file.with_name("keys.loadtest-reader")
    staged.write_text(
        service.keys_file.read_text() + key_line("loadtest-reader", reader, scope="read") + "\n"
    )
    os.replace(staged, service.keys_file)  # as test_api_keys adds on-call's key to the running service
    deadline = time.monotonic() + 3 * RELOAD_SECONDS
    headers = {"authorization": f"Bearer {reader}"}
    while http_client.get(f"{service.server.url}/model", headers=headers, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the read-only key is not taken"
        time.sleep(0.2)
    result, output = run_locust(
        {"bankchurn": service.server},
        tmp_path / "reports",
        "--tags",
        "bankchurn",
        run_time="3s",
        env={"LOADTEST_BANKCHURN_API_KEY": reader},
    )
    assert result.returncode == 1, output[-5000:]
    assert (
        f"loadtest: bankchurn: {service.server.url} refused a prediction (HTTP 403: this endpoint is closed "
        "to read-only keys: header.Authorization: loadtest-reader's key reads metadata only (scope=read)"
    ) in output, output[-5000:]
    assert "LOADTEST_BANKCHURN_API_KEY may not predict (a read-only key" in output
    assert " requests, " not in output


def test_a_failure_keeps_the_services_reason_and_no_success_fails_the_slo(tmp_path: Path) -> None:
    """locust_failures.csv said LocustBadStatusCode(code=422), and the latency SLO line "ok" when
    every request had failed, fast."""

    class Refusing(StubHandler):
        def do_GET(self) -> None:
            self.answer(200, {"version": "3", "data": {"source": "synthetic(rows=10, seed=42)"}})

        def do_POST(self) -> None:
            self.body()
            self.answer(422, {"error": "invalid_request", "message": "CreditScore: below 300", "fields": []})

    dead = f"http://127.0.0.1:{free_port()}"  # the services left out by --tags: nobody else's
    with http_stub(Refusing) as url:
        hosts = {
            "LOADTEST_BANKCHURN_HOST": url,
            "LOADTEST_NLPINSIGHT_HOST": dead,
            "LOADTEST_CHICAGOTAXI_HOST": dead,
        }
        result, output = run_locust(
            {}, tmp_path / "reports", "--tags", "bankchurn", run_time="4s", env=hosts, users=1
        )
    assert result.returncode == 1, output[-5000:]
    failures = (tmp_path / "reports" / "locust_failures.csv").read_text()
    assert "HTTP 422: CreditScore: below 300" in failures, failures
    assert "LocustBadStatusCode" not in failures
    slo = [
        line for line in output.splitlines() if line.startswith("loadtest: latency SLO: bankchurn /predict")
    ]
    assert len(slo) == 1, output[-5000:]
    assert re.fullmatch(r".*: no successful requests of \d+ FAILED", slo[0]), slo
    assert "loadtest: FAILED: bankchurn /predict: no successful requests" in output


def test_fewer_users_than_services_are_refused(live_services: dict[str, Server], tmp_path: Path) -> None:
    # Locust would give one service no user: it would never be called and the run would pass.
    result, output = run_locust(live_services, tmp_path / "reports", run_time="4s", users=2)
    assert result.returncode != 0
    assert "loadtest: 2 users for 3 services (bankchurn, chicagotaxi, nlpinsight)" in output, output[-5000:]


def test_a_service_down_fails_the_run_at_its_endpoints(
    live_services: dict[str, Server], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result, output = run_locust(
        live_services, tmp_path / "reports", run_time="4s", env={"LOADTEST_NLPINSIGHT_HOST": dead}
    )
    assert result.returncode != 0
    # Refused connections answer fast: the endpoint's verdict is its errors, not its p95.
    verdicts = [line for line in output.splitlines() if line.startswith("loadtest: nlpinsight /predict:")]
    assert verdicts, output[-5000:]
    assert verdicts[0].endswith("FAILED"), verdicts
    assert "loadtest: FAILED: nlpinsight /predict: " in output
    assert "loadtest: passed" not in output


def test_a_typo_in_the_thresholds_stops_the_run_before_it_starts(
    live_services: dict[str, Server], tmp_path: Path
) -> None:
    for typo, said in (("predcit=100", "unknown kind 'predcit'"), ("predict=abc", "'predict=abc' is not")):
        result, output = run_locust(
            live_services, tmp_path / typo, run_time="4s", env={"LOADTEST_P95_MS": typo}
        )
        assert result.returncode == 1, output[-5000:]
        assert f"loadtest: LOADTEST_P95_MS: {said}" in output, output[-5000:]
        assert "Traceback" not in output
        assert " requests, " not in output  # nothing was sent
