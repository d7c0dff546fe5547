"""`make monitor` (monitoring/monitor.sh): Prometheus, an Alertmanager routing as the cluster's does,
and the printer that shows its notifications, started together and stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from mixin.alertmanager import ALERTMANAGER_CONFIG, RECEIVERS_DIR
from mixin.alerts import alerts
from mixin.cli import main as generate
from mixin.platform import WATCHDOG, platform_alerts
from processes import ROOT, as_foreground_job, free_port, installed, wait_until
from scripts import MONITORING, load_script
from servekit import http_client, registry

PRINTER = load_script("print_alerts", MONITORING / "print_alerts.py")


def routes(config: Path, labels: list[str]) -> str:
    done = subprocess.run(
        [installed("amtool"), "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_local_alertmanager_routes_every_alert_as_the_cluster_does(tmp_path: Path) -> None:
    local = tmp_path / "alertmanager.yml"
    assert generate(["--alertmanager-config", str(local), "--printer-url", "http://127.0.0.1:9"]) == 0
    config = yaml.safe_load(local.read_text())
    assert RECEIVERS_DIR not in local.read_text(), "no Secret to read on a laptop"
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {name: f"http://127.0.0.1:9/{name}" for name in urls}
    committed = MONITORING / ALERTMANAGER_CONFIG
    every = [(a, f"service={s}") for s in registry.available() for a in alerts(s)]
    every += [(a, "") for a in platform_alerts()]
    for alert, service in every:
        labels = [f"alertname={alert.name}", f"severity={alert.severity}", *([service] if service else [])]
        assert routes(local, labels) == routes(committed, labels), alert.name


def test_the_printer_says_who_would_hear_of_each_alert() -> None:
    notification = {
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "ModelNotReady", "severity": "critical", "service": "bankchurn"},
                "annotations": {
                    "summary": "The model is not loaded",
                    "runbook_url": "https://example.org/monitoring/runbooks.md#modelnotready",
                },
                "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=bankchurn_model_ready+%3D%3D+0",
            }
        ]
    }
    [paged, runbook, query] = PRINTER.lines("pager", notification, heartbeats=0)
    assert " FIRING " in paged
    assert paged.endswith(
        "ModelNotReady [critical] bankchurn: The model is not loaded (would page through PagerDuty)"
    )
    # The checkout's own runbook, at the alert's section: the file is there, and so is the section.
    assert runbook.strip() == "runbook: monitoring/runbooks.md#modelnotready"
    path = runbook.split()[1].split("#")[0]
    assert query.split() == ["query:", notification["alerts"][0]["generatorURL"]]
    assert "\n## ModelNotReady\n" in (ROOT / path).read_text()
    [posted, _, _] = PRINTER.lines("chat", notification, heartbeats=0)
    assert posted.endswith("(would post to Slack)")
    notification["alerts"][0]["status"] = "resolved"
    [resolved] = PRINTER.lines("chat", notification, heartbeats=0)  # no runbook for what is over
    assert " RESOLVED " in resolved
    assert PRINTER.lines("heartbeat", {"alerts": []}, heartbeats=1)
    assert PRINTER.lines("heartbeat", {"alerts": []}, heartbeats=2) == []  # counted, not printed


def answering(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def monitor(tmp_path: Path, ports: dict[str, int]) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """monitor.sh in the background, its output lines gathered as they come."""
    env = {
        **os.environ,
        "MLP_STATE": str(tmp_path),
        "SCRAPE_INTERVAL": "1s",
        **{name: str(port) for name, port in ports.items()},
    }
    process = as_foreground_job(
        ["bash", str(MONITORING / "monitor.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        yield process, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def stopped(process: subprocess.Popen[str], seconds: float = 30) -> int:
    """The script's exit status once it has stopped; if it has not within ``seconds``, the
    processes of its session still there (which of the three did not stop) fail the test."""
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        left = subprocess.run(
            ["ps", "-o", "pid,stat,etime,args", "-s", str(process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        pytest.fail(f"monitor.sh did not stop within {seconds:g} s after Ctrl-C; still running:\n{left}")


def test_stopping_ends_a_process_stuck_on_sigterm_and_names_it() -> None:
    """monitor.sh's ``end``: SIGTERM, STOP_SECONDS for the processes to exit, then SIGKILL for any
    still there, named, so that a Ctrl-C ends the session whatever one of them is stuck on."""
    script = (MONITORING / "monitor.sh").read_text()
    function = script[script.index("end() {") : script.index("\n}\n", script.index("end() {")) + 3]
    # The deaf one ignores SIGTERM from its first instruction: started while this shell ignores
    # it (an ignored signal stays ignored across fork and exec), not after a start-up of its own
    # that a loaded machine can make longer than any wait.
    bash = f"""{function}
trap '' TERM
sleep 61 & deaf=$!
trap - TERM
sleep 60 & willing=$!
SECONDS=0
end "$deaf" "$willing"
wait
echo "$SECONDS"
"""
    done = subprocess.run(
        ["bash", "-c", bash],
        check=False,
        env={**os.environ, "STOP_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert 1 <= int(done.stdout.strip()) <= 5, done  # its second, not the 60 s of either
    assert done.stderr.count("did not stop in 1 s; killed") == 1, done.stderr
    assert "monitor: sleep 61 did not stop" in done.stderr, done.stderr


def test_prometheus_keeps_the_longest_window_any_rule_reads_and_a_day_more(tmp_path: Path) -> None:
    """A 2-day retention left LatencyBudgetBurnSlow's 3-day window with 2 days of samples."""
    script = (MONITORING / "monitor.sh").read_text()
    start = script.index("retention() {")
    function = script[start : script.index("\n}\n", start) + 3]
    assert '--storage.tsdb.retention.time="$RETENTION"' in script

    def retention(*files: Path) -> str:
        done = subprocess.run(
            ["bash", "-c", f'{function}\nretention "$@"', "retention", *map(str, files)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()

    rules = sorted((MONITORING / "rules").glob("*.yaml"))
    assert "[3d]" in "".join(path.read_text() for path in rules)  # the slow burn's long window
    assert retention(*rules) == "4d"
    longer = tmp_path / "longer.yaml"
    longer.write_text("expr: rate(x[5m]) and x offset 1w and max_over_time(y[36h:5m])\n")
    assert retention(longer) == "8d"
    longer.write_text("expr: max_over_time(y[36h:5m])\n")
    assert retention(longer) == "3d"


def local_ports() -> dict[str, int]:
    return {
        "PROMETHEUS_PORT": free_port(),
        "ALERTMANAGER_PORT": free_port(),
        "ALERT_PRINTER_PORT": free_port(),
    }


@pytest.mark.integration
def test_the_heartbeat_reaches_the_terminal_and_ctrl_c_stops_all_three(tmp_path: Path) -> None:
    ports = local_ports()
    with monitor(tmp_path, ports) as (process, output):
        wait_until(lambda: any("heartbeat:" in line for line in output) or process.poll() is not None)
        assert process.poll() is None, "".join(output)
        prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
        active = http_client.get(f"{prometheus}/api/v1/alertmanagers", timeout=10).json()["data"][
            "activeAlertmanagers"
        ]
        assert [a["url"] for a in active] == [f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}/api/v2/alerts"]
        firing = http_client.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        assert WATCHDOG in {a["labels"]["alertname"] for a in firing}
        # What Alertmanager holds links back to this Prometheus: the printed query opens here.
        alertmanager = f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}"
        held = http_client.get(f"{alertmanager}/api/v2/alerts", timeout=10).json()
        [watchdog] = [a for a in held if a["labels"]["alertname"] == WATCHDOG]
        assert watchdog["generatorURL"] == f"{prometheus}/graph?g0.expr=vector%281%29&g0.tab=1"
        process.send_signal(signal.SIGINT)  # the terminal's Ctrl-C reaches the script
        assert stopped(process) == 0
    assert not [name for name, port in ports.items() if answering(port)], "left running"


@pytest.mark.integration
def test_when_one_cannot_start_the_others_stop_and_it_says_so(tmp_path: Path) -> None:
    ports = local_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["PROMETHEUS_PORT"]))
        taken.listen()
        with monitor(tmp_path, ports) as (process, output):
            status = process.wait(timeout=60)
    assert status != 0
    assert any("a process exited" in line for line in output), "".join(output)
    others = {name: port for name, port in ports.items() if name != "PROMETHEUS_PORT"}
    assert not [name for name, port in others.items() if answering(port)], "left running"
