"""The dashboard's top rows: the service at a glance, then its requests, their latency and the SLOs."""

from __future__ import annotations

from mixin.common import AVAILABILITY_EVENTS, BURN_THRESHOLDS, QUANTILES, objectives, sel
from mixin.grafana import Grid, panel
from mixin.recorded import (
    ERROR_RATIO,
    EXPLANATION_P95,
    LATENCY_QUANTILE,
    REQUESTS_BY_ENDPOINT,
    REQUESTS_RATE,
    SLOW_RATIO,
    burn_queries,
)
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_headline_panels(g: Grid, service: str) -> None:
    """Ready replicas, the served version, the request rate and the error ratio, side by side."""
    n, o = MetricNames(service), objectives(service)
    ready = f"{n.model_ready}{{{INSTANCE}}}"
    g.add(
        panel(
            "stat",
            "Ready replicas",
            "Model loaded and warmed up (ready), pods Prometheus scrapes (scraped), and pods whose "
            "scrape fails (not scraped: their model_ready goes stale at once, so ready and scraped "
            "both drop by them): a pod it cannot scrape for 2 minutes fires ServiceTargetDown.",
            "none",
            [
                (f"sum({ready})", "ready"),
                (f'sum(up{{service="{service}",{INSTANCE}}})', "scraped"),
                (f'count(up{{service="{service}",{INSTANCE}}} == 0) or vector(0)', "not scraped"),
            ],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Model version",
            "Registry version and training run of the served model.",
            "none",
            [(f"max by (version, run_id) ({n.model_info}{{{INSTANCE}}})", "v{{version}} (run {{run_id}})")],
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Requests per second",
            "All endpoints, 5 m rate.",
            "reqps",
            [(sel(REQUESTS_RATE, service), "rps")],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Error ratio (5 m)",
            f"Availability SLI: the 5xx share of {AVAILABILITY_EVENTS}.",
            "percentunit",
            [(sel(ERROR_RATIO.format(w="5m"), service), "5xx")],
            thresholds=[(1 - o.availability, "red")],
        ),
        6,
        4,
    )


def add_request_panels(g: Grid, service: str) -> None:
    """Requests and their latency by endpoint, the explanations' latency, the latency SLI and the
    burn rate."""
    o = objectives(service)
    g.add(
        panel(
            "timeseries",
            "Requests by endpoint and status",
            "5 m rate per endpoint label (unknown paths are counted as `other`).",
            "reqps",
            [(sel(REQUESTS_BY_ENDPOINT, service), "{{endpoint}} {{status}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Latency by endpoint (p50, p95, p99)",
            "Whole-request latency of the prediction requests each endpoint answered, and of those "
            "whose client gave up waiting (499), 5 m rate. Refusals (4xx: no key, invalid input) are left "
            "out, as a refusal in a fraction of a millisecond would pull the quantiles down, and so are "
            "5xx, which the availability SLI counts.",
            "s",
            [(sel(LATENCY_QUANTILE.format(q=q), service), f"{{{{endpoint}}}} {q}") for q, _ in QUANTILES],
            thresholds=[(o.latency_threshold, "red")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Explanation latency (p95)",
            "SHAP computation per request.",
            "s",
            [(sel(EXPLANATION_P95, service), "p95")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            f"{o.latency_endpoint} requests over {o.latency_threshold * 1000:g} ms",
            f"Latency SLI: the share of the {o.latency_endpoint} requests the model answered, or whose "
            "client gave up waiting (499), that took longer; refusals (4xx) and 5xx are no latency "
            f"events. The SLO allows {1 - o.latency:.0%}.",
            "percentunit",
            [(sel(SLOW_RATIO.format(w=w), service), w) for w in ("5m", "1h")],
            thresholds=[(1 - o.latency, "red")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "SLO burn rate (x budget)",
            "14.4 over 1 h and 5 m or 6 over 6 h and 30 m pages; 3 over 1 d or 1 over 3 d opens a ticket.",
            "short",
            burn_queries(service),
            thresholds=BURN_THRESHOLDS,
        ),
        8,
        8,
    )
