"""The committed rule files, rule tests and dashboards are exactly what the generator writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from alerting import seconds
from prometheus_client.utils import floatToGoString

from mixin import cli
from mixin.alertmanager import HEARTBEAT, SEVERITIES, alertmanager_config
from mixin.common import (
    NAMESPACE_LABEL,
    availability_event,
    le,
    objectives,
)
from mixin.kustomization import KUSTOMIZATION, monitoring_kustomization
from mixin.outputs import outputs, stale
from mixin.platform import PLATFORM, WATCHDOG, WATCHDOG_SEVERITY
from mixin.recorded import ERROR_RATIO
from scripts import MONITORING
from servekit import admission, registry
from servekit.metrics.collectors import latency_event
from servekit.metrics.names import LATENCY_BUCKETS
from servekit.rest.telemetry import shutdown_cut

LEVEL_METRIC_OPERATIONS = re.compile(r"^[a-z]+(_[a-z]+)*:[a-z0-9_]+:[a-z0-9_]+$")


def rule_groups() -> list[dict]:
    groups = []
    for path in sorted((MONITORING / "rules").glob("*.yaml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def test_generated_files_are_fresh() -> None:
    problems = stale()
    assert not problems, f"stale generated files {problems}: run .venv/bin/python monitoring/generate.py"


def test_every_service_has_rules_tests_and_a_dashboard() -> None:
    for service in registry.available():
        for path in (
            f"rules/{service}.rules.yaml",
            f"tests/{service}.test.yaml",
            f"dashboards/{service}.json",
        ):
            assert (MONITORING / path).is_file(), path
    assert (MONITORING / "dashboards" / "overview.json").is_file()


def test_kustomization_lists_exactly_the_generated_files() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    listed = {f for gen in kustomization["configMapGenerator"] for f in gen.get("files", [])}
    dirs = ("rules", "dashboards", "alertmanager")
    on_disk = {f"{d}/{p.name}" for d in dirs for p in (MONITORING / d).glob("*")}
    assert on_disk <= listed, f"not in monitoring/kustomization.yaml: {sorted(on_disk - listed)}"
    assert {f for f in listed if f.startswith(tuple(f"{d}/" for d in dirs))} <= on_disk


def test_the_kustomization_lists_every_service_the_generator_writes_for() -> None:
    """A new service's rule file and dashboard are deployed without a hand edit: listed by hand,
    one added to the generator and not to the kustomization shipped no alerts and no dashboard."""
    listed = monitoring_kustomization(
        ["dashboards/overview.json", "rules/zzz.rules.yaml", "dashboards/zzz.json"]
    )
    files = {generator["name"]: generator["files"] for generator in listed["configMapGenerator"]}
    assert files["prometheus-rules"] == ["rules/zzz.rules.yaml"]
    assert files["grafana-dashboards"] == ["dashboards/overview.json", "dashboards/zzz.json"]
    # The hand-written files are listed whatever the generator writes.
    assert files["grafana-datasources"] == ["grafana/datasources.yaml"]


def test_a_kustomization_that_misses_a_services_files_is_stale(tmp_path: Path) -> None:
    """``generate.py --check`` (and the freshness test) names the kustomization when a service's
    entries are missing from it, as when a service was added and the generator not run."""
    root = tmp_path / "monitoring"
    for path, text in outputs().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    assert stale(root) == []
    service = registry.available()[0]
    kustomization_file = root / KUSTOMIZATION
    without = kustomization_file.read_text().replace(f"  - dashboards/{service}.json\n", "")
    assert without != kustomization_file.read_text()
    kustomization_file.write_text(without)
    assert stale(root) == [KUSTOMIZATION]


def test_recording_rules_follow_level_metric_operations() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            if "record" in rule:
                assert LEVEL_METRIC_OPERATIONS.match(rule["record"]), rule["record"]
                assert rule["labels"]["service"] in registry.available()


def test_every_alert_is_documented_and_has_a_runbook_section() -> None:
    runbooks = (MONITORING / "runbooks.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")}
    alerts = [(group, rule) for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    assert alerts
    for group, rule in alerts:
        if rule["alert"] == WATCHDOG:
            assert rule["labels"]["severity"] == WATCHDOG_SEVERITY
        else:
            assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        # A service's alerts name it; the platform's own (mixin.platform) belong to none.
        if group["name"] == f"{PLATFORM}.alerts":
            assert "service" not in rule["labels"], rule["alert"]
        else:
            assert rule["labels"]["service"] in registry.available()
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        url = annotations["runbook_url"]
        assert url.split("#")[0].endswith("/monitoring/runbooks.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no section {url} in monitoring/runbooks.md"


def runbook_section(title: str) -> str:
    runbooks = (MONITORING / "runbooks.md").read_text()
    return runbooks.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_availability_alerts_and_their_runbook_name_every_503_of_a_prediction_request() -> None:
    """Each 503 calls for its own remedy. A request a stopping pod cut (shutting_down) went unnamed,
    and would have been filed under the model not ready."""
    codes = {
        admission.overloaded("full").error,
        "model_not_ready",  # servekit.runtime's, before a model is loaded
        "canary_not_ready",  # servekit.routing's, to a request asking for a canary not loaded
        shutdown_cut().error,
    }
    table = runbook_section("AvailabilityBudgetBurnFast")
    for code in codes:
        assert f"| 503 `{code}`" in table, f"runbooks.md, AvailabilityBudgetBurnFast: no row for {code}"
    burns = [
        rule
        for group in rule_groups()
        for rule in group["rules"]
        if rule.get("alert", "").startswith("AvailabilityBudgetBurn")
    ]
    assert len(burns) == 2 * len(registry.available())
    for rule in burns:
        for code in codes:
            assert code in rule["annotations"]["description"], (rule["alert"], code)
    # The record to search, since a stopping pod's last counts are never scraped.
    assert "503 in N ms: shutting_down" in table
    assert "not scraped again" in table


def test_the_latency_runbook_says_what_the_sli_counts() -> None:
    """The runbook's SLI and the histogram agree: answers and 499s are timed, refusals and 5xx not."""
    slo = runbook_section("Service level objectives")
    assert "the model answered, or whose client gave up waiting (499)" in slo
    counted = slo.split("**What the latency SLI counts.**", 1)[1].split("\n\n", 1)[0]
    assert latency_event(200)
    assert latency_event(499)
    for refused in (401, 403, 413, 422, 429):
        assert not latency_event(refused)
        assert str(refused) in counted, refused
    assert not latency_event(500)
    assert not latency_event(503)
    assert "5xx" in counted


def alert_rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def test_the_availability_sli_counts_answers_5xx_and_499_not_the_clients_refusals() -> None:
    """Refusals for the client's own fault are no events of the availability SLI, in its errors or its
    requests: counted as requests, as many 401s as answers halved the ratio, and a 1 % burn of 503s
    did not page (the promtool cases hold that). A 499 counts as the latency SLI counts it: its
    events are the histogram's count, which times no upload a client abandoned, and the 5xx."""
    for status in range(100, 600):
        assert availability_event(status) == (latency_event(status) or status >= 500), status
    # The services answer these on prediction requests; none is an event, 499 and every 5xx are.
    for refused in (400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 431):
        assert not availability_event(refused), refused
    assert availability_event(499)
    ratios = [
        rule
        for group in rule_groups()
        for rule in group["rules"]
        if rule.get("record", "").startswith(ERROR_RATIO.split("{")[0])
    ]
    assert len(ratios) == 7 * len(registry.available())
    for rule in ratios:
        errors, requests = rule["expr"].split("\n/\n")
        assert 'status=~"5.."' in errors, rule
        timed, failed = requests.split("\n  +\n")
        assert "_prediction_latency_seconds_count{" in timed, rule
        assert "status" not in timed, rule
        assert failed.strip().removesuffix(")").strip() == errors, rule
    sheds = [rule for rule in alert_rules() if rule["alert"] == "PredictionsShed"]
    assert len(sheds) == len(registry.available())
    for rule in sheds:
        assert "_prediction_latency_seconds_count{" in rule["expr"].split("\n/\n")[1], rule
    counted = runbook_section("Service level objectives").split("**What the availability SLI counts.**", 1)[1]
    counted = counted.split("\n\n", 1)[0]
    assert "histogram's `_count`" in counted
    assert "before its body was in" in counted
    for refused in (400, 401, 403, 404, 408, 413, 422, 429, 499):
        assert str(refused) in counted, refused


def test_the_429s_the_availability_sli_leaves_out_are_watched_by_client() -> None:
    """A 429 (a client over its share of a replica) is no event of the SLI, yet the service's one
    caller meets its share before the replica's limit: an overloaded replica answered it 429, and no
    alert fired. Each service warns of a client's 429s, by client, and the SLI's docs say so."""
    watching = [rule for rule in alert_rules() if rule["alert"] == "ClientRefusedAtItsShare"]
    assert sorted(rule["labels"]["service"] for rule in watching) == sorted(registry.available())
    for rule in watching:
        assert "_client_requests_total{" in rule["expr"], rule
        assert 'status="429"' in rule["expr"], rule
        assert "sum by (namespace, client)" in rule["expr"], rule
        assert "{{ $labels.client }}" in rule["annotations"]["description"], rule
    counted = runbook_section("Service level objectives").split("**What the availability SLI counts.**", 1)[1]
    counted = counted.split("\n\n", 1)[0]
    assert "single caller" in counted
    assert "(#clientrefusedatitsshare)" in counted
    assert "ClientRefusedAtItsShare" in (MONITORING / "README.md").read_text()


#: The namespace the runbook's and the README's commands name: the base's and the overlays'.
NAMESPACE = "ml-platform"
#: A kubectl command quoted in a description or the runbook: its arguments, up to a pipe, && or ;.
KUBECTL = re.compile(r"\bkubectl\b((?:(?!\||&&|;).)*)")


def kubectl_commands(text: str) -> list[str]:
    """The arguments of every kubectl command quoted in ``text`` (Markdown, or a description): in
    code blocks, a line continued with a backslash joined; in a code span, its lines joined."""
    text = text.replace("\\\n", " ")
    blocks = re.findall(r"```.*?```", text, flags=re.S)
    spans = [line for block in blocks for line in block.splitlines()]
    for block in blocks:
        text = text.replace(block, "")
    spans += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text)]
    return [match.group(1).strip() for span in spans for match in KUBECTL.finditer(span)]


def names_the_namespace(args: str) -> bool:
    """Whether kubectl with ``args`` runs in the platform's namespace (or needs none)."""
    if any(args.startswith(f"-n {namespace} ") for namespace in (NAMESPACE, NAMESPACE_LABEL)):
        return True
    # An object of no namespace; a raw path that names it; a manifest piped in, which carries it.
    if args.startswith("get apiservice ") or args == "apply -f -":
        return True
    return args.startswith("get --raw ") and f"/namespaces/{NAMESPACE}/" in args


def test_every_kubectl_command_names_the_namespace() -> None:
    """A command without -n runs in the on-call's current namespace (often default) and finds nothing:
    eighteen descriptions said `kubectl describe deployment bankchurn` and the like."""
    quoted = {
        f"{rule['alert']} of {rule['labels'].get('service')}: {name}": text
        for rule in alert_rules()
        for name, text in rule["annotations"].items()
    }
    in_descriptions = sum(len(kubectl_commands(text)) for text in quoted.values())
    assert in_descriptions == 7 * len(registry.available())
    for doc in ("runbooks.md", "README.md"):
        quoted[doc] = (MONITORING / doc).read_text()
    commands = [(where, args) for where, text in quoted.items() for args in kubectl_commands(text)]
    assert len(commands) > in_descriptions + 50  # the runbook's own
    missing = [(where, args) for where, args in commands if not names_the_namespace(args)]
    assert not missing, missing


def test_no_description_names_a_namespace_an_overlay_could_rename() -> None:
    """The rules ship in a ConfigMap, whose text an overlay's ``namespace:`` does not rewrite: five
    descriptions said ``kubectl -n ml-platform`` in an overlay renamed ml-staging. Each command names
    the alert's own ``namespace`` label instead."""
    for rule in alert_rules():
        for args in kubectl_commands(rule["annotations"]["description"]):
            assert args.startswith(f"-n {NAMESPACE_LABEL} "), (rule["alert"], args)
        for text in rule["annotations"].values():
            assert f"-n {NAMESPACE}" not in text, rule["alert"]


def test_the_namespace_is_the_one_everything_renders_in() -> None:
    for kustomization in ("k8s/base", "k8s/overlays/gke", "k8s/overlays/eks"):
        path = MONITORING.parent / kustomization / "kustomization.yaml"
        assert yaml.safe_load(path.read_text())["namespace"] == NAMESPACE, kustomization


#: An aggregation in PromQL, and the labels it keeps (``by (...)``), if it names them.
AGGREGATION = re.compile(r"\b(sum|min|max|avg|count|group|stddev|stdvar)\s*(?:by\s*\(([^)]*)\)\s*)?\(")


def without_scalars(expr: str) -> str:
    """``expr`` with each ``scalar(...)`` a number: what a scalar aggregates labels nothing."""
    while (start := expr.find("scalar(")) >= 0:
        depth = 0
        for index, char in enumerate(expr[start:], start):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == ")" and depth == 0:
                expr = f"{expr[:start]}0{expr[index + 1 :]}"
                break
    return expr


def test_an_alert_naming_its_namespace_label_keeps_it() -> None:
    """``{{ $labels.namespace }}`` renders empty on an alert whose expression aggregated the label
    away: every aggregation of such an alert keeps ``namespace`` (kube-state-metrics sets it on its
    series, the model-servers scrape job on the pods')."""
    naming = [rule for rule in alert_rules() if NAMESPACE_LABEL in rule["annotations"]["description"]]
    assert len(naming) == 7 * len(registry.available())
    for rule in naming:
        # What follows ``unless on (...)`` (to the end: LiveEvaluationFailed's) only filters: the
        # result's labels are those of what precedes it.
        labelled = without_scalars(rule["expr"]).split("\nunless on (")[0]
        for match in AGGREGATION.finditer(labelled):
            kept = [label.strip() for label in (match.group(2) or "").split(",")]
            assert "namespace" in kept, (rule["alert"], match.group(0))


def test_the_drift_alerts_say_their_threshold_in_percentage_points() -> None:
    """Their thresholds are absolute differences of two shares: 15 % read as a relative change."""
    thresholds = {"PredictionDrift": "outcome_drift", "AttributionDrift": "attribution_drift"}
    drifts = [rule for rule in alert_rules() if rule["alert"] in thresholds]
    assert len(drifts) == 2 * len(registry.available())
    for rule in drifts:
        threshold = getattr(objectives(rule["labels"]["service"]), thresholds[rule["alert"]])
        description = rule["annotations"]["description"]
        assert f"more than {threshold * 100:g} percentage points away" in description, description
        assert "%" not in description, description


def test_canary_refresh_failing_says_a_canary_never_loaded_fires_it_across_restarts() -> None:
    """A pod started while the canary alias names a version that does not load reports the failure
    until it loads (servekit.routing): the alert no longer resolves on a restart, and says so."""
    rules = [rule for rule in alert_rules() if rule["alert"] == "CanaryRefreshFailing"]
    assert len(rules) == len(registry.available())
    for rule in rules:
        description = rule["annotations"]["description"]
        assert "has loaded no canary at all since it started" in description, description
        assert "Restarting the pod does not clear it" in description, description
    section = " ".join(runbook_section("CanaryRefreshFailing").split())
    assert "has loaded no canary at all since it started" in section
    assert "Restarting pods does not clear the alert" in section


def test_the_heartbeat_is_posted_every_second_group_interval() -> None:
    """Alertmanager re-sends at a look (each group interval) once the repeat interval has passed since
    the last post was logged, a few milliseconds after the look that sent it: with the two equal,
    posts came one or two intervals apart by that race. Between one and two, always two."""
    [route] = [r for r in alertmanager_config()["route"]["routes"] if r["receiver"] == HEARTBEAT]
    group, repeat = seconds(route["group_interval"]), seconds(route["repeat_interval"])
    assert group < repeat < 2 * group, route
    assert 2 * group == 120, "the runbook's heartbeat check expects a post every 2 minutes"


def test_the_heartbeat_docs_give_the_two_replicas_spread_and_a_grace_that_covers_it() -> None:
    """Two gossiping replicas post 95-125 s apart, a slow retry up to 180 s: not every 2 minutes
    exactly. The check's period and grace the runbook recommends still cover the latest post."""
    section = runbook_section("Watchdog")
    said = "about every\n2 minutes (95-125 s with two replicas; up to 3 minutes after a slow retry)"
    assert said in section
    assert "exactly" not in section
    recommended = re.findall(r"a period of (\d+) minutes and a grace time of (\d+)", section)
    period, grace = (int(minutes) for minutes in recommended[0])
    assert (period + grace) * 60 >= 2 * 180


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    for service in [*registry.available(), PLATFORM]:
        rules = yaml.safe_load((MONITORING / "rules" / f"{service}.rules.yaml").read_text())
        alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
        # The alerts over a day have their cases in <service>.daily.test.yaml.
        files = sorted((MONITORING / "tests").glob(f"{service}.*test.yaml"))
        firing, quiet = set(), set()
        for case in (c for f in files for c in yaml.safe_load(f.read_text())["tests"]):
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
        assert alerts == firing, f"{service}: alerts without a firing case: {alerts - firing}"
        # The Watchdog fires whatever the series: a quiet case would fail.
        assert alerts - {WATCHDOG} == quiet, f"{service}: alerts without a quiet case: {alerts - quiet}"


def test_latency_threshold_is_a_bucket_bound_rendered_like_the_client() -> None:
    for service in registry.available():
        threshold = objectives(service).latency_threshold
        assert threshold in LATENCY_BUCKETS
        assert le(threshold) == floatToGoString(threshold)


def test_make_monitor_scrapes_the_make_up_ports_with_their_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make monitor`` beside a second ``make up`` (MLP_PORT_OFFSET) scrapes that copy's services."""
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, "100")
    config_path = tmp_path / "prometheus.yml"
    assert cli.main(["--prometheus-config", str(config_path), "--scrape-interval", "2s"]) == 0
    config = yaml.safe_load(config_path.read_text())
    scraped = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert scraped == {
        name: [f"127.0.0.1:{registry.get_service(name).local_port + 100}"] for name in registry.available()
    }
    assert config["global"]["scrape_interval"] == "2s"
