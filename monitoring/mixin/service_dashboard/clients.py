"""Who sends the traffic, and the API keys it is let in with."""

from __future__ import annotations

from mixin.alerts.clients import unauthenticated_share
from mixin.common import objectives
from mixin.grafana import Grid, panel
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_client_panels(g: Grid, service: str) -> None:
    """Requests by client, the time left on each client's keys, requests refused for want of a key,
    and replicas that cannot reload the keys file."""
    n, o = MetricNames(service), objectives(service)
    g.add(
        panel(
            "timeseries",
            "Requests by client and status (per second, 5 m)",
            "Requests answered with an API key, by the client the key is of: who sends the traffic, and "
            "whose requests fail (4xx are the client's; 429 is a client over its share of a replica, "
            "<SVC>_MAX_CONCURRENT_REQUESTS_PER_CLIENT, which the service's only caller meets when the "
            "replicas are too small for it: ClientRefusedAtItsShare). Requests without a valid key are "
            "401s on the endpoint panel; they belong to no client.",
            "reqps",
            [
                (
                    f"sum by (client, status) (rate({n.client_requests_total}{{{INSTANCE}}}[5m]))",
                    "{{client}} {{status}}",
                )
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "stat",
            "Time left on each client's API keys",
            "Until each client's last key expires (clients with a key that never expires are not "
            f"shown). ApiKeyExpiresSoon warns {o.api_key_expiry_warning_days} days before; a key past its "
            "date is refused with 401.",
            "dtdurations",
            [
                (
                    f"min by (client) ({n.api_key_expiry_timestamp_seconds}{{{INSTANCE}}}) - time()",
                    "{{client}}",
                )
            ],
            # Red while ApiKeyExpiresSoon fires (or the key is refused already), orange for as long again.
            base_color="red",
            thresholds=[
                (o.api_key_expiry_warning_days * 86400, "orange"),
                (o.api_key_expiry_warning_days * 2 * 86400, "green"),
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Requests refused for want of a valid API key (share, 15 m)",
            "Requests answered 401 (no key, an unknown, revoked or expired one) over every request but "
            f"the probes, on every pod: the very ratio RequestsUnauthenticated holds to "
            f"{o.unauthenticated_ratio:.0%} (with at least {o.unauthenticated_min} such requests).",
            "percentunit",
            [(unauthenticated_share(n), "refused with 401")],
            thresholds=[(o.unauthenticated_ratio, "orange")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Replicas on the API keys read last (keys file unreadable)",
            f"Replicas whose keys file ({service.upper()}_API_KEYS_FILE) could not be read or holds a bad "
            "line: they answer with the keys they read before, so a key revoked since still works, and a "
            "pod started on that file exits. ApiKeysReloadFailing pages after 5 minutes; the pod log "
            "names the line. No data: the service needs no key.",
            "none",
            [(f"sum({n.api_keys_reload_failing}{{{INSTANCE}}})", "replicas on old keys")],
            thresholds=[(1, "red")],
        ),
        12,
        6,
    )
