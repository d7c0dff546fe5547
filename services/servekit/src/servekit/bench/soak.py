"""``python -m servekit.bench.soak``: a replica's memory over a long run of everything a client sends.

A replica that keeps a little of each request is killed by the kubelet for its memory hours after
a rollout, far from the change that did it, and every answer in flight with it. The usual loads do
not show it: they are too short and too uniform. This soak sends one real ``mlp serve`` a mix of
every kind of request for minutes — single and batch predictions, explained or not, the Open
Inference Protocol, gzip bodies, the errors clients make (extra fields, malformed JSON, a batch
over its limit, an unknown path, no API key or a revoked one), scrapes of ``/metrics`` and
``/model`` — each with its own request id, with the shadow, the canary, the capture and API keys
on, and reads the process's resident memory every second.

After a warm-up (allocator arenas, caches, the first of every code path), memory that keeps
growing is the figure: fitted per 100,000 requests, and as the days this replica, answering as
fast as it did here, would take to reach the memory limit of the base manifests.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from servekit import http_client, registry
from servekit.auth.key_lines import key_line, new_key
from servekit.bench import load, reports
from servekit.bench.memory import MemorySampler
from servekit.bench.servers import champions, checked_services, dropped_settings, serving, wait_for_variants
from servekit.cli.common import documented_parser
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.local import Server
from servekit.settings import load_settings
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, valid_requests
from servekit.training.splitting import split

#: The model servers' memory limit in ``k8s/base/services/model-server.yaml``: the line past
#: which the kubelet kills a replica.
MEMORY_LIMIT_BYTES = 1536 * 2**20
#: A replica that would reach its limit sooner than this, answering as fast as it did in the soak,
#: leaks: most replicas are replaced within a week (a release, a node upgrade), so a slower climb
#: never reaches the limit, while a kilobyte kept per request reaches it in about an hour.
LEAK_HORIZON_DAYS = 7.0
#: Samples a run needs for two trends of three points each.
MIN_SAMPLES = 6
#: Measured seconds (after the warm-up) a run needs for a verdict. It is taken on the second half's
#: slope, fitted to ``Trend.BLOCKS`` means of consecutive samples; resident memory moves in steps
#: that last seconds, so a block must span a few samples (2 s or more: 12 blocks, a 25 s half, from
#: the first sample to the last). Shorter, one allocator step is a slope: a 10 s run read "limit
#: reached in 1.2 days: LEAKS" on a replica that holds flat for hours. Its figures are still
#: reported; its verdict is "too short". ``--seconds 60`` gives one.
MIN_VERDICT_SECONDS = 50.0
#: The warm-up when none is given: a fifth of the measured time, at most two minutes (allocator
#: arenas, caches and the first of every code path settle within it).
WARMUP_SHARE, MAX_WARMUP_SECONDS = 0.2, 120.0
BATCH_ROWS = 64
JSON = {"Content-Type": "application/json"}


#: A single prediction's number (and a batch's first instance's) changes at every send: the n-th
#: send multiplies it by 1 + (n mod JITTER_SENDS + 1) * JITTER_STEP, at most 1.0001. No two sends of
#: a record in a soak carry the same body, so a cache keyed by the input meets new keys as it does
#: in production, and each value stays one the request schema accepts (checked at both ends).
JITTER_STEP, JITTER_SENDS = 1e-10, 1_000_000
_SLOT = "__soak_varied__"


def jittered(value: float, serial: int) -> float:
    """``value`` as the ``serial``-th request sends it."""
    return value * (1 + (serial % JITTER_SENDS + 1) * JITTER_STEP)


@dataclass(frozen=True)
class Body:
    """A request body: fixed (``before`` alone), or with ``value`` between ``before`` and ``after``,
    varied at each send (:func:`jittered`)."""

    before: bytes
    value: float | None = None
    after: bytes = b""

    def at(self, serial: int) -> bytes:
        if self.value is None:
            return self.before
        return self.before + repr(jittered(self.value, serial)).encode() + self.after


def varied_field(spec: ServiceSpec, record: dict[str, Any]) -> str | None:
    """The first non-zero float of ``record`` the request schema accepts at both ends of its jitter;
    None when there is none (NLPInsight's text, say): its bodies are sent as they are."""
    for name, value in record.items():
        if isinstance(value, float) and value and math.isfinite(value):
            ends = [{**record, name: jittered(value, serial)} for serial in (0, JITTER_SENDS - 1)]
            if len(spec.accepted_requests(ends)[0]) == len(ends):
                return name
    return None


def _varied(spec: ServiceSpec, records: Sequence[dict[str, Any]], wrap: Any = None) -> Body:
    """``records[0]`` (with the others in ``wrap``'s batch) as a body whose one number varies."""
    first = dict(records[0])
    name = varied_field(spec, first)
    value = first.get(name) if name else None
    if name:
        first[name] = _SLOT
    body = _json(wrap([first, *records[1:]]) if wrap else first)
    if value is None:
        return Body(body)
    before, after = body.split(_json(_SLOT))
    return Body(before, value, after)


def _fixed(bodies: Sequence[bytes]) -> list[Body]:
    return [Body(body) for body in bodies]


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix, the status it must get, and how often it comes."""

    label: str
    method: str
    path: str
    bodies: Sequence[Body]
    status: int
    weight: int
    headers: tuple[tuple[str, str], ...] = tuple(JSON.items())


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def mix(
    spec: ServiceSpec, records: Sequence[dict[str, Any]], max_batch_size: int, *, key: str = ""
) -> list[Kind]:
    """Every kind of request a replica answers, from ``records`` (valid JSON request bodies).

    With ``key`` (the replica asks for API keys), every request but the scrape carries it, and
    two more kinds carry none or a revoked one. Single predictions and plain or explained batches
    vary one number at each send (:class:`Body`); the other bodies are sent as they are.
    """
    batches = load.batches(records, BATCH_ROWS)
    codec = OpenInferenceCodec.of_service(spec)
    over_limit = [dict(records[i % len(records)]) for i in range(max_batch_size + 1)]
    gzipped = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
    singles = [_varied(spec, [r]) for r in records]
    batched = [_varied(spec, b, lambda instances: {"instances": instances}) for b in batches]
    kinds = [
        Kind("predict", "POST", "/predict", singles, 200, 8),
        Kind("predict, explained", "POST", "/predict?explain=true", singles, 200, 4),
        Kind("batch", "POST", "/predict/batch", batched, 200, 2),
        Kind("batch, explained", "POST", "/predict/batch?explain=true", batched, 200, 1),
        Kind(
            "batch, gzip",
            "POST",
            "/predict/batch",
            _fixed([gzip.compress(_json({"instances": b}), 1) for b in batches]),
            200,
            1,
            gzipped,
        ),
        Kind(
            "Open Inference infer",
            "POST",
            f"/v2/models/{spec.name}/infer",
            _fixed([_json(codec.request_for(b)) for b in batches]),
            200,
            1,
        ),
        Kind(
            "extra field",
            "POST",
            "/predict",
            _fixed([_json({**r, "unexpected": 1}) for r in records]),
            422,
            1,
        ),
        Kind("malformed JSON", "POST", "/predict", _fixed([_json(r)[:-1] for r in records]), 422, 1),
        Kind(
            "batch over the limit",
            "POST",
            "/predict/batch",
            _fixed([_json({"instances": over_limit})]),
            413,
            1,
        ),
        Kind("unknown path", "POST", "/predikt", _fixed([_json(r) for r in records[:8]]), 404, 1),
        Kind("model", "GET", "/model", [Body(b"")], 200, 1, ()),
    ]
    if key:
        credentials = (("Authorization", f"Bearer {key}"),)
        kinds = [dataclasses.replace(kind, headers=kind.headers + credentials) for kind in kinds]
        plain = _fixed([_json(r) for r in records])
        revoked = (*JSON.items(), ("Authorization", f"Bearer {new_key()}"))
        kinds += [
            Kind("no API key", "POST", "/predict", plain, 401, 1),
            Kind("revoked key", "POST", "/predict", plain, 401, 1, revoked),
        ]
    return [*kinds, Kind("metrics scrape", "GET", "/metrics", [Body(b"")], 200, 1, ())]


@dataclass(frozen=True)
class Template:
    """One request of the soak's list, less its id, its length and its varied number."""

    head: bytes
    body: Body

    def made(self, run: str, serial: int) -> bytes:
        """The bytes of the ``serial``-th request of soak ``run``: its own id, its own body."""
        payload = self.body.at(serial)
        return b"%sX-Request-ID: soak-%s-%d\r\nContent-Length: %d\r\n\r\n%s" % (
            self.head,
            run.encode(),
            serial,
            len(payload),
            payload,
        )


class Fresh:
    """The soak's list of requests (:class:`load.Requests`), each made as it is sent.

    A load replays its list (request ``i % len``), so ids and bodies stored in it would repeat
    every pass, seconds apart, and the warm-up would have sent every one: a replica keeping
    something per request id would hold a fixed amount and look flat. Here each read of an item
    makes it anew with the next serial: the id ``soak-<run>-<serial>`` is never sent twice, nor is
    the number of a varied body. Reading costs a few concatenations, no JSON.
    """

    def __init__(self, templates: Sequence[Template], run: str | None = None) -> None:
        self.templates = list(templates)
        self.run = run or uuid.uuid4().hex[:8]
        self._serials = itertools.count()

    def __len__(self) -> int:
        return len(self.templates)

    def __getitem__(self, i: int, /) -> bytes:
        return self.templates[i].made(self.run, next(self._serials))

    def __iter__(self) -> Iterator[bytes]:
        """One pass of the list, each request made anew."""
        return (self[i] for i in range(len(self)))


def interleave(kinds: Sequence[Kind], host: str, port: int, cycles: int) -> tuple[Fresh, list[int]]:
    """``cycles`` rounds of the mix, each kind ``weight`` times a round; every request, each time it
    is sent, with its own id (:class:`Fresh`)."""
    templates: list[Template] = []
    statuses: list[int] = []
    for cycle in range(cycles):
        for kind in kinds:
            lines = [f"{kind.method} {kind.path} HTTP/1.1", f"Host: {host}:{port}"]
            lines += [f"{name}: {value}" for name, value in kind.headers]
            head = ("\r\n".join(lines) + "\r\n").encode()
            for k in range(kind.weight):
                templates.append(Template(head, kind.bodies[(cycle * kind.weight + k) % len(kind.bodies)]))
                statuses.append(kind.status)
    return Fresh(templates), statuses


def check_statuses(url: str, kinds: Sequence[Kind]) -> None:
    """Each kind once, before the soak: a wrong expectation names its kind, not a count of errors."""
    with http_client.client(base_url=url, timeout=30) as client:
        for kind in kinds:
            answer = client.request(
                kind.method, kind.path, content=kind.bodies[0].at(0), headers=dict(kind.headers)
            )
            if answer.status_code != kind.status:
                raise AssertionError(
                    f"{kind.label}: {kind.method} {kind.path} got {answer.status_code}, "
                    f"not {kind.status}: {answer.text[:300]}"
                )


@dataclass(frozen=True)
class Trend:
    """A least-squares slope and its standard error, in bytes a second."""

    slope: float
    error: float

    #: The slope is fitted to this many means of consecutive samples: resident memory moves in
    #: steps that last seconds, so neighbouring samples are not independent and an error computed
    #: from each of them would claim more certainty than the run has.
    BLOCKS: ClassVar[int] = 12

    @classmethod
    def fit(cls, times: np.ndarray, sizes: np.ndarray) -> Trend:
        blocks = min(cls.BLOCKS, len(times))
        t = np.array([part.mean() for part in np.array_split(times, blocks)])
        y = np.array([part.mean() for part in np.array_split(sizes, blocks)])
        slope, intercept = np.polyfit(t, y, 1)
        residuals = y - (slope * t + intercept)
        spread = float(((t - t.mean()) ** 2).sum())
        error = (
            float(np.sqrt(residuals @ residuals / (blocks - 2) / spread)) if blocks > 2 and spread else 0.0
        )
        return cls(float(slope), error)

    @property
    def lower_bound(self) -> float:
        """The slope's lower 95 % bound: growth at least this fast, or it is not shown."""
        return self.slope - 2 * self.error


@dataclass(frozen=True)
class Growth:
    """Resident memory over the measured part of a run (after its warm-up).

    Memory that grows for a while and stops is the allocator finding the high-water mark of the
    transient allocations (a batch's arrays, several at once now and then), which keeps rising,
    ever more slowly, with the time observed. A leak keeps its pace. So the verdict is taken on
    the second half of the run alone: how long the replica, answering as fast as it did here,
    would take to reach its memory limit at the slowest growth that half shows with 95 % confidence.
    """

    seconds: float
    requests: int
    start_bytes: int
    end_bytes: int
    peak_bytes: int
    #: Over the whole measured run.
    trend: Trend
    #: Over its second half: what the verdict is taken on.
    late: Trend

    @classmethod
    def of(cls, samples: Sequence[tuple[float, int]], requests: int) -> Growth:
        if len(samples) < MIN_SAMPLES:
            raise ValueError(
                f"{len(samples)} memory samples fit no trend (at least {MIN_SAMPLES}); soak for longer"
            )
        times = np.array([t for t, _ in samples], dtype=float)
        sizes = np.array([b for _, b in samples], dtype=float)
        half = len(samples) // 2
        return cls(
            seconds=float(times[-1] - times[0]),
            requests=requests,
            start_bytes=samples[0][1],
            end_bytes=samples[-1][1],
            peak_bytes=max(b for _, b in samples),
            trend=Trend.fit(times, sizes),
            late=Trend.fit(times[half:], sizes[half:]),
        )

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def per_100k_requests(self, bytes_per_second: float) -> float:
        rate = self.requests_per_second
        return bytes_per_second / rate * 100_000 if rate else 0.0

    @property
    def days_to_limit(self) -> float:
        """At this run's request rate and its second half's slowest likely growth; inf when flat."""
        if self.late.lower_bound <= 0:
            return math.inf
        return (MEMORY_LIMIT_BYTES - self.peak_bytes) / self.late.lower_bound / 86_400

    @property
    def too_short(self) -> bool:
        """Too few seconds measured for a verdict (:data:`MIN_VERDICT_SECONDS`)."""
        return self.seconds < MIN_VERDICT_SECONDS

    @property
    def leaks(self) -> bool | None:
        """True or False; None where the run is :attr:`too_short` to tell."""
        if self.too_short:
            return None
        return self.days_to_limit < LEAK_HORIZON_DAYS

    @property
    def verdict(self) -> str:
        if self.leaks is None:
            return (
                f"too short for a verdict ({self.seconds:.0f} s measured, at least {MIN_VERDICT_SECONDS:g})"
            )
        return "LEAKS" if self.leaks else "no leak"

    def as_dict(self) -> dict[str, Any]:
        def kib(bytes_per_second: float) -> float:
            return round(self.per_100k_requests(bytes_per_second) / 1024, 1)

        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "start_mib": round(self.start_bytes / 2**20, 1),
            "end_mib": round(self.end_bytes / 2**20, 1),
            "peak_mib": round(self.peak_bytes / 2**20, 1),
            "peak_share_of_limit": round(self.peak_bytes / MEMORY_LIMIT_BYTES, 3),
            "kib_per_100k_requests": kib(self.trend.slope),
            "second_half_kib_per_100k_requests": kib(self.late.slope),
            "second_half_kib_per_100k_requests_error": kib(self.late.error),
            "days_to_limit": None if math.isinf(self.days_to_limit) else round(self.days_to_limit, 1),
            "leaks": self.leaks,
            "verdict": self.verdict,
        }


def soak(
    server: Server,
    kinds: Sequence[Kind],
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    interval: float = 1.0,
) -> dict[str, Any]:
    """The mix on ``server`` for ``warmup + seconds``; its memory after the warm-up, and the load."""
    check_statuses(server.url, kinds)
    requests, statuses = interleave(kinds, "127.0.0.1", server.port, cycles=64)
    with MemorySampler(server.process.pid, interval) as sampler:
        outcome = load.run(
            "127.0.0.1",
            server.port,
            requests,
            concurrency=concurrency,
            seconds=seconds,
            warmup=warmup,
            statuses=statuses,
        )
    measured = [(t, b) for t, b in sampler.samples if t >= warmup]
    growth = Growth.of(measured, outcome.requests)
    return {
        "mix": {kind.label: {"weight": kind.weight, "status": kind.status} for kind in kinds},
        "load": outcome.as_dict(),
        "memory": growth.as_dict(),
        "warmup_start_mib": round(sampler.samples[0][1] / 2**20, 1),
        "samples": [(round(t, 2), b) for t, b in sampler.samples],
    }


def print_soak(name: str, result: dict[str, Any]) -> None:
    memory, run = result["memory"], result["load"]
    print(f"\n{name}: {run['requests']:,} requests in {run['seconds']} s after the warm-up")
    print(f"  {run['requests_per_second']:,.0f} requests/s, {run['errors']} with an unexpected status")
    print(
        f"  resident: {result['warmup_start_mib']} MiB before the warm-up,"
        f" {memory['start_mib']} MiB after it,"
        f" {memory['end_mib']} MiB at the end, peak {memory['peak_mib']} MiB"
        f" ({memory['peak_share_of_limit']:.0%} of the {MEMORY_LIMIT_BYTES // 2**20} MiB limit)"
    )
    days = memory["days_to_limit"]
    reach = "never, at the slowest growth it shows" if days is None else f"in {days} days"
    print(
        f"  growth per 100k requests: {memory['kib_per_100k_requests']} KiB over the run,"
        f" {memory['second_half_kib_per_100k_requests']}"
        f" ± {2 * memory['second_half_kib_per_100k_requests_error']:.1f} KiB over its second half"
    )
    if memory["leaks"] is None:
        # A few seconds' growth is an allocator step, not a rate: no days to the limit from it.
        print(f"  {memory['verdict']}: run --seconds {MIN_VERDICT_SECONDS + 10:g} or more for one")
        return
    horizon = f"horizon {LEAK_HORIZON_DAYS:g} days"
    print(f"  at this rate the limit is reached {reach}: {memory['verdict']} ({horizon})")


def parser() -> argparse.ArgumentParser:
    p = documented_parser(
        "python -m servekit.bench.soak",
        __doc__,
        epilog=(
            "exit status: 0 when every service answered as expected and none leaks, or the run was too "
            f"short for a verdict (under {MIN_VERDICT_SECONDS:g} measured seconds: its figures are "
            "reported, no verdict is taken); 1 when a service leaks or answered a request with an "
            "unexpected status; 2 on a usage error"
        ),
    )
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--seconds", type=float, default=600.0, help="measured seconds per service")
    p.add_argument(
        "--warmup",
        type=float,
        help=(
            f"seconds before the measurement (default: a fifth of --seconds, at most {MAX_WARMUP_SECONDS:g})"
        ),
    )
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--plain",
        dest="everything_on",
        action="store_false",
        help="serve without the shadow, the canary, the capture and the API keys that are on by default",
    )
    p.add_argument(
        "--data",
        type=data_file,
        action="append",
        default=[],
        metavar="SERVICE=PATH",
        help="train SERVICE on this file (as mlp train --data) rather than its synthetic data",
    )
    p.add_argument("--output", type=Path, default=Path("reports/soak.json"))
    return p


#: The second models ``everything_on`` loads beside the champion.
VARIANTS = ("shadow", "canary")


def everything_on(run_id: str, keys_file: Path) -> dict[str, str]:
    """The optional paths a production replica may run, all on, so a leak in any of them shows.

    The shadow and the canary are the champion's own run (``runs:/``), as in ``make bench``; the
    API keys are ``keys_file``'s (``soak_keys``). Its one client sends at the soak's concurrency,
    which NLPInsight's default share (6 of 8 places) would refuse in part, so the share limit is
    off; the count of each client's requests in flight, where a leak would be, still runs.
    """
    same_run = f"runs:/{run_id}/model"
    return {
        "SHADOW_MODEL_URI": same_run,
        "CANARY_MODEL_URI": same_run,
        "CANARY_TRAFFIC_PERCENT": "10",
        "CAPTURE_PERCENT": "10",
        "API_KEYS_FILE": str(keys_file),
        "MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0",
    }


def soak_keys(keys_file: Path) -> str:
    """A keys file of one client, ``soak``, and its key."""
    key = new_key()
    keys_file.write_text(key_line("soak", key) + "\n")
    return key


def soak_service(
    spec: ServiceSpec, mlflow: Server, work: Path, run_id: str, args: argparse.Namespace
) -> dict[str, Any]:
    data = split(spec, spec.recipe.generate(4000, seed=11), seed=11)
    records = valid_requests(spec, request_rows(data, 1000))[:512]
    keys_file = work / f"{spec.name}-soak-keys"
    key = soak_keys(keys_file) if args.everything_on else ""
    kinds = mix(spec, records, max_batch_size=load_settings(spec.name).max_batch_size, key=key)
    settings = everything_on(run_id, keys_file) if args.everything_on else {}
    with serving(spec, mlflow, work, settings=settings) as server:
        keyed = {"Authorization": f"Bearer {key}"} if key else None
        wait_for_variants(server, VARIANTS if args.everything_on else (), headers=keyed)
        result = soak(server, kinds, seconds=args.seconds, warmup=args.warmup, concurrency=args.concurrency)
    return {"settings": settings, **result}


def default_warmup(seconds: float) -> float:
    return min(MAX_WARMUP_SECONDS, seconds * WARMUP_SHARE)


def data_file(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{value!r} is not SERVICE=PATH")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.data = dict(args.data)
    names = checked_services(p, args.services)
    if args.warmup is None:
        args.warmup = default_warmup(args.seconds)
    report: dict[str, Any] = {"settings_not_inherited": dropped_settings(), "services": {}}
    with champions(names, "servekit-soak-", args.data) as (mlflow, work, trained):
        for name in names:
            result = soak_service(registry.get_service(name), mlflow, work, trained[name].run_id, args)
            report["services"][name] = result
            print_soak(name, result)
    print()
    reports.write(args.output, report)
    failed = [
        f"{name}: {r['load']['errors']} unexpected statuses" if r["load"]["errors"] else f"{name}: leaks"
        for name, r in report["services"].items()
        if r["load"]["errors"] or r["memory"]["leaks"]
    ]
    if failed:
        print("\n".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
