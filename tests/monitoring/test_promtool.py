"""`promtool check rules` and `promtool test rules` (one unit test per alert, firing and quiet)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from mixin.alerts import alerts
from mixin.rule_tests import alert_tests, client_refused_cases, series_str
from processes import installed
from scripts import MONITORING
from servekit import registry
from servekit.metrics.names import MetricNames


def promtool() -> str:
    return installed("promtool")


def test_promtool_check_rules() -> None:
    files = sorted(str(p) for p in (MONITORING / "rules").glob("*.yaml"))
    assert files
    result = subprocess.run(
        [promtool(), "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    files = sorted((MONITORING / "tests").glob("*.test.yaml"))
    assert files
    # One process per file: they are independent and each takes a few CPU-seconds.
    runs = {
        f.name: subprocess.Popen(
            [promtool(), "test", "rules", f.name],
            cwd=f.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for f in files
    }
    failures = []
    for name, process in runs.items():
        output, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(f"{name}:\n{output}")
    assert not failures, "\n".join(failures)


def test_a_single_client_refused_at_its_share_warns_though_the_sli_sees_nothing(tmp_path: Path) -> None:
    """The service's one caller over its share of an overloaded replica is answered 429, before the
    replica's own limit (503 overloaded): no 5xx, nothing shed, so the availability page and
    PredictionsShed stay quiet, and ClientRefusedAtItsShare is the one alert that names it. Quiet on
    a trickle of 429s and on a client's bursts meeting its share now and then."""
    service = registry.available()[0]
    target = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    ready = {series_str(MetricNames(service).model_ready, target): "1x60"}
    cases = client_refused_cases(service, target, ready)
    assert [bool(case.expected) for case in cases] == [True, False, False]
    tests = alert_tests(alerts(service), cases)
    # The firing case is invisible to the SLI: neither the page nor PredictionsShed fires.
    tests[0]["alert_rule_test"] += [
        {"eval_time": cases[0].eval_time, "alertname": name, "exp_alerts": []}
        for name in ("AvailabilityBudgetBurnFast", "PredictionsShed")
    ]
    rules = MONITORING / "rules" / f"{service}.rules.yaml"
    test_file = tmp_path / "client_refused.test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
