"""Every recording rule and every dashboard query returns data from the live services.

A real Prometheus on 127.0.0.1 scrapes the ``live_services`` every second with the generated
rule files loaded (evaluated every second); traffic of every kind is driven at each service.
Beside each, a second pod of the service asks for API keys (``keyed_services``), so the
per-client panels get data from clients that send them, and captures its predictions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerting import cluster, local_configuration, receiving, start_alertmanager

from load.payloads import payloads
from mixin.alerts import alerts
from mixin.autoscaling import adapter_config
from mixin.cluster import (
    CLUSTER_METRICS,
    autoscaler_condition_queries,
    batch_scoring,
    live_evaluation,
    replica_queries,
    scheduled_run_queries,
    statefulset_queries,
)
from mixin.cluster import SCRAPED as CLUSTER_SCRAPED
from mixin.grafana import VARIABLE_ALL_VALUES
from mixin.local_prometheus import prometheus_config
from mixin.platform import ALERTMANAGER_JOB, PIPELINE_STATEFULSETS, PLATFORM
from mixin.recorded import CONCURRENCY, recording_rules
from mixin.self_monitoring import PROMETHEUS_JOB
from processes import (
    KeyedService,
    Server,
    free_port,
    grpc_infer,
    infer_example,
    metric_value,
    run_prometheus,
    start_keyed_service,
)
from scripts import MONITORING, load_k8s_cost
from servekit import http_client, registry
from servekit.auth.expiry import expires_in
from servekit.bench import observed
from servekit.evaluation import GroupComparison, Quality, ShadowComparison, log_run, log_shadow_run
from servekit.metrics import MetricNames
from servekit.metrics.names import CAPTURE_LOGGER
from servekit.training.trainer import TrainResult
from servekit.training.uncertainty import Interval

pytestmark = pytest.mark.integration


#: Keys of the keyed pods: one client's lasts a month (the key expiry panel has it), the other's never ends.
EXPIRING, LASTING = "risk", "loadtest"


@pytest.fixture(scope="module")
def keyed_services(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, KeyedService]]:
    """Every service once more, with API keys of two clients: a second pod beside each live one."""
    keyed: dict[str, KeyedService] = {}
    try:
        for name in registered:
            keyed[name] = start_keyed_service(
                name,
                logs_dir,
                tmp_path_factory.mktemp("api-keys") / "keys",
                # The keyed pods capture every prediction: the capture's panels and the observed
                # bytes of a captured line get data from real lines.
                {"MLFLOW_TRACKING_URI": mlflow_server.url, f"{name.upper()}_CAPTURE_PERCENT": "100"},
                {EXPIRING: expires_in(30), LASTING: None},
                label=f"{name}-keyed-pod",
            )
        for service in keyed.values():
            service.server.wait_for("/readyz")
        yield keyed
    finally:
        for service in keyed.values():
            service.server.stop()


def address(server: Server) -> str:
    return server.url.removeprefix("http://")


@pytest.fixture(scope="module")
def prometheus(
    live_services: dict[str, Server],
    keyed_services: dict[str, KeyedService],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    targets = {
        name: [address(server), address(keyed_services[name].server)]
        for name, server in live_services.items()
    }
    directory = tmp_path_factory.mktemp("prometheus")
    # As in the cluster, it sends its alerts to an Alertmanager (gossiping, on the committed
    # configuration) and scrapes it and itself: the alerting pipeline dashboard reads those.
    with receiving() as receiver:
        config = local_configuration(receiver, directory)
        alertmanager = start_alertmanager(config, directory, gossip=cluster(free_port()))
        server = None
        try:
            alertmanager.wait_for("/-/ready", seconds=60)
            server = run_prometheus(
                directory,
                lambda itself: prometheus_config(
                    targets, "1s", alertmanager=address(alertmanager), itself=itself
                ),
            )
            server.wait_for("/-/ready", seconds=60)
            # Every target scraped once before a test sends traffic: each counter's first sample is
            # what the pod held before any (no capture yet), and increase() extrapolates neither of
            # a ratio's two counters back past it, so the observed ratios are the pods' own.
            deadline = time.monotonic() + 30
            while len(query(server, "up == 1")) < sum(map(len, targets.values())) + 2:
                assert time.monotonic() < deadline, query(server, "up")
                time.sleep(0.5)
            yield server
        finally:
            if server is not None:
                server.stop()
            alertmanager.stop()


@pytest.fixture(scope="module")
def live_evaluations(mlflow_server: Server, live_services: dict[str, Server]) -> None:
    """A live evaluation of each served version, and a comparison of its shadow version with it,
    logged as ``mlp evaluate --log`` logs them: the pods read them back (every 5 s here) for the
    live quality and shadow comparison panels. The figures are the version's held-out one (and no
    difference): ``test_live_evaluation`` scores real captured answers; here the series matter."""
    import mlflow

    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    for name, server in live_services.items():
        served = http_client.get(f"{server.url}/model", timeout=10).json()
        metric = registry.get_service(name).recipe.primary_metric
        figures = served["training_metrics"]
        held_out = Interval(figures[metric], figures[f"{metric}_ci_low"], figures[f"{metric}_ci_high"])
        # One group compared with its held-out rows, within the noise: the pods export 0 groups worse.
        group = GroupComparison("g", "a", 250, Interval(0.0, -0.05, 0.05), "within the noise", other_rows=250)
        quality = Quality(
            name, served["version"], metric, 500, live=held_out, held_out=held_out,
            verdict="within the noise", groups=(group,),
        )  # fmt: skip
        log_run(client, quality, "test_live_prometheus")
        shadow = served["shadow"]["version"]
        compared = ShadowComparison(
            name, shadow, served["version"], metric, 500, held_out.estimate, held_out.estimate,
            Interval(0.0, -0.01, 0.01), "within the noise",
        )  # fmt: skip
        log_shadow_run(client, compared, "test_live_prometheus")


def drive_traffic(live_services: dict[str, Server], rounds: int) -> None:
    """Predict, predict+explain, batch (with and without explanation), 4xx and probes."""
    rows = {name: payloads(name, 40, seed=3, mode="synthetic")[0] for name in live_services}
    with http_client.client(timeout=30) as client:
        # The Open Inference Protocol's infer, with the example each service documents.
        tensors = {name: infer_example(server.url) for name, server in live_services.items()}
        canary = {"X-Model-Variant": "canary"}
        for server in live_services.values():
            wait_for_canary(client, server)
        for i in range(rounds):
            for name, server in live_services.items():
                url, sample = server.url, rows[name]
                for row in sample[i * 4 : i * 4 + 4]:
                    response = client.post(f"{url}/predict", json=row)
                    assert response.status_code == 200, response.text
                    response = client.post(f"{url}/predict?explain=true", json=row)
                    assert response.status_code == 200, response.text
                batch = {"instances": sample[:8]}
                assert client.post(f"{url}/predict/batch", json=batch).status_code == 200
                assert client.post(f"{url}/predict/batch?explain=true", json=batch).status_code == 200
                # The canary runs at 0 %: only the requests that ask for it reach it.
                answered = client.post(f"{url}/predict", json=sample[i], headers=canary)
                assert answered.status_code == 200, answered.text
                assert answered.json()["model"]["version"] == "unregistered"
                explained = client.post(f"{url}/predict?explain=true", json=sample[i], headers=canary)
                assert explained.json()["explanation"]["contributions"], explained.text
                infer = f"{url}/v2/models/{name}/infer"
                assert client.post(infer, json=tensors[name]).status_code == 200
                assert grpc_infer(server, name, tensors[name]).model_name == name
                assert client.post(f"{url}/predict", json={"unknown": 1}).status_code == 422
                assert client.post(f"{url}/predict", content=b"{not json").status_code == 422
                assert client.get(f"{url}/readyz").status_code == 200
            time.sleep(1.0)


def drive_keyed_traffic(keyed_services: dict[str, KeyedService]) -> None:
    """Each client of each keyed pod predicts, and sends one request the schema refuses (422); one
    request without a key is refused (401)."""
    with http_client.client(timeout=30) as client:
        for name, service in keyed_services.items():
            rows = payloads(name, 4, seed=5, mode="synthetic")[0]
            for who, key in service.keys.items():
                headers = {"Authorization": f"Bearer {key}"}
                for row in rows:
                    answered = client.post(f"{service.server.url}/predict", json=row, headers=headers)
                    assert answered.status_code == 200, answered.text
                refused = client.post(f"{service.server.url}/predict", json={"unknown": 1}, headers=headers)
                assert refused.status_code == 422, (who, refused.text)
            anonymous = client.post(f"{service.server.url}/predict", json=rows[0])
            assert anonymous.status_code == 401, anonymous.text


def wait_for_canary(client: httpx.Client, server: Server, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not client.get(f"{server.url}/model").json()["canary"]["ready"]:
        assert time.monotonic() < deadline, client.get(f"{server.url}/model").json()["canary"]
        time.sleep(0.2)


def query(prometheus: Server, expr: str) -> list[dict[str, Any]]:
    response = http_client.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scraped_growth(prometheus: Server, server: Server, series: str, **labels: str) -> float:
    """What a pod's counter grew by across the last 10 minutes of Prometheus' samples of it.

    Its last sample is checked against the pod's own counter now: the traffic was all scraped.
    """
    matchers = ",".join(f'{k}="{v}"' for k, v in {"instance": address(server), **labels}.items())
    [result] = query(prometheus, f"{series}{{{matchers}}}[10m]")
    samples = [float(value) for _, value in result["values"]]
    assert samples[-1] == metric_value(server, series, **labels), series
    return samples[-1] - samples[0]


def recorded() -> list[str]:
    queries = []
    for service in registry.available():
        for rule in recording_rules(service):
            queries.append(f'{rule["record"]}{{service="{service}"}}')
    return queries


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard / panel, expr with template variables substituted) of every panel target."""
    queries = []
    for path in sorted((MONITORING / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in VARIABLE_ALL_VALUES.items():
                    expr = expr.replace(variable, value)
                assert "$" not in expr, f"unsubstituted variable in {expr}"
                queries.append((f"{path.stem} / {panel['title']}", expr))
    return queries


def test_every_rule_and_panel_query_returns_data(
    prometheus: Server,
    live_services: dict[str, Server],
    keyed_services: dict[str, KeyedService],
    live_evaluations: None,
) -> None:
    assert set(live_services) == set(registry.available())
    drive_keyed_traffic(keyed_services)
    drive_traffic(live_services, rounds=6)
    checks = [(q, q) for q in recorded()] + panel_queries()
    # kube-state-metrics' series need a cluster (it reads the API server), so no process here has
    # them: the panel queries over them are promtool cases instead (mixin.rule_tests,
    # mixin.platform), and they are exactly the services' replica, autoscaler condition, live
    # evaluation and batch scoring panels' and the alerting pipeline's StatefulSet panel's
    # (kube-state-metrics up among them).
    cluster_only = [
        (w, q) for w, q in checks if any(metric in q for metric in (*CLUSTER_METRICS, CLUSTER_SCRAPED))
    ]
    assert sorted(q for _, q in cluster_only) == sorted(
        [
            q
            for service in registry.available()
            for q, _ in (
                *replica_queries(service),
                *autoscaler_condition_queries(service),
                *scheduled_run_queries(live_evaluation(service)),
                *scheduled_run_queries(batch_scoring(service)),
            )
        ]
        + [q for q, _ in statefulset_queries(PIPELINE_STATEFULSETS)]
    )
    checks = [check for check in checks if check not in cluster_only]
    deadline = time.monotonic() + 45
    empty = checks
    while empty and time.monotonic() < deadline:
        empty = [(where, expr) for where, expr in empty if not query(prometheus, expr)]
        if empty:
            time.sleep(1)
    assert not empty, "queries without data:\n" + "\n".join(f"{w}: {e}" for w, e in empty)
    # The dashboards' alert annotations: no service alert fires here, so only that Prometheus takes
    # them (promtool cases hold what each selects).
    for path in sorted((MONITORING / "dashboards").glob("*.json")):
        for annotation in json.loads(path.read_text())["annotations"]["list"]:
            query(prometheus, annotation["expr"])

    rules = http_client.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {g["name"] for g in rules}
    kinds = ("recording", "alerts")
    assert names == {f"{s}.{kind}" for s in registry.available() for kind in kinds} | {f"{PLATFORM}.alerts"}
    for group in rules:
        for rule in group["rules"]:
            assert rule["health"] == "ok", f"{group['name']} {rule['name']}: {rule.get('lastError')}"
            assert not rule.get("lastError"), rule
    targets = http_client.get(f"{prometheus.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    up = [t["labels"] for t in targets if t["health"] == "up"]
    assert {t["service"] for t in up if "service" in t} == set(registry.available())
    assert {t["job"] for t in up if "service" not in t} == {PROMETHEUS_JOB, ALERTMANAGER_JOB}


def test_healthy_services_raise_no_availability_or_readiness_alert(
    prometheus: Server, live_services: dict[str, Server]
) -> None:
    alerts = http_client.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    names = {a["labels"]["alertname"] for a in alerts}
    assert not names & {"ServiceAbsent", "ServiceTargetDown", "ModelNotReady", "AvailabilityBudgetBurnFast"}
    # the recorded readiness of every service is 1
    for service in live_services:
        assert query(prometheus, f"{service}_model_ready == 1"), service


def adapter_query(template: str, *, series: str, label_matchers: str, group_by: str) -> str:
    """A metricsQuery as prometheus-adapter expands it (Go template, ``<<`` ``>>`` delimiters)."""
    expr = (
        template.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", label_matchers)
        .replace("<<.GroupBy>>", group_by)
    )
    assert "<<" not in expr, f"unexpanded template field in {expr}"
    return expr


def server_port(server: Server) -> str:
    return server.url.rsplit(":", 1)[1]


def test_the_autoscaler_metric_reads_each_pod(
    prometheus: Server,
    live_services: dict[str, Server],
    keyed_services: dict[str, KeyedService],
) -> None:
    """prometheus-adapter's rule (components/autoscale-on-concurrency), run as an HPA asks for its pods."""
    drive_traffic(live_services, rounds=2)
    [rule] = adapter_config()["rules"]
    response = http_client.get(
        f"{prometheus.url}/api/v1/series", params={"match[]": rule["seriesQuery"]}, timeout=10
    )
    discovered = response.json()["data"]
    assert {s["__name__"] for s in discovered} == {CONCURRENCY}
    for service, server in live_services.items():
        # The pod the traffic went to; its keyed sibling is discovered too, and answered nothing.
        pod = f"{service}-{server_port(server)}"
        assert {s["pod"] for s in discovered if s["service"] == service} == {
            pod,
            f"{service}-{server_port(keyed_services[service].server)}",
        }
        [namespace] = {s["namespace"] for s in discovered if s["service"] == service}
        expr = adapter_query(
            rule["metricsQuery"],
            series=CONCURRENCY,
            label_matchers=f'namespace="{namespace}",pod=~"{pod}"',
            group_by="pod",
        )
        deadline = time.monotonic() + 30
        while True:
            [sample] = query(prometheus, expr)
            concurrency = float(sample["value"][1])
            if concurrency > 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert sample["metric"] == {"pod": pod}
        # It answered predictions in the last minute, each well under a second.
        assert 0 < concurrency < 1, (service, concurrency)


def test_the_key_expiry_alert_names_no_client_with_a_month_left(
    prometheus: Server, keyed_services: dict[str, KeyedService]
) -> None:
    """The alert's expression against the live pods: a month left is quiet; the threshold is the rule's."""
    days_left = {}
    for service in keyed_services:
        [rule] = [a for a in alerts(service) if a.name == "ApiKeyExpiresSoon"]
        assert query(prometheus, rule.expr) == [], service
        left = f"min by (client) ({service}_api_key_expiry_timestamp_seconds) - time()"
        deadline = time.monotonic() + 30  # scraped every second once the pods are up
        while not query(prometheus, left) and time.monotonic() < deadline:
            time.sleep(1)
        [sample] = query(prometheus, left)
        assert sample["metric"] == {"client": EXPIRING}  # the key that never expires is left out
        days_left[service] = float(sample["value"][1]) / 86400
    assert all(30 <= days <= 31 for days in days_left.values()), days_left


def test_observed_figures_are_read_from_prometheus_and_priced(
    prometheus: Server,
    live_services: dict[str, Server],
    keyed_services: dict[str, KeyedService],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """python -m servekit.bench.observed over the pods' last minutes, then k8s/cost.py --load-observed."""
    # Twice, scraped between, so the window holds rounds of every kind of request.
    for _ in range(2):
        drive_keyed_traffic(keyed_services)
        drive_traffic(live_services, rounds=1)
        time.sleep(3)
    output = tmp_path / "observed.json"
    assert observed.main(["--prometheus", prometheus.url, "--window", "10m", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert set(report["services"]) == set(registry.available())
    for name, kinds in report["services"].items():
        figures = kinds[observed.OBSERVED]
        # Over the minute or so the services were scraped, not the 10 minutes asked for.
        assert 5 < figures["seconds_observed"] < 300
        # The report's rate is its own two counts divided, to the third decimal.
        assert figures["predictions_per_second"] == pytest.approx(
            figures["predictions"] / figures["seconds_observed"], abs=0.0005
        )
        assert figures["predictions_per_second"] > 0.2
        assert 0 < figures["cores"] < 2
        # The rate every 3 s (10 minutes over 240 points at most) while the service was scraped.
        profile = figures["rate_profile"]
        assert len(profile) >= 2
        assert [at for at, _ in profile] == sorted(at for at, _ in profile)
        assert max(rate for _, rate in profile) > 0
        assert 0 < figures["cpu_ms_per_prediction"] < 1000
        # Two ready pods a service (the live one and the keyed one), for as long as Prometheus ran.
        assert 1.5 <= figures["replicas"] <= 2.0
        assert figures["operational_log_bytes_per_prediction"] > 0  # the 422s' access lines, at least
        assert 0 < figures["captured_share"] < 1  # the keyed pods capture; the live ones do not
        # Only the keyed pod captures. Its two counters are scraped together from before its
        # first captured line, so the window's ratio is what they grew by while scraped.
        n, keyed = MetricNames(name), keyed_services[name].server
        line_bytes = scraped_growth(prometheus, keyed, n.log_bytes_total, logger=CAPTURE_LOGGER)
        lines = scraped_growth(prometheus, keyed, n.captured_instances_total)
        assert figures["capture_bytes_per_prediction"] == pytest.approx(line_bytes / lines, rel=0.01)
    capsys.readouterr()
    cost = load_k8s_cost()
    assert cost.main(["--overlay", "gke", "--cpu", str(output), "--load-observed"]) == 0
    out = capsys.readouterr().out
    for name in registry.available():
        assert f"{name} {observed.OBSERVED}: " in out
        assert f"{name} writes " in out
    assert "(observed): " in out
    assert "as the HPAs follow the observed load (" in out
    assert "at the observed load with the log lines: $" in out
