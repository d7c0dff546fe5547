"""Every generated file and its content, and which committed ones are stale."""

from __future__ import annotations

from pathlib import Path

from mixin.alertmanager import ALERTMANAGER_CONFIG, alertmanager_config
from mixin.alerts import rule_file
from mixin.autoscaling import ADAPTER_CONFIG, adapter_config
from mixin.common import HERE, services
from mixin.kustomization import KUSTOMIZATION, kustomization_text
from mixin.overview import overview
from mixin.pipeline_dashboard import pipeline_dashboard
from mixin.platform import PLATFORM, platform_rule_file, platform_test_file
from mixin.rule_tests import daily_test_file, rule_test_file
from mixin.service_dashboard import service_dashboard
from mixin.text import json_text, yaml_text


def outputs() -> dict[str, str]:
    """Every generated file, relative to monitoring/, and its content."""
    names = services()
    files: dict[str, str] = {}
    for service in names:
        files[f"rules/{service}.rules.yaml"] = yaml_text(rule_file(service))
        files[f"tests/{service}.test.yaml"] = yaml_text(rule_test_file(service))
        files[f"tests/{service}.daily.test.yaml"] = yaml_text(daily_test_file(service))
    dashboards = {
        **{service: service_dashboard(service) for service in names},
        "overview": overview(names),
        "alerting": pipeline_dashboard(),
    }
    for name, dashboard in dashboards.items():
        files[f"dashboards/{name}.json"] = json_text(dashboard)
    # The dashboards' alert annotations are tested on the platform's rules, whose Watchdog fires.
    annotations = {name: d["annotations"]["list"][0]["expr"] for name, d in dashboards.items()}
    files[f"rules/{PLATFORM}.rules.yaml"] = yaml_text(platform_rule_file())
    files[f"tests/{PLATFORM}.test.yaml"] = yaml_text(platform_test_file(annotations, names))
    files[ADAPTER_CONFIG] = yaml_text(adapter_config())
    files[ALERTMANAGER_CONFIG] = yaml_text(alertmanager_config())
    # Last: it lists the rule files and dashboards above, so a new service's are deployed too.
    files[KUSTOMIZATION] = kustomization_text(files)
    return files


def stale(root: Path = HERE) -> list[str]:
    """Generated files that differ from what is on disk, or are on disk but no longer generated."""
    files = outputs()
    problems = [
        path
        for path, text in files.items()
        if not (root / path).is_file() or (root / path).read_text() != text
    ]
    for sub, pattern in (("rules", "*.rules.yaml"), ("tests", "*.test.yaml"), ("dashboards", "*.json")):
        for path in sorted((root / sub).glob(pattern)):
            if f"{sub}/{path.name}" not in files:
                problems.append(f"{sub}/{path.name} (no longer generated)")
    return problems
