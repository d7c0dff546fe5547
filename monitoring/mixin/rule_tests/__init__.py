"""The promtool unit tests of each service's rules: every alert firing, and quiet where it must.

Two files a service: its rules' tests at the minute (``rule_test_file``) and those of the alerts
over a day's window (``daily_test_file``). The cases are in a module per family of alerts
(``serving``, ``drift``, ``capacity``, ``access``, ``rollouts``, ``workloads``), the recording
rules' and the panels' tests in ``recordings`` and ``panels``, and what they are all made of in
``cases``.
"""

from __future__ import annotations

from typing import Any

from mixin.alerts import alerts
from mixin.cluster import batch_scoring, live_evaluation
from mixin.common import SCRAPE_INTERVAL
from mixin.rule_tests.capacity import shed_burst_cases
from mixin.rule_tests.cases import DAILY_INTERVAL, alert_tests
from mixin.rule_tests.panels import (
    autoscaler_condition_panel_tests,
    canary_share_panel_tests,
    live_quality_panel_tests,
    replica_panel_tests,
    scheduled_run_panel_tests,
    shadow_comparison_panel_tests,
)
from mixin.rule_tests.recordings import log_volume_cases, recording_tests
from mixin.rule_tests.serving import rule_cases
from mixin.rule_tests.workloads import batch_scoring_overdue_cases, overdue_cases


def daily_test_file(service: str) -> dict[str, Any]:
    """The alerts over a day's window, evaluated every DAILY_INTERVAL: at the minute a day of every
    rule takes promtool minutes."""
    return {
        "rule_files": [f"../rules/{service}.rules.yaml"],
        "evaluation_interval": DAILY_INTERVAL,
        "tests": alert_tests(
            alerts(service),
            log_volume_cases(service) + overdue_cases(service) + batch_scoring_overdue_cases(service),
            interval=DAILY_INTERVAL,
        ),
    }


def rule_test_file(service: str) -> dict[str, Any]:
    return {
        "rule_files": [f"../rules/{service}.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": alert_tests(alerts(service), rule_cases(service))
        + alert_tests(alerts(service), shed_burst_cases(service), interval=SCRAPE_INTERVAL)
        + recording_tests(service)
        + replica_panel_tests(service)
        + autoscaler_condition_panel_tests(service)
        + scheduled_run_panel_tests(service, live_evaluation, "live evaluation", 86400)
        + scheduled_run_panel_tests(service, batch_scoring, "batch scoring", 31 * 86400)
        + live_quality_panel_tests(service)
        + shadow_comparison_panel_tests(service)
        + canary_share_panel_tests(service),
    }
