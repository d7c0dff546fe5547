"""The cases of the API-key alerts: a keys file not reloaded, requests without a key, one client
refused at its share, keys about to expire."""

from __future__ import annotations

from mixin.alerts.clients import CLIENT_REFUSED_AT_ITS_SHARE
from mixin.common import objectives
from mixin.rule_tests.cases import NAMESPACE, Case, fires_and_quiet, series_str
from servekit.metrics.names import MetricNames


def key_reload_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ApiKeysReloadFailing: a keys file that stays bad pages, per pod; one fixed within minutes does not."""
    n = MetricNames(service)
    failing = series_str(n.api_keys_reload_failing, target)
    return [
        Case(
            "ApiKeysReloadFailing",
            "fires: a bad keys file for 10 minutes, naming the pod",
            {failing: "0x5 1x20", **ready},
            "15m",
            [{"alertname": "ApiKeysReloadFailing", "service": service, **target}],
        ),
        Case(
            "ApiKeysReloadFailing",
            "quiet: a bad file fixed within 3 minutes",
            {failing: "0x5 1x3 0x20", **ready},
            "15m",
        ),
    ]


def unauthenticated_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """RequestsUnauthenticated: a client's traffic refused; a stray request now and then, among probes."""
    n = MetricNames(service)

    def requests(answered: int, refused: int, probes: int) -> dict[str, str]:
        def counted(endpoint: str, status: str) -> str:
            labels = {**target, "endpoint": endpoint, "method": "POST", "status": status}
            return series_str(n.requests_total, labels)

        return {
            counted("/predict", "200"): f"0+{answered}x40",
            counted("/predict", "401"): f"0+{refused}x40",
            counted("/healthz", "200"): f"0+{probes}x40",
            **ready,
        }

    return fires_and_quiet(
        "RequestsUnauthenticated",
        service,
        "35m",
        ("10 of every 100 prediction requests refused", requests(90, 10, 12)),
        ("1 of every 100 refused", requests(99, 1, 12)),
    )


def client_refused_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ClientRefusedAtItsShare, by client: the service's one caller at ten times what its replica
    answers (90 % of its requests 429, no 5xx, nothing shed: the availability page and PredictionsShed
    stay quiet, a reviewer's case); a client refused a trickle of requests; one client among others
    whose bursts meet its share now and then."""
    n = MetricNames(service)

    def calls(**by_client: tuple[int, int]) -> dict[str, str]:
        """Each client's prediction requests a minute, answered and refused at its share, and the
        service's, which add them up."""
        series = {}
        for status, column in (("200", 0), ("429", 1)):
            request = {**target, "endpoint": "/predict", "method": "POST", "status": status}
            total = sum(counts[column] for counts in by_client.values())
            series[series_str(n.requests_total, request)] = f"0+{total}x40"
            for client, counts in by_client.items():
                # The namespace the model-servers scrape job sets on every pod's series.
                keyed = {
                    "client": client,
                    "key_id": "k1",
                    "endpoint": "/predict",
                    "status": status,
                    "namespace": NAMESPACE,
                }
                series[series_str(n.client_requests_total, {**target, **keyed})] = f"0+{counts[column]}x40"
        return {**series, **ready}

    return [
        Case(
            CLIENT_REFUSED_AT_ITS_SHARE,
            "fires: the one client at 10x a replica's capacity, 90 % of its requests 429, naming it",
            calls(backend=(100, 900)),
            "30m",
            [
                {
                    "alertname": CLIENT_REFUSED_AT_ITS_SHARE,
                    "service": service,
                    "client": "backend",
                    "namespace": NAMESPACE,
                }
            ],
            {"{{ $value | humanizePercentage }}": "90%"},
        ),
        # Half of its requests refused, but 3 a minute: 45 in 15 minutes, under the minimum.
        Case(CLIENT_REFUSED_AT_ITS_SHARE, "quiet: a trickle refused", calls(backend=(3, 3)), "30m"),
        # 2 % of the bursty client's requests refused: its share at work, beside a steady client.
        Case(
            CLIENT_REFUSED_AT_ITS_SHARE,
            "quiet: ordinary traffic, 2 in 100 of one client's requests refused in its bursts",
            calls(backend=(980, 20), reports=(500, 0)),
            "30m",
        ),
    ]


def key_expiry_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ApiKeyExpiresSoon: per client, one whose keys run out in a week, one whose last key lasts a month.

    promtool's clock starts at 0 (1970-01-01), so an expiry is the seconds from the start of the test.
    """
    n, o = MetricNames(service), objectives(service)
    day = 86400

    def expiring(client: str, days: int) -> tuple[str, str]:
        return series_str(
            n.api_key_expiry_timestamp_seconds, {**target, "client": client}
        ), f"{days * day}x90"

    soon, later = o.api_key_expiry_warning_days // 2, o.api_key_expiry_warning_days * 2
    return [
        Case(
            "ApiKeyExpiresSoon",
            f"fires for the client whose last key expires in {soon} days, not the one with {later}",
            dict([expiring("contractor", soon), expiring("risk", later), *ready.items()]),
            "70m",
            [{"alertname": "ApiKeyExpiresSoon", "service": service, "client": "contractor"}],
            {"{{ $value | humanizeTimestamp }}": f"1970-01-{1 + soon:02d} 00:00:00 +0000 UTC"},
        ),
        Case(
            "ApiKeyExpiresSoon",
            "quiet: the expiry is not an hour within the warning yet",
            dict([expiring("contractor", soon), *ready.items()]),
            "50m",
        ),
    ]
