"""``mlp replay``: captured answers checked against the registry's model versions.

A capture line (:mod:`servekit.capture`) says which version answered which input with what.
Replaying it loads that version from the registry, answers the input again (explaining it if
the captured answer held an explanation) and compares: the evidence that the logged answer is
the model's, and that the registry still holds the model that gave it. The lines may come
straight from a log (JSON lines, or text lines, among any others) or as the log stores export
them (see :func:`unwrapped`), or as capture objects alone, one per line.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import orjson
from pydantic import ValidationError

from servekit.capture import MESSAGE
from servekit.errors import rejection
from servekit.inference import encode_json, run_model
from servekit.metrics.names import CAPTURE_LOGGER
from servekit.model import EXPLANATION_FIELD, ServedModel
from servekit.reasons import REASONS_FIELD
from servekit.scoring.files import GZIP_ERRORS
from servekit.spec import ServiceSpec

#: How far a number may move and still be the same answer: floating-point noise between
#: machines, far below any difference a reader of the answer would see.
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12
#: Captures of one version answered in one model call: big enough for the model's vectorised
#: speed, small enough that memory does not grow with the log.
CHUNK = 1024
#: Differences listed per version (0: all); past it they are counted, so a log whose every answer
#: differs (another model behind the version) gives a readable report in bounded memory.
MAX_LISTED = 100
GZIP_MAGIC = b"\x1f\x8b"
#: A text log line: ``... servekit.capture [<request id>] prediction captured: {...}``.
_TEXT_LINE = re.compile(
    # The tag is the request id, then, with API keys, ``client=… key=…`` (servekit.logs): an id
    # has no space (servekit.rest.request_id), so it ends at the first.
    rf"servekit\.capture(?: \[(?P<request>[^\]\s]*)(?: [^\]]*)?\])? {re.escape(MESSAGE)}: (?P<body>\{{.*)$"
)
#: What a log reader puts before each line: ``kubectl logs --prefix`` (``[pod/<pod>/<container>] ``),
#: ``--timestamps`` (an RFC 3339 time), and a node's CRI log file (the time, the stream and ``F``
#: for a whole line). The line itself follows.
_READER_PREFIX = re.compile(
    r"\A(?:\[[^\]\s]+\] )?"
    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}) (?:(?:stdout|stderr) F )?)?"
)


class CaptureLineError(ValueError):
    """A line that is a capture but cannot be read as one."""


@dataclass(frozen=True)
class Captured:
    """One captured instance and the answer it got."""

    line: int
    request_id: str
    name: str
    version: str
    run_id: str
    instance: int
    input: Mapping[str, Any]
    prediction: Mapping[str, Any]
    #: Which of the service's models answered: ``stable`` or ``canary`` (empty in older lines).
    variant: str = ""
    #: How it was chosen (:data:`servekit.routing.ROUTED`; empty in older lines).
    routed: str = ""
    #: When, in seconds since the epoch (None in lines written before captures held the time).
    answered_at: float | None = None

    @property
    def where(self) -> str:
        request = f"request {self.request_id}, " if self.request_id else ""
        return f"line {self.line} ({request}instance {self.instance})"


def read_line(text: str, number: int) -> Captured | None:
    """The capture on this log line; None for any other line."""
    # A BOM: a log saved by an editor, or piped from one.
    text = _READER_PREFIX.sub("", text.strip().lstrip("\ufeff"), count=1)
    if not text.startswith("{"):
        return _read_text_line(text, number)
    try:
        entry = unwrapped(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        # Skipped, a capture cut short would be an answer missing from the figures unseen.
        if CAPTURE_LOGGER in text:
            raise CaptureLineError(
                f"line {number}: a capture whose JSON does not parse (cut short?): {exc}"
            ) from None
        return None
    if isinstance(entry, str):  # a text line inside what a log store exports around it
        return _read_text_line(entry, number)
    if not isinstance(entry, dict):
        return None
    return _captured(entry.get("capture", entry), entry.get("request_id", ""), number)


def _read_text_line(text: str, number: int) -> Captured | None:
    found = _TEXT_LINE.search(text)
    if found is None:
        return None
    try:
        body = orjson.loads(found["body"])
    except orjson.JSONDecodeError as exc:
        body = _read_old_escapes(found["body"])
        if body is None:
            raise CaptureLineError(f"line {number}: a capture whose JSON does not parse: {exc}") from None
    return _captured(body, found["request"] or "", number)


#: A JSON escape, or what a text line an older servekit wrote had for a control character:
#: ``\x9d`` (servekit.logs wrote C0, DEL and C1 so, in lower case; JSON knows no ``\x``). Matched
#: escape by escape from the left, so a literal backslash's ``\\`` is passed over whole: ``\\x9d``,
#: a client's own backslash, x, 9, d, stays that text.
_ESCAPE = re.compile(r"\\(?:x(?P<old>[01][0-9a-f]|7f|[89][0-9a-f])|.)")


def _read_old_escapes(body: str) -> Any:
    """A text capture line's JSON written before control characters got JSON's escapes, each
    ``\\xNN`` read as the character it stood for; None if it does not parse so either.

    Tried only on a body that does not parse: valid JSON holds no ``\\x``, so a line written since
    is read as it is, at no cost.
    """
    if "\\x" not in body:
        return None
    try:
        return orjson.loads(_ESCAPE.sub(_json_escape, body))
    except orjson.JSONDecodeError:
        return None


def _json_escape(match: re.Match[str]) -> str:
    old = match["old"]
    return match.group() if old is None else f"\\u00{old}"


def _captured(body: Any, request_id: Any, number: int) -> Captured | None:
    if not isinstance(body, dict) or not {"model", "input", "prediction"} <= body.keys():
        return None
    problem = _shape_problem(body, request_id)
    if problem is not None:
        raise CaptureLineError(f"line {number}: a capture {problem}")
    model = body["model"]
    return Captured(
        line=number,
        request_id=request_id or "",
        name=model["name"],
        version=model["version"],
        run_id=str(model.get("run_id", "")),
        instance=body.get("instance", 0),
        input=body["input"],
        prediction=body["prediction"],
        # Interned: a few distinct words, kept per answer by ``mlp evaluate`` over a whole log.
        variant=sys.intern(str(body.get("variant", ""))),
        routed=sys.intern(str(body.get("routed", ""))),
        answered_at=_seconds(body.get("answered_at"), number),
    )


def _shape_problem(body: Mapping[str, Any], request_id: Any) -> str | None:
    """What is not as the service writes it in a capture (an edited or foreign line), or None.

    Read as it came, such a capture ends a command later in a traceback far from its line, or
    worse is read as something else (a null request id as the id ``None``).
    """
    for name in ("model", "input", "prediction"):
        if not isinstance(body[name], dict):
            return f"whose {name} is {_short(body[name])}, not an object"
    model = body["model"]
    for name in ("name", "version"):
        if name not in model:
            return f"without '{name}' in its model"
        if not isinstance(model[name], str) or not model[name]:
            return f"whose model {name} is {_short(model[name])}, not a name"
    if request_id is not None and not isinstance(request_id, str):
        return f"whose request_id is {_short(request_id)}, not a string"
    instance = body.get("instance", 0)
    if isinstance(instance, bool) or not isinstance(instance, int) or instance < 0:
        return f"whose instance is {_short(instance)}, not a whole number"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _seconds(answered_at: Any, number: int) -> float | None:
    if answered_at is None:
        return None
    try:
        moment = datetime.fromisoformat(str(answered_at))
    except ValueError:
        raise CaptureLineError(
            f"line {number}: a capture whose answered_at {answered_at!r} is not an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:  # servekit writes UTC; a time without a zone is read as UTC too
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def unwrapped(entry: Any) -> Any:
    """The service's own JSON line inside what a log store exports around it.

    A Cloud Logging export (to Cloud Storage, or ``gcloud logging read --format=json``) holds it as
    a LogEntry's ``jsonPayload``; CloudWatch Logs (``aws logs filter-log-events``) as an event's
    ``message`` string, and a Fluent Bit record as its ``log`` string. A service logging text
    (``LOG_FORMAT=text``) has its line there as a string, returned as it is.
    """
    if not isinstance(entry, dict):
        return entry
    if isinstance(entry.get("jsonPayload"), dict):
        return entry["jsonPayload"]
    for key in ("message", "log", "textPayload"):
        inner = entry.get(key)
        if not isinstance(inner, str):
            continue
        if inner.lstrip().startswith("{"):
            try:
                return unwrapped(orjson.loads(inner))
            except orjson.JSONDecodeError:
                return entry
        if _TEXT_LINE.search(inner):
            return inner
    return entry


def read_lines(lines: Iterable[str]) -> Iterator[Captured]:
    """The captures among ``lines``, read as they are iterated (a capture log can be gigabytes)."""
    for number, text in enumerate(lines, start=1):
        for event in log_events(text):
            captured = read_line(event, number)
            if captured is not None:
                yield captured


def log_events(text: str) -> list[str]:
    """The log lines a line holds: itself, or the events of CloudWatch Logs subscription records.

    A subscription filter delivers its events in batches, ``{"messageType": "DATA_MESSAGE", ...,
    "logEvents": [{"message": "<the pod's line>"}, ...]}``. Kinesis Data Firehose writes them to
    S3 one per line when its CloudWatch Logs decompression is on; without it, as gzip members one
    after another, which read as the records run together on one line.
    """
    if '"logEvents"' not in text:  # a plain line is not parsed twice
        return [text]
    try:
        records = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        try:
            records = _run_together(text)
        except ValueError:
            return [text]
    events = [
        event
        for record in records
        if isinstance(record, dict) and isinstance(record.get("logEvents"), list)
        for event in record["logEvents"]
    ]
    if not events:
        return [text]
    return [e["message"] for e in events if isinstance(e, dict) and isinstance(e.get("message"), str)]


def _run_together(text: str) -> list[Any]:
    """JSON values written one after another with nothing between them."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at, end = 0, len(text.rstrip())
    while at < end:
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < end and text[at].isspace():
            at += 1
    return values


@contextmanager
def open_log(path: str) -> Iterator[IO[str]]:
    """A capture log file to read as text, through gzip when it is gzipped (see :func:`as_text`)."""
    # The file itself is closed here: a GzipFile given a file object leaves it open.
    with open(path, "rb") as raw, as_text(raw) as text:
        yield text


def as_text(raw: BinaryIO) -> IO[str]:
    """A capture log's bytes as text, through gzip when they are gzipped.

    Told by the first bytes, not a name: Firehose's S3 objects are gzipped without a ``.gz``.
    Several gzip members one after another (Firehose's record batches) read as one stream. The
    first bytes are peeked, not read, so a pipe (``<(...)``, a FIFO, standard input) loses none.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    stream: BinaryIO = buffered
    if buffered.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=buffered))
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")


def log_files(path: Path) -> list[Path]:
    """The files a capture log is: ``path`` itself, or every file under a directory, in path order.

    A directory is how the log stores deliver: Cloud Logging's sink to Cloud Storage writes an
    object per log and hour (``stderr/2026/12/04/03:00:00_03:59:59_S0.json``), Firehose one per
    buffer (``2026/12/04/03/<stream>-…``), and a job copies a window of them into one directory.
    Path order is time order in both layouts. Hidden files (a copy tool's partial ``.file``) are
    not read.
    """
    if not path.is_dir():
        return [path]
    return sorted(
        (
            f
            for f in path.rglob("*")
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
        ),
        key=lambda f: f.relative_to(path).parts,
    )


def read_log(path: str, stdin: IO[str] | None = None) -> Iterator[Captured]:
    """The captures in a log (``-``: ``stdin``): a file, or every file under a directory.

    A line that cannot be read raises :class:`CaptureLineError` naming its line and, in a
    directory, the file it is in.
    """
    if path == "-":
        yield from _read_stream(stdin if stdin is not None else _standard_input())
        return
    root = Path(path)
    for file in log_files(root):
        with open_log(str(file)) as lines:
            try:
                yield from _read_stream(lines)
            except CaptureLineError as exc:
                if file == root:
                    raise
                raise CaptureLineError(f"{file.relative_to(root)}: {exc}") from None


def _standard_input() -> IO[str]:
    """Standard input as text, through gzip when it is gzipped; a text stream put in its place
    (one without bytes beneath it, as an embedding program's) as it is."""
    binary = getattr(sys.stdin, "buffer", None)
    return sys.stdin if binary is None else as_text(binary)


def _read_stream(lines: IO[str]) -> Iterator[Captured]:
    try:
        yield from read_lines(lines)
    except GZIP_ERRORS as exc:  # a partial download of a gzipped object, or a false .gz
        raise CaptureLineError(f"not gzip as read: {exc}") from None


def differences(
    captured: Mapping[str, Any], now: Mapping[str, Any], path: str = "", required: Collection[str] = ()
) -> list[str]:
    """How today's answer differs from the captured one, field by field.

    A field the captured answer lacks differs when it is ``required``: the prediction's own fields
    (:func:`primary_fields`), without which an answer was not the service's, or was edited since.
    Others it lacks (answered since the capture, or only when asked) are not compared.
    """
    found: list[str] = [
        f"{path}{key}: absent in capture, now {now[key]!r}"
        for key in required
        if key in now and key not in captured
    ]
    for key, then in captured.items():
        name = f"{path}{key}"
        if key not in now:
            found.append(f"{name}: captured {then!r}, absent now")
            continue
        value = now[key]
        if isinstance(then, Mapping) and isinstance(value, Mapping):
            found.extend(differences(then, value, f"{name}."))
        elif not _same(then, value):
            found.append(f"{name}: captured {then!r}, now {value!r}")
    return found


class _Reads(Mapping[str, Any]):
    """An answer that notes which of its fields are read."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = answer
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.answer[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.answer)

    def __len__(self) -> int:
        return len(self.answer)


def primary_fields(spec: ServiceSpec, model: ServedModel, answer: Mapping[str, Any]) -> list[str]:
    """The fields that make a prediction: those its outcome and its scores are read from
    (``ServedModel.outcome``, what the service's metrics count, and ``.scores``, what a shadow
    compares: BankChurn's label and churn_probability, NLPInsight's label and probabilities,
    ChicagoTaxi's fare_range and fare). Every version has answered them; a field the response
    gained later (NLPInsight's known_word_share, required since 2026-12-01) is not among them.
    Read from ``answer``, today's; where that fails, every required field of the response."""
    reads = _Reads(answer)
    try:
        model.outcome(reads)
        model.scores(reads)
    except Exception:
        return [name for name, info in spec.response.model_fields.items() if info.is_required()]
    return sorted(reads.read)


def _same(then: Any, now: Any) -> bool:
    numbers = (int, float)
    if isinstance(then, numbers) and isinstance(now, numbers) and not isinstance(then, bool):
        return math.isclose(then, now, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)
    if isinstance(then, list) and isinstance(now, list):
        return len(then) == len(now) and all(_same(a, b) for a, b in zip(then, now, strict=True))
    return bool(then == now)


@dataclass
class VersionReport:
    """What replaying one version's captures found."""

    name: str
    version: str
    checked: int = 0
    #: The first ``listed`` differences, each naming its capture; the rest are only counted.
    problems: list[str] = field(default_factory=list)
    listed: int = MAX_LISTED
    unlisted: int = 0
    #: Captures whose answer differs (or whose run is not the version's now).
    differing: int = 0
    not_loaded: str | None = None
    #: Not loaded because the registry answered that it holds no such version (or no service of
    #: the name is installed): a finding about the log, as a difference is, which no retry mends.
    #: Any other cause (the registry unreachable) may pass.
    missing: bool = False
    #: Required answer fields the captures lack, each with how many lack it: answered since they
    #: were captured (``primary_fields`` are never among them: those lacking differ).
    answered_since: dict[str, int] = field(default_factory=dict)

    def differs(self, captured: Captured, problems: Sequence[str]) -> None:
        self.differing += 1
        for problem in problems:
            if self.listed and len(self.problems) >= self.listed:
                self.unlisted += 1
            else:
                self.problems.append(f"{captured.where}: {problem}")

    @property
    def reproduced(self) -> int:
        return self.checked - self.differing


def answer_again(
    spec: ServiceSpec, model: ServedModel, captured: Sequence[Captured]
) -> list[dict[str, Any] | str]:
    """The model's answer to each captured input, validated as the service validates a request.

    An input the service would refuse now (its schema has moved since the capture) gets, in
    place of an answer, the fields and problems, as the 422 would name them.
    """
    answers: list[dict[str, Any] | str] = [{} for _ in captured]
    records: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(captured):
        try:
            records[i] = spec.request.model_validate_json(encode_json(c.input)).model_dump()
        except ValidationError as exc:
            answers[i] = rejection(exc)
    # Explained, and with as many reasons, where the captured answer was: run_model either way.
    # A captured answer's reasons are as many as asked, or all the model's inputs if fewer, so
    # asking for as many as it lists gives the same list.
    asked: dict[tuple[bool, int], list[int]] = {}
    for i in records:
        prediction = captured[i].prediction
        key = (EXPLANATION_FIELD in prediction, len(prediction.get(REASONS_FIELD, ())))
        asked.setdefault(key, []).append(i)
    for (explain, reasons), positions in asked.items():
        again = run_model(model, [records[i] for i in positions], explain, reasons=reasons)
        for i, answer in zip(positions, again, strict=True):
            answers[i] = orjson.loads(encode_json(answer))
    return answers


def replay(
    captured: Iterable[Captured],
    load: Callable[[str, str], tuple[ServiceSpec, ServedModel]],
    chunk: int = CHUNK,
    listed: int = MAX_LISTED,
) -> list[VersionReport]:
    """Each version's captures answered again by that version, as ``load(name, version)`` gives it.

    Captures are read as they come and answered ``chunk`` at a time per version, so memory holds
    a chunk and the first ``listed`` differences (0: all) per version, whatever the length of the
    log. Each version is loaded once, when its first capture is read; the reports are in that order.
    """
    reports: dict[tuple[str, str], VersionReport] = {}
    models: dict[tuple[str, str], tuple[ServiceSpec, ServedModel]] = {}
    pending: dict[tuple[str, str], list[Captured]] = {}
    for c in captured:
        key = (c.name, c.version)
        report = reports.get(key)
        if report is None:
            report = reports[key] = VersionReport(c.name, c.version, listed=listed)
            try:
                models[key] = load(c.name, c.version)
            except Exception as exc:  # every cause (no such service, version, registry) is reported
                report.not_loaded = f"{type(exc).__name__}: {exc}"
                # servekit.loading.ModelLoadError's missing, or registry.get_service's LookupError (no
                # such service); not a KeyError, which is a fault.
                report.missing = type(exc) is LookupError or getattr(exc, "missing", False) is True
        report.checked += 1
        if report.not_loaded is not None:
            continue
        group = pending.setdefault(key, [])
        group.append(c)
        if len(group) >= chunk:
            _check(report, *models[key], pending.pop(key))
    for key, group in pending.items():
        report = reports[key]
        if report.not_loaded is None:
            _check(report, *models[key], group)
    return list(reports.values())


def _check(report: VersionReport, spec: ServiceSpec, model: ServedModel, group: Sequence[Captured]) -> None:
    try:
        answers = answer_again(spec, model, group)
    except Exception as exc:
        report.not_loaded = f"answering the captured inputs failed: {type(exc).__name__}: {exc}"
        return
    run_id = model.artifact.run_id
    required = [name for name, info in spec.response.model_fields.items() if info.is_required()]
    primary: list[str] | None = None
    for c, now in zip(group, answers, strict=True):
        if isinstance(now, str):
            problems = [f"input refused now: {now}"]
        else:
            if primary is None:
                primary = primary_fields(spec, model, now)
            problems = differences(c.prediction, now, required=primary)
            for name in required:
                if name not in primary and name in now and name not in c.prediction:
                    report.answered_since[name] = report.answered_since.get(name, 0) + 1
        if c.run_id and run_id and c.run_id != run_id:
            current = f"version {report.version} is run {run_id} now"
            problems.insert(0, f"captured from run {c.run_id}, but {current}")
        if problems:
            report.differs(c, problems)


def render(reports: Sequence[VersionReport]) -> tuple[str, bool]:
    """The report as text, and whether every captured answer was reproduced."""
    lines = []
    for r in reports:
        head = f"{r.name} v{r.version}"
        if r.not_loaded is not None:
            lines.append(f"{head}: {_answers(r.checked)} not checked: {r.not_loaded}")
            continue
        lines.extend(f"{head}: {problem}" for problem in r.problems)
        if r.unlisted:
            lines.append(f"{head}: {r.unlisted} more difference{'s' if r.unlisted > 1 else ''} not listed")
        tail = f", {r.differing} differ{'s' if r.differing == 1 else ''}" if r.differing else ""
        lines.append(f"{head}: {r.reproduced} of {_answers(r.checked)} reproduced{tail}")
        lines.extend(
            f"{head}: {count} captured answer{'s lack' if count > 1 else ' lacks'} {name}, answered since "
            "(not compared)"
            for name, count in sorted(r.answered_since.items())
        )
    ok = all(r.not_loaded is None and not r.differing for r in reports)
    return "\n".join(lines), ok


def failed_for_good(reports: Sequence[VersionReport]) -> bool:
    """Whether the replay found what running it again repeats: an answer that differs, or a
    version the registry does not hold. False when all it lacks is a version it could not load
    for a cause that may pass (the registry unreachable) or a fault no one foresaw."""
    return any(r.differing or r.missing for r in reports)


def _answers(count: int) -> str:
    return f"{count} captured answer{'' if count == 1 else 's'}"
