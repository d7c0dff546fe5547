"""The clients: one refused at its share of a replica, requests without a valid API key, replicas
that cannot reload the keys, keys about to expire."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.common import NAMESPACE_LABEL, kubectl, number, objectives, regex
from servekit.metrics.names import PREDICTION_ENDPOINTS, PROBE_ENDPOINTS, MetricNames


def unauthenticated_share(n: MetricNames) -> str:
    """The share of a service's requests refused with 401 over 15 minutes, probes left out: what
    RequestsUnauthenticated holds to its threshold, and the service dashboard plots."""
    return (
        f'sum(rate({n.requests_total}{{status="401"}}[15m]))\n/\n'
        f'sum(rate({n.requests_total}{{endpoint!~"{regex(PROBE_ENDPOINTS)}"}}[15m]))'
    )


#: The alert on one client's prediction requests refused at its share of a replica (429).
CLIENT_REFUSED_AT_ITS_SHARE = "ClientRefusedAtItsShare"


def client_predictions(n: MetricNames, function: str, status: str = "") -> str:
    """Per client, its prediction requests over 15 minutes (``rate`` or ``increase``), of ``status``
    only if given. Only a request with a valid key has a client, and only such a request can meet
    its share of a replica, so ``<svc>_client_requests_total`` counts every 429. By ``namespace``
    too (the model-servers scrape job sets it): the alert's kubectl hint names it."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"' + (f',status="{status}"' if status else "")
    return f"sum by (namespace, client) ({function}({n.client_requests_total}{{{predict}}}[15m]))"


def client_alerts(service: str) -> list[Alert]:
    """ClientRefusedAtItsShare, RequestsUnauthenticated, ApiKeysReloadFailing and ApiKeyExpiresSoon."""
    n, o = MetricNames(service), objectives(service)
    s = service
    client = "{{ $labels.client }}"
    return [
        Alert(
            CLIENT_REFUSED_AT_ITS_SHARE,
            f"{client_predictions(n, 'rate', '429')}\n/\n{client_predictions(n, 'rate')}\n"
            f"> {number(o.client_refused_ratio)}\nand\n"
            f"{client_predictions(n, 'increase', '429')} >= {o.client_refused_min}",
            "warning",
            f"{s} refuses {client}'s prediction requests at its share of a replica (429)",
            f"For 15 minutes more than {o.client_refused_ratio:.0%} of client {client}'s prediction "
            f"requests to {s} ({{{{ $value | humanizePercentage }}}} over the last 15 minutes) were "
            f"refused with 429 too_many_requests: it had {s.upper()}_MAX_CONCURRENT_REQUESTS_PER_CLIENT "
            "requests in flight on a replica (unset: three quarters of "
            f"{s.upper()}_MAX_CONCURRENT_REQUESTS). "
            "The share is checked before the replica's own limit, and a 429 is neither a 5xx of the "
            "availability SLO nor shed, so no other alert sees it: a client with the replicas to itself "
            "(the service's one caller) is refused 429, not 503, when they are overloaded (the "
            "autoscaler at its maximum, or the model slower: in flight = rate x latency). The service "
            "dashboard's Requests by client and status shows who is refused and who is served. The "
            f"service's only or main caller: the replicas are too small for it; raise the "
            f"HorizontalPodAutoscaler's maxReplicas ({kubectl(f'get hpa {s}', NAMESPACE_LABEL)}) or "
            f"{s.upper()}_MAX_CONCURRENT_REQUESTS_PER_CLIENT. One client among others that are served: "
            "a runaway loop in its code, for the client's owner.",
            "15m",
        ),
        Alert(
            "RequestsUnauthenticated",
            f"{unauthenticated_share(n)}\n> {number(o.unauthenticated_ratio)}\nand\n"
            f'sum(increase({n.requests_total}{{status="401"}}[15m])) >= {o.unauthenticated_min}',
            "warning",
            f"{s} refuses many requests for want of a valid API key",
            f"For 15 minutes more than {o.unauthenticated_ratio:.0%} of the requests to {s} have been "
            "refused with 401: a client whose key was revoked or not yet handed out, a key sent to the "
            "wrong service, or someone trying the API without one. The access log's lines with "
            'error.code="unauthenticated" name the header, the problem, the address and the user agent.',
            "15m",
        ),
        Alert(
            "ApiKeysReloadFailing",
            f"{n.api_keys_reload_failing} == 1",
            # Critical: the pod keeps the keys it read last (the right call for its clients), so a
            # key revoked in the bad file, a leaked one say, still works until someone fixes it;
            # and a pod started on that file refuses to, so new replicas crash-loop meanwhile.
            "critical",
            f"{s} at {{{{ $labels.instance }}}} cannot read its API keys file: keys revoked in it still work",
            f"For 5 minutes {s} at {{{{ $labels.instance }}}} has been unable to read its keys file "
            f"({s.upper()}_API_KEYS_FILE, mounted from the Secret {s}-api-keys) or has found a bad "
            "line in it, so it keeps the keys it read last: a key taken out of the file since, "
            "revoked or leaked, is still answered, and a pod started on the same file exits at once "
            "(new replicas crash-loop). The pod log's 'API keys not reloaded, the keys read last stay "
            "in force' names the file and the line; fix the Secret (mlp api-keys <file> checks it).",
            "5m",
            opens_on=(POD,),
        ),
        Alert(
            "ApiKeyExpiresSoon",
            f"min by (client) ({n.api_key_expiry_timestamp_seconds})\n"
            f"< time() + {o.api_key_expiry_warning_days} * 86400",
            "warning",
            f"{client}'s API keys for {s} run out within {o.api_key_expiry_warning_days} days",
            f"{client}'s last API key for {s} expires at {{{{ $value | humanizeTimestamp }}}} "
            f"(if that is past, it is refused already). From then on every request of {client} "
            "gets 401. Give the client a new key of the same scope (mlp api-key <client> --append, with "
            "--read-only for a key mlp api-keys lists as scope=read, as on-call's) and roll the "
            "Secret out; remove the old line once the client has switched.",
            "1h",
        ),
    ]
