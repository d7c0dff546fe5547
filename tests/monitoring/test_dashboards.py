"""Structure of every generated Grafana dashboard and panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin.common import GRAFANA_URL
from mixin.platform import WATCHDOG, platform_alerts
from scripts import MONITORING
from servekit import registry
from servekit.metrics import MetricNames

DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge", "gauge"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_an_overview_and_one_dashboard_per_service() -> None:
    names = {p.stem for p in DASHBOARDS}
    assert names == {"overview", "alerting", *registry.available()}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_has_a_datasource_variable_and_no_hard_coded_uid(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    text = path.read_text()

    # Every datasource reference is the variable, never a concrete uid.
    def refs(node: Any) -> list[Any]:
        found = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    found.append(value)
                else:
                    found += refs(value)
        elif isinstance(node, list):
            for item in node:
                found += refs(item)
        return found

    references = refs(dashboard["panels"]) + refs(dashboard["templating"]["list"][1:])
    for ref in references + refs(dashboard["annotations"]):
        assert ref == {"type": "prometheus", "uid": "${datasource}"}, ref
    assert '"uid": "prometheus"' not in text
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_is_well_formed(path: Path) -> None:
    panels = load(path)["panels"]
    assert panels
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        title = panel["title"]
        assert panel["type"] in PANEL_TYPES, title
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"}, title
        assert all(isinstance(grid[k], int) for k in grid), title
        assert min(grid["x"], grid["y"]) >= 0, title
        assert min(grid["w"], grid["h"]) > 0, title
        assert grid["x"] + grid["w"] <= 24, f"{title}: beyond 24 columns"
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & occupied, f"{title} overlaps another panel"
        occupied |= cells
        assert panel["targets"], f"{title}: no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert "legendFormat" in target, title
        assert panel["fieldConfig"]["defaults"]["unit"], f"{title}: no unit"
        # A query's own unit names a query of the panel.
        for override in panel["fieldConfig"]["overrides"]:
            assert override["matcher"]["id"] == "byFrameRefID", title
            assert override["matcher"]["options"] in refs, title
        assert panel.get("description"), f"{title}: no description"


def test_a_stat_panel_of_a_figure_a_count_and_an_age_gives_each_its_unit() -> None:
    for service in registry.available():
        panels = {p["title"]: p for p in load(MONITORING / "dashboards" / f"{service}.json")["panels"]}
        live = panels["Live quality: verdict, answers scored, groups worse, hours since"]
        units = {
            target["legendFormat"]: next(
                (
                    prop["value"]
                    for o in live["fieldConfig"]["overrides"]
                    if o["matcher"]["options"] == target["refId"]
                    for prop in o["properties"]
                ),
                live["fieldConfig"]["defaults"]["unit"],
            )
            for target in live["targets"]
        }
        assert units == {
            "v{{version}}: {{verdict}}": "none",
            "v{{version}} answers": "short",
            "v{{version}} groups worse": "short",
            "v{{version}} hours since": "h",
        }


def test_service_dashboards_show_the_contract_panels() -> None:
    for service in registry.available():
        titles = " | ".join(p["title"] for p in load(MONITORING / "dashboards" / f"{service}.json")["panels"])
        for word in (
            "endpoint",
            "Outcome distribution",
            "Attribution drift",
            "Shadow agreement",
            "memory",
            "CPU",
        ):
            assert word in titles, f"{service}: no panel about {word}"
    overview = " | ".join(p["title"] for p in load(MONITORING / "dashboards" / "overview.json")["panels"])
    for word in ("Traffic", "Errors", "Latency", "Explanation latency", "SLO burn", "Model versions"):
        assert word in overview, f"overview: no panel about {word}"


def test_the_alerting_dashboard_shows_every_series_the_pipeline_alerts_read() -> None:
    """Prometheus's and Alertmanager's own series in the platform's alerts: an on-call engineer who
    is paged by one finds its history on the dashboard, and a new alert cannot be added without it."""
    own = ("prometheus_", "alertmanager_")
    read = {
        metric for alert in platform_alerts() for metric in series_read(alert.expr) if metric.startswith(own)
    }
    assert len(read) >= 10, read
    panels = load(MONITORING / "dashboards" / "alerting.json")["panels"]
    shown = {metric for p in panels for target in p["targets"] for metric in series_read(target["expr"])}
    assert not read - shown


#: What a PromQL expression names that is not a series: label matchers and grouping labels (cut out
#: first), functions and keywords (no underscore or colon), and these.
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
MATCHERS = re.compile(r"\{[^}]*\}")
NAME = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_]+)*")
NOT_SERIES = re.compile(
    r"^(?:[a-z]+_over_time|histogram_quantile|label_replace|label_join|clamp_min|clamp_max|group_left|group_right)$"
)


#: ``up`` of one job or service: every target's is named ``up``, so its matcher tells them apart.
UP = re.compile(r'\bup\{[^}]*\b((?:job|service)="[^"]*")')


def series_read(expr: str) -> set[str]:
    """The series an expression reads: metric and recording-rule names, and ``up`` by its job or
    service (``up{job="kube-state-metrics"}``)."""
    bare = MATCHERS.sub("", GROUPING.sub("", expr))
    names = {n for n in NAME.findall(bare) if ("_" in n or ":" in n) and not NOT_SERIES.match(n)}
    return names | {f"up{{{matcher}}}" for matcher in UP.findall(expr)}


def test_series_read_sees_series_and_nothing_else() -> None:
    expr = (
        'sum by (client, status) (rate(svc_requests_total{status="401",endpoint!~"/a_b"}[15m]))\n'
        "/ on (service) group_left\nhistogram_quantile(0.5, max_over_time(service:x:rate5m[1h]))\n"
        'and up{service="svc",instance=~"$instance"} == 0 or sum(up{job="other"})'
    )
    expected = {"svc_requests_total", "service:x:rate5m", 'up{service="svc"}', 'up{job="other"}'}
    assert series_read(expr) == expected


def test_every_alert_links_to_a_dashboard_that_plots_what_it_reads() -> None:
    """The notification's dashboard link (Slack and PagerDuty carry it beside the runbook) leads to a
    dashboard that plots at least one series the alert's expression reads: the on-call engineer finds
    the alert's history there. A new alert over a series no panel shows fails here."""
    plotted = {
        dashboard["uid"]: {
            name for p in dashboard["panels"] for t in p["targets"] for name in series_read(t["expr"])
        }
        for dashboard in map(load, DASHBOARDS)
    }
    variables = {
        dashboard["uid"]: {v["name"] for v in dashboard["templating"]["list"]}
        for dashboard in map(load, DASHBOARDS)
    }
    checked = 0
    for path in sorted((MONITORING / "rules").glob("*.rules.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in (r for r in group["rules"] if "alert" in r):
                url = rule["annotations"]["dashboard_url"]
                base, _, rest = url.partition("/d/")
                uid, _, query = rest.partition("?")
                assert base == GRAFANA_URL, url
                assert uid in plotted, f"{rule['alert']}: {url}"
                # A link opens on the pod or the input that fired: each variable it sets is one of
                # the dashboard's, set to a label of the alert (promtool cases hold what it renders to).
                for setting in filter(None, query.split("&")):
                    name, value = setting.split("=", 1)
                    assert name.removeprefix("var-") in variables[uid], f"{rule['alert']}: {url}"
                    assert value == f"{{{{ $labels.{name.removeprefix('var-')} | urlquery }}}}", url
                if rule["alert"] == WATCHDOG:  # vector(1): it reads nothing, and always fires
                    continue
                read = series_read(rule["expr"])
                assert read, rule["alert"]
                assert read & plotted[uid], f"{path.stem} {rule['alert']} reads {sorted(read)}: none on {uid}"
                checked += 1
    assert checked >= 80
    # The alerts of one pod open on it (ModelNotReady, MemoryNearLimit, ...), of one input on it (InputDrift).
    links = [
        r["annotations"]["dashboard_url"]
        for path in sorted((MONITORING / "rules").glob("*.rules.yaml"))
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    # Per service: ServiceTargetDown, ModelNotReady, ModelRefreshFailing, MemoryNearLimit; one InputDrift.
    services = len(registry.available())
    assert sum("?var-instance=" in link for link in links) >= services * 4
    assert sum("?var-feature=" in link for link in links) == services  # InputDrift: the variable is an input


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_marks_when_its_alerts_fired(path: Path) -> None:
    """One annotation, on by default, over Prometheus's ALERTS series; what each selects is a
    promtool case of monitoring/tests/platform.test.yaml, generated from these very files."""
    [annotation] = load(path)["annotations"]["list"]
    assert annotation["enable"], path.stem
    assert annotation["expr"].startswith('ALERTS{alertstate="firing",'), annotation["expr"]
    cases = yaml.safe_load((MONITORING / "tests" / "platform.test.yaml").read_text())["tests"]
    tested = [c for c in cases if c["name"] == f"Alerts firing annotation: {path.stem}"]
    assert [c["promql_expr_test"][0]["expr"] for c in tested] == [annotation["expr"]]
    assert tested[0]["promql_expr_test"][0]["exp_samples"], "a case that selects nothing proves little"


#: A runbook's paragraph (or list item), and a span of it in italics: how it names a panel.
PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\d+\. |- )")
ITALICS = re.compile(r"(?<![*\w])\*([^*\s][^*]*?)\*(?![*\w])")


def test_the_runbooks_name_panels_that_exist() -> None:
    """Where a runbook sends the on-call engineer to a dashboard, each panel it names in italics is
    (part of) a panel's title or a variable's label there, on every service's dashboard, or on the
    alerting pipeline's: a renamed panel fails here, not in the middle of an incident. A menu of
    Prometheus's own pages (*Status → Targets*) is not a panel."""
    services = [load(path) for path in DASHBOARDS if path.stem in registry.available()]
    pipeline = load(MONITORING / "dashboards" / "alerting.json")

    def names(dashboard: dict[str, Any]) -> list[str]:
        variables = [v.get("label", v["name"]) for v in dashboard["templating"]["list"]]
        return [dashboard["title"], *(p["title"] for p in dashboard["panels"]), *variables]

    checked = 0
    for paragraph in PARAGRAPH.split((MONITORING / "runbooks.md").read_text()):
        flat = " ".join(paragraph.split())
        scopes = [
            dashboards
            for phrase, dashboards in (("service dashboard", services), ("alerting pipeline", [pipeline]))
            if phrase in flat.lower()
        ]
        for span in (s for s in ITALICS.findall(flat) if "→" not in s):
            for dashboards in scopes:
                for dashboard in dashboards:
                    assert any(span in name for name in names(dashboard)), f"*{span}* on {dashboard['uid']}"
                checked += 1
    assert checked >= 25


def test_every_dashboard_links_to_the_others_by_the_tag_they_all_carry() -> None:
    for path in DASHBOARDS:
        dashboard = load(path)
        tag = dashboard["tags"][0]
        assert all(tag in load(other)["tags"] for other in DASHBOARDS), path.stem
        [link] = dashboard["links"]
        assert (link["type"], link["tags"], link["keepTime"]) == ("dashboards", [tag], True), path.stem


def test_alerts_dropped_are_a_rate_beside_the_queues_share() -> None:
    """Plotted in the panel's percent, 0.01 alerts dropped a second read as "1 %", on the axis of
    the queue's fill beside it, thresholds at 50 and 90 %."""
    panels = {p["title"]: p for p in load(MONITORING / "dashboards" / "alerting.json")["panels"]}
    panel = panels["Alerts waiting to be sent, and dropped"]
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    [dropped] = [t["refId"] for t in panel["targets"] if "dropped" in t["legendFormat"]]
    units = {o["matcher"]["options"]: o["properties"][0]["value"] for o in panel["fieldConfig"]["overrides"]}
    assert units == {dropped: "ops"}


def test_the_canary_share_panel_compares_the_share_set_with_the_random_draws() -> None:
    """The share the canary answered counts the requests asked for, pinned and keyed too: a probe
    read 33 % of 20 % set. Its random draws, what mlp rollout judges a quiet canary on, are the
    share to compare (the promtool case of the panel computes both)."""
    for service in registry.available():
        names = MetricNames(service)
        panels = load(MONITORING / "dashboards" / f"{service}.json")["panels"]
        [panel] = [p for p in panels if p["title"].startswith("Canary share: set on the pods")]
        targets = {t["legendFormat"]: t["expr"] for t in panel["targets"]}
        assert names.variant_draws_total in targets["drawn for the canary"]
        assert names.variant_draws_total in panel["description"]
        answered = [expr for legend, expr in targets.items() if legend.startswith("answered by the canary")]
        assert answered, "the share answered, asked-for and keyed requests included, is still plotted"
        assert "keyed included" in " ".join(targets)
