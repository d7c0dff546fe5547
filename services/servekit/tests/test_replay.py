"""``mlp replay``: captured answers read from log lines and answered again by the versions that gave them."""

from __future__ import annotations

import contextvars
import dataclasses
import gzip
import io
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from toy import TOY, ToyModel

from servekit import logs
from servekit.capture import MESSAGE
from servekit.model import ModelArtifact, ServedModel
from servekit.replay.capture_lines import read_line, read_lines
from servekit.replay.capture_objects import CaptureLineError
from servekit.replay.comparison import differences, primary_fields
from servekit.replay.log_files import log_files, open_log, read_log
from servekit.replay.replaying import replay
from servekit.replay.report import render
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, wait_ready
from servekit.training.splitting import Split


def served_log(
    artifact: ModelArtifact,
    rows: list[dict[str, Any]],
    log_format: logs.LogFormat,
    last: dict[str, str] | None = None,
) -> list[str]:
    """The log of a toy service capturing every request: a batch, then a single one asked with
    ``last`` (default: explained)."""
    stream = io.StringIO()
    logs.configure_logging("INFO", log_format, "toy", stream)
    app = create_app(
        TOY, load_settings("toy", capture_percent=100, log_format=log_format), source=lambda: artifact
    )
    with TestClient(app) as client:
        wait_ready(client)
        assert client.post("/predict/batch", json={"instances": rows[:-1]}).status_code == 200
        response = client.post("/predict", params=last or {"explain": "true"}, json=rows[-1])
        assert response.status_code == 200
    # At newlines alone, as a log file is read: splitlines() splits a JSON line at a raw U+0085.
    return stream.getvalue().removesuffix("\n").split("\n")


def loader(artifact: ModelArtifact) -> Any:
    def load(name: str, version: str) -> tuple[ServiceSpec, ServedModel]:
        assert name == "toy"
        if version != artifact.version:
            raise LookupError(f"no version {version}")
        return TOY, ToyModel(artifact)

    return load


def bare_captures(
    rows: list[dict[str, Any]], answers: list[dict[str, Any]], versions: Any = "test", run_id: str = ""
) -> list[str]:
    """Capture objects alone, one per line (``versions``: one for all, or one per row)."""
    versions = [versions] * len(rows) if isinstance(versions, str) else versions
    model = {"name": "toy"} | ({"run_id": run_id} if run_id else {})
    return [
        json.dumps({"model": {**model, "version": v}, "instance": i, "input": r, "prediction": a})
        for i, (r, a, v) in enumerate(zip(rows, answers, versions, strict=True))
    ]


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_served_log_is_reproduced_whole_whatever_its_format(
    toy_trained: tuple[ModelArtifact, Split], log_format: logs.LogFormat
) -> None:
    artifact, data = toy_trained
    lines = served_log(artifact, request_rows(data, 6), log_format)
    captured = list(read_lines(lines))
    assert len(captured) == 6  # the service's other lines (model ready, ...) are skipped
    assert len(lines) > 6
    assert [c.instance for c in captured] == [0, 1, 2, 3, 4, 0]
    assert all(c.request_id for c in captured)
    assert "explanation" in captured[-1].prediction
    text, ok = render(replay(captured, loader(artifact)))
    assert ok
    assert text == "toy vtest: 6 of 6 captured answers reproduced"


@pytest.mark.usefixtures("restore_root_logger")
def test_an_answer_given_with_its_reasons_is_answered_again_with_as_many(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained
    lines = served_log(artifact, request_rows(data, 3), "json", last={"reasons": "1"})
    captured = list(read_lines(lines))
    assert [len(c.prediction.get("reasons", [])) for c in captured] == [0, 0, 1]
    assert "explanation" not in captured[-1].prediction
    text, ok = render(replay(captured, loader(artifact)))
    assert ok, text
    assert text == "toy vtest: 3 of 3 captured answers reproduced"


@pytest.mark.usefixtures("restore_root_logger")
def test_a_changed_contribution_is_named_by_its_line_request_and_field(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained
    lines = served_log(artifact, request_rows(data, 2), "json")
    # The explained single request is the last capture line.
    number, entry = [(n, json.loads(t)) for n, t in enumerate(lines, 1) if '"servekit.capture"' in t][-1]
    entry["capture"]["prediction"]["explanation"]["contributions"]["x"] += 0.01
    lines[number - 1] = json.dumps(entry)
    text, ok = render(replay(read_lines(lines), loader(artifact)))
    assert not ok
    request = entry["request_id"]
    assert (
        f"toy vtest: line {number} (request {request}, instance 0): explanation.contributions.x: captured"
        in text
    )
    assert text.endswith("toy vtest: 1 of 2 captured answers reproduced, 1 differs")


def test_a_version_that_cannot_be_loaded_is_reported_not_checked(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained
    row = request_rows(data, 1)[0]
    answer = ToyModel(artifact).predict([row])[0]
    line = {"capture": {"model": {"name": "toy", "version": "7"}, "input": row, "prediction": answer}}
    text, ok = render(replay(read_lines([json.dumps(line)]), loader(artifact)))
    assert not ok
    assert text == "toy v7: 1 captured answer not checked: LookupError: no version 7"


def test_a_version_that_is_another_run_now_is_reported(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    row = request_rows(data, 1)[0]
    answer = ToyModel(artifact).predict([row])[0]
    model = {"name": "toy", "version": "test", "run_id": "an-older-run"}
    line = {"model": model, "instance": 0, "input": row, "prediction": answer}  # as a log store exports it
    text, ok = render(replay(read_lines([json.dumps(line)]), loader(artifact)))
    assert not ok
    assert (
        "line 1 (instance 0): captured from run an-older-run, but version test is run in-memory now" in text
    )


def test_differences_allow_rounding_noise_only() -> None:
    then = {"p": 0.25, "label": "churn", "n": 3, "flag": True, "e": {"c": {"x": 1.0}}, "v": [1.0, 2.0]}
    assert differences(then, {**then, "p": 0.25 * (1 + 1e-12), "added_since": 1}) == []
    assert differences(then, {**then, "p": 0.2500001}) == ["p: captured 0.25, now 0.2500001"]
    assert differences(then, {**then, "e": {"c": {"x": 1.5}}}) == ["e.c.x: captured 1.0, now 1.5"]
    assert differences(then, {**then, "flag": 1}) == []  # True == 1 in JSON's reading too
    assert differences(then, {**then, "v": [1.0]}) == ["v: captured [1.0, 2.0], now [1.0]"]
    assert differences(then, {k: v for k, v in then.items() if k != "label"}) == [
        "label: captured 'churn', absent now"
    ]


def test_other_lines_are_skipped_and_a_broken_capture_is_an_error() -> None:
    assert read_line("2026-12-01 18:00:00 INFO servekit.runtime model ready: toy version 3", 1) is None
    assert read_line('{"logger": "servekit.access", "message": "POST /predict 422"}', 2) is None
    assert read_line("not json {", 3) is None
    broken = "2026-12-01 18:00:00 INFO servekit.capture [r-1] prediction captured: {not json"
    with pytest.raises(CaptureLineError, match="line 4: a capture whose JSON does not parse"):
        read_line(broken, 4)
    without_name = {"capture": {"model": {"version": "3"}, "input": {}, "prediction": {}}}
    with pytest.raises(CaptureLineError, match="line 5: a capture without 'name'"):
        read_line(json.dumps(without_name), 5)
    bad_time = {
        "model": {"name": "toy", "version": "3"},
        "input": {},
        "prediction": {},
        "answered_at": "noon",
    }
    with pytest.raises(
        CaptureLineError, match="line 6: a capture whose answered_at 'noon' is not an RFC 3339"
    ):
        read_line(json.dumps(bad_time), 6)


def test_the_time_of_an_answer_is_read_as_seconds_in_utc_and_older_lines_have_none() -> None:
    capture = {"model": {"name": "toy", "version": "3"}, "input": {}, "prediction": {}}
    noon = datetime(2026, 12, 2, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
    for written in ("2026-12-02T12:00:00.250Z", "2026-12-02T13:00:00.250+01:00", "2026-12-02T12:00:00.250"):
        found = read_line(json.dumps({**capture, "answered_at": written}), 1)
        assert found is not None
        assert found.answered_at == noon
    older = read_line(json.dumps(capture), 2)
    assert older is not None
    assert older.answered_at is None


def test_how_an_answer_was_routed_is_read_and_older_lines_do_not_say() -> None:
    capture = {"model": {"name": "toy", "version": "3"}, "input": {}, "prediction": {}, "variant": "canary"}
    found = read_line(json.dumps({**capture, "routed": "asked"}), 1)
    assert found is not None
    assert (found.variant, found.routed) == ("canary", "asked")
    older = read_line(json.dumps(capture), 2)
    assert older is not None
    assert older.routed == ""


def test_a_cloudwatch_subscription_record_yields_each_of_its_events(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    # Firehose with CloudWatch Logs decompression on writes each batch of events as one line.
    artifact, data = toy_trained
    rows = request_rows(data, 2)
    lines = bare_captures(rows, ToyModel(artifact).predict(rows))
    events = [{"id": str(i), "timestamp": 0, "message": line} for i, line in enumerate(lines)]
    events.insert(1, {"id": "x", "timestamp": 0, "message": "2026-12-02 INFO servekit.runtime model ready"})
    record = {"messageType": "DATA_MESSAGE", "logGroup": "/ml-platform/pods", "logEvents": events}
    captured = list(read_lines([json.dumps(record), "plain text line", lines[0]]))
    assert [(c.line, c.instance) for c in captured] == [(1, 0), (1, 1), (3, 0)]
    assert captured[0].prediction == captured[2].prediction
    # Without decompression Firehose's gzip members read as the records run together on one line.
    other = {**record, "logEvents": [{"id": "y", "timestamp": 0, "message": lines[1]}]}
    together = json.dumps(record) + json.dumps(other)
    assert [c.instance for c in read_lines([together])] == [0, 1, 1]


def test_a_gzipped_log_is_read_through_gzip_whatever_its_name(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 3)
    text = "\n".join(bare_captures(rows, ToyModel(artifact).predict(rows))) + "\n"
    # Firehose's objects: gzip members one after another, and no .gz in the name.
    halves = text.splitlines(keepends=True)
    (tmp_path / "firehose-object").write_bytes(
        gzip.compress("".join(halves[:2]).encode()) + gzip.compress("".join(halves[2:]).encode())
    )
    (tmp_path / "plain.log").write_text(text)
    # Firehose without CloudWatch decompression: each record a gzip member, no delimiter.
    records = [{"messageType": "DATA_MESSAGE", "logEvents": [{"message": line}]} for line in halves]
    (tmp_path / "raw-object").write_bytes(b"".join(gzip.compress(json.dumps(r).encode()) for r in records))
    for name in ("firehose-object", "plain.log", "raw-object"):
        with open_log(str(tmp_path / name)) as lines:
            assert [c.instance for c in read_lines(lines)] == [0, 1, 2], name


def test_a_directory_is_read_file_by_file_in_path_order_as_the_log_stores_lay_them_out(
    tmp_path: Path,
) -> None:
    def capture(n: int) -> str:
        return json.dumps(
            {"model": {"name": "toy", "version": "1"}, "instance": n, "input": {}, "prediction": {}}
        )

    # Cloud Storage sink objects (plain JSON), Firehose objects (gzipped, no suffix), by date/hour.
    (tmp_path / "2026/12/03/23").mkdir(parents=True)
    (tmp_path / "2026/12/04/00").mkdir(parents=True)
    (tmp_path / "2026/12/04/00/b-object").write_bytes(gzip.compress((capture(3) + "\n").encode()))
    (tmp_path / "2026/12/04/00/a-object").write_text(capture(2) + "\n" + "an operational line\n")
    (tmp_path / "2026/12/03/23/object").write_text(capture(0) + "\n" + capture(1) + "\n")
    # A copy tool's partial download is hidden until it is whole: never read half of one.
    (tmp_path / "2026/12/04/00/.c-object.part").write_text("{broken")
    assert [f.relative_to(tmp_path).as_posix() for f in log_files(tmp_path)] == [
        "2026/12/03/23/object",
        "2026/12/04/00/a-object",
        "2026/12/04/00/b-object",
    ]
    assert [c.instance for c in read_log(str(tmp_path))] == [0, 1, 2, 3]
    # A file is read as itself; the line numbers are the file's own.
    assert [(c.instance, c.line) for c in read_log(str(tmp_path / "2026/12/03/23/object"))] == [
        (0, 1),
        (1, 2),
    ]

    (tmp_path / "2026/12/04/00/b-object").write_text(
        capture(3) + "\n" + '{"capture": {"model": {"version": "3"}, "input": {}, "prediction": {}}}\n'
    )
    with pytest.raises(CaptureLineError, match=r"^2026/12/04/00/b-object: line 2: a capture without 'name'"):
        list(read_log(str(tmp_path)))


def test_replay_groups_by_version_and_loads_each_once(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    other = dataclasses.replace(artifact, version="2")
    rows = request_rows(data, 4)
    answer = ToyModel(artifact).predict(rows)
    lines = bare_captures(rows, answer, ["test", "2", "test", "2"])
    loads: list[str] = []

    def load(name: str, version: str) -> tuple[ServiceSpec, ServedModel]:
        loads.append(version)
        return TOY, ToyModel(artifact if version == "test" else other)

    text, ok = render(replay(read_lines(lines), load))
    assert ok
    assert loads == ["test", "2"]
    assert text == "toy vtest: 2 of 2 captured answers reproduced\ntoy v2: 2 of 2 captured answers reproduced"


def test_a_long_log_is_answered_a_chunk_at_a_time_as_it_is_read(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 10)
    answers = ToyModel(artifact).predict(rows)
    answers[7] = {**answers[7], "value": answers[7]["value"] + 1}
    lines = bare_captures(rows, answers)
    read: list[int] = []
    answered_after: list[int] = []  # how many lines had been read when each model call came

    class Counting(ToyModel):
        def predict(self, records: Any) -> Any:
            answered_after.append(len(read))
            return super().predict(records)

    def log() -> Any:
        for number, line in enumerate(lines, start=1):
            read.append(number)
            yield line

    reports = replay(read_lines(log()), lambda name, version: (TOY, Counting(artifact)), chunk=4)
    assert answered_after == [4, 8, 10]  # memory holds a chunk, not the log
    text, ok = render(reports)
    assert not ok
    expected = render(replay(read_lines(lines), loader(artifact)))[0]
    assert text == expected  # chunks change nothing in the report
    assert text.splitlines()[-1] == "toy vtest: 9 of 10 captured answers reproduced, 1 differs"
    assert text.startswith("toy vtest: line 8 (instance 7): value: captured ")


def test_past_the_listed_differences_the_rest_are_counted(toy_trained: tuple[ModelArtifact, Split]) -> None:
    # Another model behind the version: every answer differs, and the report stays readable.
    artifact, data = toy_trained
    rows = request_rows(data, 12)
    answers = ToyModel(artifact).predict(rows)
    changed = [{**a, "value": a["value"] + 1} for a in answers]
    lines = bare_captures(rows, changed, run_id="other-run")
    # Each capture differs twice: its run (the toy artifact's is another), then its value.
    assert artifact.run_id not in ("", "other-run")
    text, ok = render(replay(read_lines(lines), loader(artifact), chunk=5, listed=3))
    assert not ok
    listed = text.splitlines()
    run = f"captured from run other-run, but version test is run {artifact.run_id} now"
    assert listed[0] == f"toy vtest: line 1 (instance 0): {run}"
    assert listed[1].startswith("toy vtest: line 1 (instance 0): value: captured ")
    assert listed[2].startswith("toy vtest: line 2 (instance 1): captured from run other-run")
    assert listed[3:] == [
        "toy vtest: 21 more differences not listed",
        "toy vtest: 0 of 12 captured answers reproduced, 12 differ",
    ]
    every = render(replay(read_lines(lines), loader(artifact), listed=0))[0]
    assert len(every.splitlines()) == 24 + 1


def test_an_input_refused_now_is_that_captures_difference_and_the_rest_are_checked(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    # The request schema has moved since the capture (here: x is now at most 10, and it was 12).
    artifact, data = toy_trained
    rows = request_rows(data, 4)
    answers = ToyModel(artifact).predict(rows)
    rows[1] = {**rows[1], "x": 12.0}
    lines = bare_captures(rows, answers)
    text, ok = render(replay(read_lines(lines), loader(artifact)))
    assert not ok
    assert text.splitlines() == [
        "toy vtest: line 2 (instance 1): input refused now: x: Input should be less than or equal to 10",
        "toy vtest: 3 of 4 captured answers reproduced, 1 differs",
    ]


@pytest.mark.usefixtures("restore_root_logger")
def test_lines_as_log_stores_export_them_are_read_too(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    lines = [t for t in served_log(artifact, request_rows(data, 2), "json") if '"servekit.capture"' in t]
    first, second = (json.loads(t) for t in lines)
    exported = [
        # Cloud Logging (Cloud Storage sink, gcloud logging read): a LogEntry with the line as jsonPayload.
        json.dumps({"insertId": "1a", "jsonPayload": first, "severity": "INFO", "timestamp": first["time"]}),
        # CloudWatch Logs (aws logs filter-log-events): the line as the event's message, through Fluent Bit.
        json.dumps(
            {"logStreamName": "bankchurn-7f9", "message": json.dumps({"log": lines[1], "stream": "stderr"})}
        ),
    ]
    captured = list(read_lines(exported))
    assert [(c.request_id, c.instance) for c in captured] == [
        (first["request_id"], 0),
        (second["request_id"], 0),
    ]
    text, ok = render(replay(captured, loader(artifact)))
    assert ok, text
    assert text == "toy vtest: 2 of 2 captured answers reproduced"


def toy_capture(instance: int = 0, **change: Any) -> dict[str, Any]:
    """A capture of the toy service as ``mlp evaluate`` and ``mlp replay`` read it, ``change`` applied."""
    return {
        "model": {"name": "toy", "version": "1"},
        "instance": instance,
        "input": {},
        "prediction": {},
    } | change


def logged(capture: dict[str, Any], request_id: Any = "r-1") -> str:
    return json.dumps({"logger": "servekit.capture", "request_id": request_id, "capture": capture})


@pytest.mark.timeout(30)  # opened twice, as it was, a pipe waits for a second writer forever
def test_a_pipe_is_read_whole_and_a_gzipped_one_through_gzip(tmp_path: Path) -> None:
    # Opened once to tell gzip, then again to read, a pipe lost its first buffer: five captures
    # of 305 were missing from `mlp replay <(cat log)` without a word.
    import os
    import threading

    text = "".join(logged(toy_capture(i)) + "\n" for i in range(400))
    for name, data in (("plain", text.encode()), ("gzipped", gzip.compress(text.encode()))):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
        writer.start()
        assert [c.instance for c in read_log(str(fifo))] == list(range(400)), name
        writer.join()


def test_standard_input_is_read_through_gzip_when_it_is_gzipped(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(logged(toy_capture(i)) + "\n" for i in range(3))
    stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(text.encode())))
    monkeypatch.setattr("sys.stdin", stdin)
    assert [c.instance for c in read_log("-")] == [0, 1, 2]


def test_standard_input_replaced_by_a_text_stream_is_read_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(logged(toy_capture(i)) + "\n" for i in range(2))))
    assert [c.instance for c in read_log("-")] == [0, 1]


def test_a_log_saved_with_a_bom_loses_no_capture(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(
        b"\xef\xbb\xbf" + "".join(logged(toy_capture(i)) + "\n" for i in range(2)).encode()
    )
    assert [c.instance for c in read_log(str(tmp_path / "log"))] == [0, 1]


def test_a_json_capture_cut_short_is_an_error_not_a_line_skipped() -> None:
    line = logged(toy_capture())
    with pytest.raises(
        CaptureLineError, match="line 7: a capture whose JSON does not parse \\(cut short\\?\\)"
    ):
        read_line(line[:-40], 7)
    # Another logger's line cut short is still no capture of ours.
    assert read_line('{"logger": "servekit.access", "message": "POST', 8) is None


@pytest.mark.parametrize(
    "prefix",
    [
        "2026-12-05T14:47:01.757123456Z ",  # kubectl logs --timestamps
        "[pod/bankchurn-7d9f/bankchurn] ",  # kubectl logs --prefix
        "[pod/bankchurn-7d9f/bankchurn] 2026-12-05T14:47:01.757123456+01:00 ",  # both
        "2026-12-05T14:47:01.757123456Z stdout F ",  # a node's CRI log file
    ],
)
def test_a_line_as_kubectl_or_the_node_prefixes_it_is_read(prefix: str) -> None:
    for line in (
        logged(toy_capture(3)),
        f"2026-12-05 INFO servekit.capture [r-1] prediction captured: {json.dumps(toy_capture(3))}",
    ):
        found = read_line(prefix + line, 1)
        assert found is not None, prefix + line
        assert (found.request_id, found.instance) == ("r-1", 3)


@pytest.mark.usefixtures("restore_root_logger")
def test_a_text_line_of_a_request_with_an_api_key_is_read_by_its_request_id() -> None:
    # With API keys the text tag names the client and key after the id: "[c-7 client=risk key=ab12]".
    stream = io.StringIO()
    logs.configure_logging("INFO", "text", "toy", stream)

    def capture() -> None:
        logs.request_id.set("customer-15634602")
        logs.client.set("risk-dashboard")
        logs.key_id.set("46b1f1e1")
        logging.getLogger("servekit.capture").info("%s: %s", MESSAGE, json.dumps(toy_capture(3)))

    contextvars.copy_context().run(capture)
    line = stream.getvalue().strip()
    assert "[customer-15634602 client=risk-dashboard key=46b1f1e1]" in line
    found = read_line(line, 1)
    assert found is not None
    assert (found.request_id, found.instance) == ("customer-15634602", 3)


@pytest.mark.parametrize("key", ["message", "log", "textPayload"])
def test_a_text_line_inside_a_log_stores_record_is_read(key: str) -> None:
    # CloudWatch's message, Fluent Bit's log, Cloud Logging's textPayload: a service logging text.
    text = (
        f"2026-12-05 14:47:01 INFO servekit.capture [r-9] prediction captured: {json.dumps(toy_capture(2))}"
    )
    found = read_line(json.dumps({key: text, "stream": "stderr"}), 1)
    assert found is not None
    assert (found.request_id, found.instance) == ("r-9", 2)


def test_a_gzipped_log_cut_short_is_an_error_naming_the_file(tmp_path: Path) -> None:
    text = "".join(logged(toy_capture(i)) + "\n" for i in range(2000)).encode()
    (tmp_path / "2026").mkdir()
    (tmp_path / "2026" / "object").write_bytes(gzip.compress(text)[:5000])  # a partial download
    with pytest.raises(CaptureLineError, match=r"^2026/object: not gzip as read: Compressed file ended"):
        list(read_log(str(tmp_path)))


@pytest.mark.parametrize(
    ("capture", "request_id", "problem"),
    [
        (toy_capture(model="toy"), "r", "a capture whose model is 'toy', not an object"),
        (toy_capture(prediction=None), "r", "a capture whose prediction is None, not an object"),
        (toy_capture(input=[1, 2]), "r", "a capture whose input is [1, 2], not an object"),
        (
            toy_capture(model={"name": "toy", "version": 1}),
            "r",
            "a capture whose model version is 1, not a name",
        ),
        (toy_capture(instance="1"), "r", "a capture whose instance is '1', not a whole number"),
        (toy_capture(instance=-1), "r", "a capture whose instance is -1, not a whole number"),
        # Read as the id "None", it would meet a truth row of that id.
        (toy_capture(), None, None),
        (toy_capture(), 17, "a capture whose request_id is 17, not a string"),
    ],
)
def test_a_capture_not_as_the_service_writes_it_is_named_by_its_line(
    capture: dict[str, Any], request_id: Any, problem: str | None
) -> None:
    if problem is None:
        found = read_line(logged(capture, request_id), 4)
        assert found is not None
        assert found.request_id == ""
        return
    with pytest.raises(CaptureLineError, match=f"^line 4: {re.escape(problem)}$"):
        read_line(logged(capture, request_id), 4)


@pytest.mark.parametrize("answer", [{}, {"outside_training": []}], ids=["empty", "without-value"])
def test_an_answer_without_a_field_the_service_always_answers_is_not_reproduced(
    toy_trained: tuple[ModelArtifact, Split], answer: dict[str, Any]
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 1)
    now = ToyModel(artifact).predict(rows)[0]
    text, ok = render(replay(read_lines(bare_captures(rows, [answer])), loader(artifact)))
    assert not ok
    assert f"line 1 (instance 0): value: absent in capture, now {now['value']!r}" in text
    assert text.endswith("toy vtest: 0 of 1 captured answer reproduced, 1 differs")


def test_differences_name_a_required_field_the_capture_lacks_and_not_an_added_one() -> None:
    now = {"label": "stay", "p": 0.25, "added_since": 1}
    assert differences({"p": 0.25}, now, required=["label", "p"]) == ["label: absent in capture, now 'stay'"]
    assert differences({"label": "stay", "p": 0.25}, now, required=["label", "p"]) == []


def test_a_registry_file_that_is_not_there_is_refused_and_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from servekit import cli

    log = tmp_path / "capture.log"
    log.write_text("")
    typo = tmp_path / "typo.db"
    assert cli.main(["replay", str(log), "--tracking-uri", f"sqlite:///{typo}"]) == 2
    assert "does not exist (a typo?)" in capsys.readouterr().err
    assert not typo.exists()


class ToyPredictionNow(BaseModel):
    """The toy's answer after it gained a required field, as NLPInsight's known_word_share."""

    value: float
    confidence: float


class ToyAnsweringMore(ToyModel):
    def predict(self, records: Any) -> list[dict[str, Any]]:
        return [{**answer, "confidence": 0.5} for answer in super().predict(records)]


def test_a_capture_from_before_a_required_field_was_answered_is_reproduced_and_the_field_counted(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    # Every NLPInsight capture from before 2026-12-01 "differed" (known_word_share: absent in
    # capture) and replay exited 1; the prediction's own fields must still be there.
    artifact, data = toy_trained
    rows = request_rows(data, 3)
    then = ToyModel(artifact).predict(rows)
    spec = dataclasses.replace(TOY, response=ToyPredictionNow)

    def load(name: str, version: str) -> tuple[ServiceSpec, ServedModel]:
        return spec, ToyAnsweringMore(artifact)

    old = bare_captures(rows[:2], then[:2])
    text, ok = render(replay(read_lines(old), load))
    assert ok, text
    assert text.splitlines() == [
        "toy vtest: 2 of 2 captured answers reproduced",
        "toy vtest: 2 captured answers lack confidence, answered since (not compared)",
    ]
    stripped = bare_captures(rows, [*then[:2], {}])
    text, ok = render(replay(read_lines(stripped), load))
    assert not ok
    assert f"line 3 (instance 2): value: absent in capture, now {then[2]['value']!r}" in text
    assert "toy vtest: 2 of 3 captured answers reproduced, 1 differs" in text


def test_the_primary_fields_are_those_the_outcome_and_the_scores_are_read_from(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    model = ToyAnsweringMore(toy_trained[0])
    assert primary_fields(TOY, model, {"value": 2.0, "confidence": 0.5}) == ["value"]
    # Hooks that cannot read the answer: every required field, as strict as before.
    assert primary_fields(dataclasses.replace(TOY, response=ToyPredictionNow), model, {}) == [
        "value",
        "confidence",
    ]


#: What a replay meets, as (the second capture's version, whether the first answer is changed).
REPLAYS = {
    "reproduced": ("test", False),
    "an answer differs": ("test", True),
    "a version the registry lacks": ("gone", False),
    "the registry unreachable": ("unreachable", False),
    "an answer differs, the registry unreachable": ("unreachable", True),
}


@pytest.mark.parametrize(
    ("replayed", "status"),
    [
        ("reproduced", 0),
        ("an answer differs", 3),
        ("a version the registry lacks", 3),
        ("the registry unreachable", 1),
        ("an answer differs, the registry unreachable", 3),
    ],
)
def test_the_exit_status_tells_a_verdict_from_a_registry_worth_retrying(
    toy_trained: tuple[ModelArtifact, Split],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    replayed: str,
    status: int,
) -> None:
    # An answer that differs exited 1, the status of a registry unreachable, so a Job's
    # podFailurePolicy (or CI) retried a verdict that running again repeats; 3 is mlp score's and
    # mlp evaluate's for a run whose result fails the check.
    from servekit import cli, registry
    from servekit.loading import ModelLoadError

    artifact, data = toy_trained
    second, changed = REPLAYS[replayed]
    rows = request_rows(data, 2)
    then = ToyModel(artifact).predict(rows)
    if changed:
        then[0] = {**then[0], "value": then[0]["value"] + 1}

    def load_artifact(name: str, uri: str, tracking_uri: str) -> ModelArtifact:
        version = uri.rsplit("/", 1)[1]
        if version == "gone":
            raise ModelLoadError(f"resolving {uri} at {tracking_uri}: no such version", missing=True)
        if version == "unreachable":
            raise ModelLoadError(f"resolving {uri} at {tracking_uri}: connection refused")
        return artifact

    monkeypatch.setattr("servekit.loading.load_artifact", load_artifact)
    monkeypatch.setattr(registry, "get_service", lambda name: TOY)
    log = tmp_path / "capture.log"
    log.write_text("\n".join(bare_captures(rows, then, ["test", second])) + "\n")
    assert cli.main(["replay", str(log), "--tracking-uri", "http://127.0.0.1:18250"]) == status


def test_the_replay_help_states_its_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    from servekit import cli

    with pytest.raises(SystemExit):
        cli.main(["replay", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Exits 3 when an answer differs or a version is not in the registry; 1 when" in help_text


#: Where the NLPInsight tweets hold DEL or C1 (28 of its 9,543 rows): U+009D for a closing quote
#: or dash, U+0080 for a euro sign, U+0085 for an ellipsis, U+008F; each within a toy note's 20.
TWEET_CONTROLS = [
    "coronavirus-\x9dnot",
    "possible,'\x9d but",
    "\x80 100 million",
    "Company\x85 #Stock",
    "markets \x8fhttps",
]


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_input_holding_control_characters_is_read_back_as_sent_and_reproduced(
    toy_trained: tuple[ModelArtifact, Split], log_format: logs.LogFormat
) -> None:
    """A text line wrote U+009D as ``\\x9d``, no JSON escape, and masked a secret's value to the
    end of the line: ``mlp evaluate`` and ``mlp replay`` stopped at the first such capture."""
    artifact, data = toy_trained
    notes = [*TWEET_CONTROLS, "esc \x1b[2J del \x7f", "nl\n\u2028 tab\t", "t.co/x?token=abc"]
    rows = [{**row, "note": note} for row, note in zip(request_rows(data, len(notes)), notes, strict=True)]
    lines = served_log(artifact, rows, log_format)
    if log_format == "text":  # each escaped, none raw
        assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", "".join(lines))
    captured = list(read_lines(lines))
    # The secret masked, as in any line; the rest of the capture whole.
    assert [c.input["note"] for c in captured] == [*notes[:-1], "t.co/x?token=***"]
    assert "explanation" in captured[-1].prediction
    text, ok = render(replay(captured, loader(artifact)))
    assert ok, text
    assert text == f"toy vtest: {len(notes)} of {len(notes)} captured answers reproduced"


#: A text capture line as servekit wrote them before: U+009D as ``\x9d``, a client's own backslash
#: as JSON writes it (``\\``), so ``\\x9d`` is the text backslash, x, 9, d.
OLD_TEXT_LINE = (
    "2026-12-05 14:47:01,123 INFO servekit.capture [r-9] prediction captured: "
    '{"model":{"name":"toy","version":"1"},"instance":0,'
    r'"input":{"note":"recovery-\x9dnot \\x9d \\\x85 \x7f \u2028 \n"},"prediction":{"value":1.0}}'
)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_text_line_written_with_the_old_escapes_is_read_as_the_characters_they_stood_for(
    wrapped: bool,
) -> None:
    line = json.dumps({"textPayload": OLD_TEXT_LINE}) if wrapped else OLD_TEXT_LINE
    found = read_line(line, 1)
    assert found is not None
    assert found.request_id == "r-9"
    assert found.input == {"note": "recovery-\x9dnot \\x9d \\\x85 \x7f \u2028 \n"}


def test_a_text_line_that_does_not_parse_even_so_is_named_by_its_line(tmp_path: Path) -> None:
    # Not what the old escaping wrote: \x41 (an "A" it never escaped), or JSON cut short.
    forged = OLD_TEXT_LINE.replace("recovery", r"\x41")
    cut = OLD_TEXT_LINE[:-30]
    log = tmp_path / "captures.log"
    for number, bad in ((2, forged), (3, cut)):
        log.write_text("\n".join([*[OLD_TEXT_LINE] * (number - 1), bad]) + "\n")
        with pytest.raises(CaptureLineError, match=f"^line {number}: a capture whose JSON does not parse: "):
            list(read_log(str(log)))
