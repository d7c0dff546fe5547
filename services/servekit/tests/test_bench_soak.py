"""The soak's arithmetic and its mix, without a server: growth fitted after the warm-up, ids per request."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from servekit import registry
from servekit.auth.api_keys import ApiKeys
from servekit.bench import load, soak
from servekit.settings import environment_variables
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, train_in_memory, valid_requests

MIB = 2**20


def test_a_steady_climb_is_a_leak_with_its_days_to_the_limit() -> None:
    # 2 MiB a minute while answering 1,000 requests a second: 2 MiB per 60,000 requests.
    samples = [(float(t), 300 * MIB + round(t * 2 * MIB / 60)) for t in range(121)]
    growth = soak.Growth.of(samples, requests=120_000)
    assert growth.trend.slope == pytest.approx(2 * MIB / 60, rel=1e-3)
    assert growth.late.slope == pytest.approx(2 * MIB / 60, rel=1e-3)
    assert growth.late.error == pytest.approx(0, abs=1)
    assert growth.per_100k_requests(growth.trend.slope) == pytest.approx(2 * MIB * 100_000 / 60_000, rel=1e-3)
    # (1536 - 304) MiB of room at 2 MiB a minute.
    assert growth.days_to_limit == pytest.approx(1232 / 2 / 60 / 24, rel=1e-3)
    assert growth.leaks
    figures = growth.as_dict()
    assert (figures["start_mib"], figures["end_mib"], figures["peak_mib"]) == (300.0, 304.0, 304.0)
    assert figures["kib_per_100k_requests"] == pytest.approx(3413.3, abs=0.2)
    assert figures["days_to_limit"] == pytest.approx(0.4, abs=0.05)


def test_growth_that_levels_off_is_not_a_leak() -> None:
    # The allocator's high-water mark: 6 MiB found quickly, then ever more slowly.
    samples = [(float(t), 300 * MIB + round(6 * MIB * (1 - math.exp(-t / 30)))) for t in range(241)]
    growth = soak.Growth.of(samples, requests=240_000)
    assert growth.trend.slope > 0
    assert growth.late.slope < growth.trend.slope / 10
    assert growth.days_to_limit > soak.LEAK_HORIZON_DAYS
    assert not growth.leaks


def test_a_climb_too_slow_to_reach_the_limit_within_the_horizon_is_not_a_leak() -> None:
    room = soak.MEMORY_LIMIT_BYTES - 301 * MIB
    for days, leaks in ((soak.LEAK_HORIZON_DAYS * 3, False), (soak.LEAK_HORIZON_DAYS / 3, True)):
        per_second = room / (days * 86_400)
        samples = [(float(t), 300 * MIB + round(t * per_second)) for t in range(121)]
        assert soak.Growth.of(samples, requests=12_000).leaks is leaks


def test_noise_around_a_flat_line_is_not_a_leak() -> None:
    # A few pages up and down around 300 MiB, as an allocator moves: no trend.
    samples = [(float(t), 300 * MIB + (8192 if t % 2 else -8192)) for t in range(121)]
    growth = soak.Growth.of(samples, requests=120_000)
    assert abs(growth.per_100k_requests(growth.trend.slope)) < 1024
    assert math.isinf(growth.days_to_limit)
    assert not growth.leaks
    assert growth.as_dict()["days_to_limit"] is None
    assert growth.as_dict()["peak_share_of_limit"] == pytest.approx(300 / 1536, abs=1e-3)


def test_the_error_widens_with_the_noise() -> None:
    rng = np.random.default_rng(0)
    quiet = [(float(t), 300 * MIB + round(t * 1024 + rng.normal(0, 1024))) for t in range(121)]
    noisy = [(float(t), 300 * MIB + round(t * 1024 + rng.normal(0, 512 * 1024))) for t in range(121)]
    assert soak.Growth.of(noisy, 1000).late.error > 50 * soak.Growth.of(quiet, 1000).late.error


def test_too_short_a_run_fits_nothing() -> None:
    with pytest.raises(ValueError, match="5 memory samples fit no trend"):
        soak.Growth.of([(float(t), MIB) for t in range(5)], requests=10)


def test_the_mix_gives_every_request_its_own_id_and_kind_its_share() -> None:
    spec = registry.get_service("bankchurn")
    _, data = train_in_memory(spec, rows=600)
    records = valid_requests(spec, request_rows(data, 120))
    kinds = soak.mix(spec, records, max_batch_size=256)
    requests, statuses = soak.interleave(kinds, "127.0.0.1", 8001, cycles=3)
    weights = sum(kind.weight for kind in kinds)
    assert len(requests) == len(statuses) == 3 * weights
    ids = [r.split(b"X-Request-ID: ")[1].split(b"\r\n")[0] for r in requests]
    assert len(set(ids)) == len(ids)
    lines = Counter(r.split(b"\r\n")[0] for r in requests)
    assert lines[b"POST /predict HTTP/1.1"] == 3 * (8 + 1 + 1)  # predictions, extra field, malformed JSON
    assert lines[b"GET /metrics HTTP/1.1"] == 3
    assert Counter(statuses) == {200: 3 * (weights - 4), 422: 6, 413: 3, 404: 3}
    over = next(kind for kind in kinds if kind.status == 413)
    assert over.bodies[0].at(0).count(b'"CreditScore"') == 257


def _mix_of(name: str) -> tuple[ServiceSpec, list[soak.Kind]]:
    spec = registry.get_service(name)
    _, data = train_in_memory(spec, rows=600)
    return spec, soak.mix(spec, valid_requests(spec, request_rows(data, 160)), max_batch_size=256)


async def _answer_all(sent: list[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keeps each request it reads in ``sent`` and answers it 200."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            sent.append(head + await reader.readexactly(length))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def test_over_several_passes_of_its_list_every_request_the_soak_sends_has_a_new_id_and_body() -> None:
    # A load replays the soak's list; ids or bodies stored in it would come again every pass, and a
    # replica keeping something per request id would look flat. Three connections, as the soak's
    # eight, each starting at its own place in the list.
    spec, kinds = _mix_of("bankchurn")
    sent: list[bytes] = []
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        asyncio.start_server(lambda r, w: _answer_all(sent, r, w), "127.0.0.1", 0)
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port = server.sockets[0].getsockname()[1]
        requests, _ = soak.interleave(kinds, "127.0.0.1", port, cycles=1)
        load.run("127.0.0.1", port, requests, concurrency=3, seconds=0.6, warmup=0.2)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert len(sent) > 3 * len(requests)  # more than three passes of the list
    ids = [r.split(b"X-Request-ID: ")[1].split(b"\r\n")[0] for r in sent]
    assert len(set(ids)) == len(ids)
    predictions = [r.split(b"\r\n\r\n", 1)[1] for r in sent if r.startswith(b"POST /predict HTTP")]
    valid = [body for body in predictions if body.endswith(b"}") and b"unexpected" not in body]
    assert len(valid) > 3 * 8
    assert len(set(valid)) == len(valid)  # no two single predictions alike, though the list repeats
    # And every varied body is still one the service accepts.
    accepted, _ = spec.accepted_requests(json.loads(body) for body in valid)
    assert len(accepted) == len(valid)


def test_a_varied_number_stays_within_what_the_schema_accepts_and_text_is_sent_as_it_is() -> None:
    spec, kinds = _mix_of("chicagotaxi")
    predict = next(kind for kind in kinds if kind.label == "predict")
    varied = [body for body in predict.bodies if body.value is not None]
    assert len(varied) == len(predict.bodies)
    body = varied[0]
    ends = [json.loads(body.at(serial)) for serial in (0, soak.JITTER_SENDS - 1, soak.JITTER_SENDS)]
    assert len(spec.accepted_requests(ends)[0]) == 3
    assert ends[0] != ends[1]
    assert ends[2] == ends[0]  # the jitter wraps at JITTER_SENDS, a million sends
    batch = next(kind for kind in kinds if kind.label == "batch")
    assert all(
        json.loads(b.at(7))["instances"][0] != json.loads(b.at(8))["instances"][0] for b in batch.bodies
    )
    _, texts = _mix_of("nlpinsight")
    assert all(body.value is None for kind in texts for body in kind.bodies)


def test_a_data_file_is_named_by_its_service() -> None:
    args = soak.parser().parse_args(["--data", "nlpinsight=/data/tweets.csv", "--plain"])
    assert args.data == [("nlpinsight", Path("/data/tweets.csv"))]
    assert not args.everything_on
    assert soak.parser().parse_args([]).everything_on


def test_a_data_file_without_its_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        soak.parser().parse_args(["--data", "tweets.csv"])
    assert "'tweets.csv' is not SERVICE=PATH" in capsys.readouterr().err


def test_everything_on_runs_the_champion_beside_itself_behind_api_keys(tmp_path: Path) -> None:
    key = soak.soak_keys(tmp_path / "keys")
    settings = soak.everything_on("abc123", tmp_path / "keys")
    assert (
        ApiKeys(Path(settings["API_KEYS_FILE"]), service="bankchurn").authenticate({"x-api-key": key})
        == "soak"
    )
    assert settings["SHADOW_MODEL_URI"] == settings["CANARY_MODEL_URI"] == "runs:/abc123/model"
    assert float(settings["CANARY_TRAFFIC_PERCENT"]) > 0
    assert float(settings["CAPTURE_PERCENT"]) > 0
    # Each one a setting the service reads: a misspelt one would be ignored and soak nothing.
    assert {f"BANKCHURN_{name}" for name in settings} <= environment_variables("bankchurn")


def test_with_a_key_every_request_but_the_scrape_carries_it_and_two_kinds_are_refused_401() -> None:
    spec = registry.get_service("bankchurn")
    _, data = train_in_memory(spec, rows=600)
    records = valid_requests(spec, request_rows(data, 120))
    plain = soak.mix(spec, records, max_batch_size=256)
    keyed = soak.mix(spec, records, max_batch_size=256, key="mlp_soak")
    assert [k.label for k in keyed] == [
        *(k.label for k in plain if k.label != "metrics scrape"),
        "no API key",
        "revoked key",
        "metrics scrape",
    ]
    requests, statuses = soak.interleave(keyed, "127.0.0.1", 8001, cycles=1)
    carrying = [r.split(b"\r\n")[0] for r in requests if b"Authorization: Bearer mlp_soak\r\n" in r]
    assert len(carrying) == len(requests) - 3  # the scrape, no key, a revoked key
    assert Counter(statuses)[401] == 2


def test_a_run_too_short_for_a_verdict_never_reads_as_a_leak(capsys: pytest.CaptureFixture[str]) -> None:
    # 10 s after a 3 s warm-up: one allocator step of 2 MiB mid-run, which a short fit calls a climb.
    samples = [(float(t), 300 * MIB + (2 * MIB if t >= 11 else 0)) for t in range(3, 14)]
    growth = soak.Growth.of(samples, requests=10_000)
    assert growth.days_to_limit < soak.LEAK_HORIZON_DAYS  # the fit alone would say LEAKS
    assert growth.too_short
    assert growth.leaks is None
    figures = growth.as_dict()
    assert figures["leaks"] is None
    assert figures["verdict"] == "too short for a verdict (10 s measured, at least 50)"
    load = {"requests": 10_000, "seconds": 10.0, "requests_per_second": 1000.0, "errors": 0}
    soak.print_soak("bankchurn", {"memory": figures, "load": load, "warmup_start_mib": 290.0})
    out = capsys.readouterr().out
    assert "too short for a verdict" in out
    assert "LEAKS" not in out


def test_a_run_as_long_as_the_minimum_gets_a_verdict() -> None:
    samples = [
        (float(t), 300 * MIB + round(t * 2 * MIB / 60)) for t in range(int(soak.MIN_VERDICT_SECONDS) + 1)
    ]
    growth = soak.Growth.of(samples, requests=50_000)
    assert not growth.too_short
    assert growth.leaks is True
    assert growth.as_dict()["verdict"] == "LEAKS"


def test_the_exit_status_of_a_short_run_is_documented_in_the_help() -> None:
    text = " ".join(soak.parser().format_help().split())
    assert "exit status: 0" in text
    assert f"too short for a verdict (under {soak.MIN_VERDICT_SECONDS:g} measured seconds" in text


@pytest.mark.parametrize(("seconds", "warmup"), [(600, 120), (3600, 120), (10, 2), (60, 12)])
def test_the_warm_up_scales_with_a_short_soak(seconds: float, warmup: float) -> None:
    assert soak.default_warmup(seconds) == pytest.approx(warmup)
    assert soak.parser().parse_args(["--seconds", str(seconds)]).warmup is None  # main fills it in
