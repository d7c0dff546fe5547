"""A runaway client beside a steady one, on one replica with API keys: what the per-client limit
(``<SVC>_MAX_CONCURRENT_REQUESTS_PER_CLIENT``) buys the steady client.

The runaway client is a batch job with no rate limit: explained batches at twice what the replica
answers, each given up after a second. The steady client is an application sending single
predictions at a modest rate. Both run at once, the runaway in a process of its own so that the
two load generators do not share an interpreter; the replica is served twice, with the per-client
limit at its default and with it off, and the steady client's answers are compared.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from servekit import http_client
from servekit.auth.key_lines import key_line, new_key
from servekit.bench import load
from servekit.bench.scaling import scrape
from servekit.bench.servers import serving
from servekit.local import Server
from servekit.metrics.names import MetricNames
from servekit.spec import ServiceSpec

RUNAWAY, STEADY = "runaway", "steady"
#: Single predictions a second from the steady client: a small share of any replica's capacity.
STEADY_RATE = 20.0
#: The runaway's offered load, as a multiple of the replica's capacity for its batches.
RUNAWAY_FACTOR = 2.0
DEADLINE = 1.0
#: The two servings compared: the per-client limit at its default, and switched off.
WITH_LIMIT, WITHOUT_LIMIT = "client limit", "no client limit"
SERVINGS: Mapping[str, Mapping[str, str]] = {
    WITH_LIMIT: {},
    WITHOUT_LIMIT: {"MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0"},
}


#: The share of what it sent the runaway gets answered in time with no client limit, from which the
#: replica was not past its capacity: nothing was short, so the limit had nothing to share out and
#: the comparison says nothing about it. Past capacity at twice it, about half would be.
NOT_OVERLOADED_SHARE = 0.9


def not_past_capacity(result: Mapping[str, Any]) -> str | None:
    """Why the comparison is not meaningful: the runaway alone did not overload the replica (the
    capacity it is offered twice of was measured on another replica, which a host's state may have
    slowed); None where it did."""
    runaway = result[WITHOUT_LIMIT][RUNAWAY]
    if not runaway["sent"] or runaway["answered"] < NOT_OVERLOADED_SHARE * runaway["sent"]:
        return None
    return (
        f"the runaway got {runaway['answered']} of its {runaway['sent']} requests answered in time with no "
        f"client limit ({runaway['goodput_per_second']:g}/s of {runaway['offered_per_second']:g}/s offered): "
        "the replica was not past its capacity, so the client limit had nothing to protect; run it again"
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def statuses_by_client(url: str, service: str) -> dict[str, dict[str, int]]:
    """The replica's own count of each client's answers by status code (``<svc>_client_requests_total``).

    It counts a request the client gave up on too, once the replica answers it: on a starved host
    the runaway may hang up before its 429 arrives, but the replica has still refused it. The
    replica is still working through the explained batches the runaway hung up on, so the scrape
    waits its turn for as long as those take.
    """
    counted: dict[str, dict[str, int]] = {}
    name = MetricNames(service).client_requests_total
    for sample in scrape(url, timeout=120):
        if sample.name == name:
            by_status = counted.setdefault(sample.labels["client"], {})
            status = sample.labels["status"]
            by_status[status] = by_status.get(status, 0) + int(sample.value)
    return counted


def measure(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    steady_records: Sequence[dict[str, Any]],
    runaway_bodies: Sequence[dict[str, Any]],
    runaway_path: str,
    capacity: float | None,
    seconds: float,
) -> dict[str, Any]:
    """Both clients at once on each serving; the steady client's answers, the runaway's goodput.

    The runaway offers :data:`RUNAWAY_FACTOR` times ``capacity``, the runaway's requests a second
    one replica answers; None measures it on the first serving (the runaway's requests at
    concurrency 4 for ``seconds``), so the runaway overloads the replica however fast this host is.
    """
    keys = {RUNAWAY: new_key(), STEADY: new_key()}
    keys_file = work / f"{spec.name}-fairness-keys"
    keys_file.write_text("".join(key_line(client, key) + "\n" for client, key in keys.items()))
    result: dict[str, Any] = {
        "steady_rate": STEADY_RATE,
        "runaway_path": runaway_path,
        "deadline_seconds": DEADLINE,
    }
    # spawn: a fresh interpreter, not a fork of one holding the MLflow client's threads.
    context = multiprocessing.get_context("spawn")
    for label, settings in SERVINGS.items():
        served = {"API_KEYS_FILE": str(keys_file), **settings}
        with serving(spec, mlflow, work, label=label.replace(" ", "-"), settings=served) as server:
            described = http_client.get(
                f"{server.url}/model", headers=bearer(keys[STEADY]), timeout=10
            ).json()
            admission = described["admission"]
            port = server.port
            runaway = load.post_requests(
                "127.0.0.1", port, runaway_path, runaway_bodies, headers=bearer(keys[RUNAWAY])
            )
            steady = load.post_requests(
                "127.0.0.1", port, "/predict", steady_records, headers=bearer(keys[STEADY])
            )
            if capacity is None:
                saturated = load.run("127.0.0.1", port, runaway, concurrency=4, seconds=seconds)
                if saturated.errors:
                    raise RuntimeError(f"{saturated.errors} requests failed while measuring capacity")
                capacity = saturated.requests_per_second
                result["capacity_per_second"] = round(capacity, 1)
            result["runaway_rate"] = round(capacity * RUNAWAY_FACTOR, 1)
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                pool.submit(int).result()  # the process started before either load does
                # The runaway starts first and stops last: the steady client is measured throughout.
                pending = pool.submit(
                    load.run_open_loop,
                    "127.0.0.1",
                    server.port,
                    runaway,
                    rate=capacity * RUNAWAY_FACTOR,
                    seconds=seconds + 2,
                    deadline=DEADLINE,
                )
                answered = load.run_open_loop(
                    "127.0.0.1",
                    server.port,
                    steady,
                    rate=STEADY_RATE,
                    seconds=seconds,
                    deadline=DEADLINE,
                    warmup=2,
                )
                flooded = pending.result()
            result[label] = {
                "request_limit": admission["limit"],
                "client_limit": admission["client_limit"],
                STEADY: answered.as_dict(),
                RUNAWAY: flooded.as_dict(),
                "replica_counted": statuses_by_client(server.url, spec.name),
            }
    result["not_meaningful"] = not_past_capacity(result)
    return result
