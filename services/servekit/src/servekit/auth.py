"""API keys: who may ask a service for predictions, and who asked.

Off unless ``<SVC>_API_KEYS_FILE`` names a keys file. The file holds one line per key,
``<client>:sha256:<hex digest of the key>[:expires=<date>][:scope=read]``, so the Secret it is
mounted from holds no key a leak would hand out: a key is shown once, to whoever creates it
(``mlp api-key``), and the service only ever compares digests. A key with an expiry date is refused
from then on (``mlp api-key`` gives one 90 days unless told otherwise), so a key handed to a
contractor or copied into a notebook stops working without anyone remembering to revoke it; each
client's last expiry is exported (``<svc>_api_key_expiry_timestamp_seconds``) and alerted on
beforehand. A client sends its key as ``Authorization: Bearer <key>`` (what OpenAPI's and the Open
Inference Protocol's clients send) or ``X-API-Key: <key>``. An Authorization of another scheme
(a proxy's Basic, say) leaves X-API-Key to carry the key; a header sent twice is refused.

A line without a scope opens every endpoint, as every line did before scopes existed. One of
``scope=read`` (``mlp api-key --read-only``) opens the metadata endpoints only (``READ_ENDPOINTS``:
``/model``, ``/model/card``, the Open Inference Protocol's server and model metadata), so on-call
can read what a pod serves without holding a key that runs the model; a GET of a path no
endpoint has gets the 404 (or redirect) a full key gets. Anything else answers it 403 naming its
client. A service older than scopes refuses such a line as it refuses any bad one,
so a read-only key never opens more than metadata.

The client's name, never its key, goes on every log line written for its request (capture
lines included), so an auditor can say which client was given which answer.

The file is read again when it changes (checked at most every ``RELOAD_SECONDS``): a
key added to the Secret starts working, and one removed stops, within about a minute of
the kubelet updating the volume, with no restart. A file that becomes unreadable or invalid
leaves the keys read last in force (the service keeps answering its clients), says so in the log,
and sets ``<svc>_api_keys_reload_failing`` to 1 until a file that reads is in place: a key revoked
in that file is still honoured meanwhile, which the ``ApiKeysReloadFailing`` alert tells.

The digest is a plain SHA-256, not a password hash: keys are 256 random bits, so there is
nothing to guess, and a request must not spend a slow hash's milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from servekit import logs
from servekit.errors import FieldProblem, ServekitError
from servekit.metrics.names import (
    DOCS_ASSETS,
    GRPC_METHOD,
    GRPC_METHODS,
    NO_ENDPOINT,
    OPEN_INFERENCE_ENDPOINTS,
    grpc_endpoint,
)
from servekit.settings import SettingsError

logger = logging.getLogger("servekit.auth")

AUTHORIZATION = "authorization"
API_KEY_HEADER = "x-api-key"
#: The credential headers as documented (refusals name them so; gRPC metadata keys are lower-case).
CREDENTIAL_HEADERS = {AUTHORIZATION: "Authorization", API_KEY_HEADER: "X-API-Key"}
#: Authorization schemes a refusal may name back: registered names, never anyone's key. Any other
#: first word is not repeated, since a client that left out "Bearer " sent its key there.
KNOWN_SCHEMES = frozenset(
    {"basic", "digest", "negotiate", "ntlm", "oauth", "hoba", "mutual", "dpop", "gnap", "token", "vapid"}
)
#: A client's name: what the log lines and the keys file call it.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_LINE = re.compile(r"(?P<client>[^:\s]+):sha256:(?P<digest>[0-9a-f]{64})(?P<fields>(?::\S+)?)")
#: Where a key line's next field starts: a colon before a name and '='. An expiry's time has
#: colons too (12:00:00+01:00), but never before a lower-case name and '='.
FIELD_START = re.compile(r":(?=[a-z]+=)")
FIELD = re.compile(r"(?P<name>[a-z]+)=(?P<value>\S+)")
#: How a key line is written, as the refusal of a bad one says.
KEY_LINE_FORM = "'<client>:sha256:<64 lower-case hex digits>[:expires=<date>][:scope=read]'"
#: A key that may read metadata, and nothing that runs the model (a line's ``scope=read``). A line
#: without a scope opens everything: the lines written before scopes existed mean that.
READ_SCOPE = "read"
SCOPES = (READ_SCOPE,)
#: What a read-only key opens, by endpoint label (``servekit.metrics.names``): a pod's metadata,
#: as on-call reads it (``/model``'s refresh, canary, live evaluation and baselines), and the
#: Open Inference Protocol's metadata (``/v2/models/{model}/versions/{v}`` has its model's label).
READ_ENDPOINTS = frozenset(
    {
        "/model",
        "/model/card",
        *(path for path in OPEN_INFERENCE_ENDPOINTS if not path.endswith(("/live", "/ready"))),
        *(grpc_endpoint(method) for method in GRPC_METHODS if method.endswith("Metadata")),
    }
)
#: ... called with a method that changes nothing (a gRPC call's method label is GRPC: the
#: endpoints above are its metadata calls only).
READ_METHODS = frozenset({"GET", "HEAD", GRPC_METHOD})
#: A read key GETs a path no endpoint has (``NO_ENDPOINT``) as a full key does, and gets the
#: router's 404, or its redirect of ``/model/`` to ``/model``. Safe because nothing that runs the
#: model answers GET or HEAD (each is a POST route): whatever such a path reaches, the model is
#: not run. Over HTTP only: a gRPC call to no method is not metadata.
HTTP_READ_METHODS = frozenset({"GET", "HEAD"})
#: What a refusal of a read-only key says it may do.
READABLE = (
    "GET /model, /model/card, /v2 and /v2/models/<model>[/versions/<version>] "
    "(gRPC ServerMetadata and ModelMetadata)"
)
KEY_PREFIX = "mlp_"
#: How an expiry is written: a date, or a date and a time (``datetime.fromisoformat`` reads the
#: rest). Python also reads 20270301 and 2027-W09-1, which nobody checking a file should decode.
EXPIRY_FORM = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ].+)?")
#: The first instant no key may outlive: far enough to mean "for good", and near enough that a
#: date's offset or its rounding up to midnight never runs past the calendar's end (year 9999).
LATEST_EXPIRY = datetime(9000, 1, 1, tzinfo=UTC)
#: The year 1's first midnight, moved by an offset, would be before the calendar's start.
EARLIEST_EXPIRY = datetime(1, 1, 2, tzinfo=UTC)
#: Longer credentials are refused unread: nobody's key is this long, and hashing one costs time.
MAX_KEY_LENGTH = 512
RELOAD_SECONDS = 5.0
KEY_ID_LENGTH = 8
#: What answers without a key: probes (the kubelet's, the load balancer's, the Open Inference
#: Protocol's), Prometheus's scrape, and the API's documentation. Everything else needs one,
#: an unknown path included, so a client without a key learns nothing from a 404.
OPEN_ENDPOINTS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/docs/oauth2-redirect",
        DOCS_ASSETS,
        "/redoc",
        "/openapi.json",
        *(path for path in OPEN_INFERENCE_ENDPOINTS if path.endswith(("/live", "/ready"))),
        *(grpc_endpoint(method) for method in GRPC_METHODS if method.endswith(("Live", "Ready"))),
    }
)


class KeysFileError(ValueError):
    """The keys file cannot be read, or a line of it is not a key line."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_digest: str) -> str:
    """What logs and ``mlp api-keys`` call a key: its digest's first 8 hex digits.

    32 bits of a SHA-256 of 256 random bits say nothing of the key, and tell apart the two keys
    of a client that rotates (two keys of one file share an id once in 4 billion).
    """
    return key_digest[:KEY_ID_LENGTH]


def new_key() -> str:
    """A new key: 256 random bits, URL-safe, recognisable by its prefix in a secret scanner."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Key:
    """Whose a key is, when it stops working (None: never), and what it opens (None: everything)."""

    client: str
    expires: datetime | None = None
    scope: str | None = None

    def opens(self, endpoint: str, method: str) -> bool:
        """Whether a request to ``endpoint`` (its label) with ``method`` may go ahead with this key."""
        return (
            self.scope is None
            or (endpoint in READ_ENDPOINTS and method in READ_METHODS)
            or (endpoint == NO_ENDPOINT and method in HTTP_READ_METHODS)
        )


def expiry(text: str) -> datetime:
    """A key's expiry: an ISO 8601 date (its midnight, UTC) or date and time with its offset.

    A time without an offset is refused: a key must not live hours longer, or die hours
    sooner, depending on the zone of whoever wrote the line.
    """
    if not EXPIRY_FORM.fullmatch(text):
        raise ValueError(
            f"expires={text!r} is not a date we read: write 2027-03-01, or a date and time with its "
            "offset, 2027-03-01T12:00:00Z"
        )
    try:
        if len(text) == len("2027-03-01"):
            when = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expires={text!r} is not an ISO 8601 date (2027-03-01) or date and time") from None
    if when.tzinfo is None:
        raise ValueError(f"expires={text!r} has no UTC offset: add 'Z' or '+00:00', or give a date")
    # Compared before converting: a time near the calendar's ends converts to an OverflowError.
    if when >= LATEST_EXPIRY:
        raise ValueError(f"expires={text!r} is out of range: a key must expire before {LATEST_EXPIRY.date()}")
    if when < EARLIEST_EXPIRY:
        raise ValueError(f"expires={text!r} is out of range: before {EARLIEST_EXPIRY.date()} in UTC")
    return when.astimezone(UTC)


def expiry_text(when: datetime) -> str:
    """How a key line and a refusal write an expiry: the date alone when it is a UTC midnight."""
    when = when.astimezone(UTC)
    if when.time() == datetime.min.time():
        return when.date().isoformat()
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def key_line(client_name: str, key: str, expires: datetime | None = None, scope: str | None = None) -> str:
    """The keys file's line for ``key`` of ``client_name``, refused from ``expires`` on, opening
    what ``scope`` does (None: everything)."""
    if not CLIENT_NAME.fullmatch(client_name):
        raise ValueError(
            f"{client_name!r} is not a client name: 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if scope is not None and scope not in SCOPES:
        raise ValueError(not_a_scope(scope))
    line = f"{client_name}:sha256:{digest(key)}"
    if expires is not None:
        line = f"{line}:expires={expiry_text(expires)}"
    return line if scope is None else f"{line}:scope={scope}"


def not_a_scope(scope: str) -> str:
    return (
        f"scope={scope!r} is not a scope: write scope={READ_SCOPE} (metadata only), or leave it out "
        "for a key that opens everything"
    )


def line_fields(fields: str) -> list[tuple[str, str]] | None:
    """A key line's fields after its digest (``:expires=...:scope=...``), as written; None when
    they are not ``:name=value`` pairs."""
    if not fields:
        return []
    first, *rest = FIELD_START.split(fields)
    pairs = [(match["name"], match["value"]) for match in map(FIELD.fullmatch, rest) if match is not None]
    return pairs if rest and not first and len(pairs) == len(rest) else None


def key_fields(fields: list[tuple[str, str]]) -> tuple[datetime | None, str | None]:
    """A key line's expiry and scope (None when not given); a ValueError naming the field."""
    given: dict[str, str] = {}
    for name, value in fields:
        if name not in ("expires", "scope"):
            raise ValueError(f"{name}= is no field of a key line: it takes expires=<date> and scope=read")
        if name in given:
            raise ValueError(f"{name}= given twice: give it once")
        given[name] = value
    scope = given.get("scope")
    if scope is not None and scope not in SCOPES:
        raise ValueError(not_a_scope(scope))
    return (None if "expires" not in given else expiry(given["expires"])), scope


def expires_in(days: float, now: datetime | None = None) -> datetime:
    """``days`` from ``now``, rounded up to the next UTC midnight: a line that reads as a date.

    A ValueError when ``days`` is no number, or the date would not be before ``LATEST_EXPIRY``.
    """
    now = now or datetime.now(UTC)
    if math.isnan(days):
        raise ValueError("not a number of days")
    # Compared before adding (a day spared for the rounding up): a sum past the year 9999, or
    # an infinite one, is an OverflowError rather than a date.
    if days >= (LATEST_EXPIRY - now) / timedelta(days=1) - 1:
        raise ValueError(f"a key must expire before {LATEST_EXPIRY.date()}")
    when = now + timedelta(days=days)
    midnight = datetime.combine(when.date(), datetime.min.time(), tzinfo=UTC)
    return midnight if midnight == when else midnight + timedelta(days=1)


@dataclass(frozen=True)
class KeyLine:
    """A line of a keys file as written (its end of line kept), and the key it holds if any."""

    text: str
    digest: str = ""
    key: Key | None = None  # None: a comment or a blank line


def key_lines(text: str, source: str) -> list[KeyLine]:
    """Every line of a keys file, in order; a KeysFileError names the first bad line.

    A client may have several keys (the old and the new one while it rotates). Blank lines
    and lines starting with ``#`` hold none. ``mlp api-keys`` rewrites a file from these.
    """
    lines: list[KeyLine] = []
    held: dict[str, Key] = {}
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            lines.append(KeyLine(raw))
            continue
        match = KEY_LINE.fullmatch(line)
        fields = None if match is None else line_fields(match["fields"])
        if match is None or fields is None or not CLIENT_NAME.fullmatch(match["client"]):
            raise KeysFileError(
                f"{source} line {number}: not {KEY_LINE_FORM} (make one with: mlp api-key <client>)"
            )
        if match["digest"] in held:
            raise KeysFileError(f"{source} line {number}: the same key as {held[match['digest']].client}'s")
        try:
            expires, scope = key_fields(fields)
        except ValueError as exc:
            raise KeysFileError(f"{source} line {number}: {exc}") from None
        held[match["digest"]] = Key(match["client"], expires, scope)
        lines.append(KeyLine(raw, match["digest"], held[match["digest"]]))
    return lines


def parse_keys(text: str, source: str) -> dict[str, Key]:
    """Each key's digest and whose it is (``key_lines``, comments and blank lines left out)."""
    return {line.digest: line.key for line in key_lines(text, source) if line.key is not None}


def last_expiries(keys: Mapping[str, Key]) -> dict[str, datetime]:
    """When each client whose keys all expire loses access: its last key's expiry.

    A client holding a key without an expiry is left out: it never loses access by date.
    """
    never = {key.client for key in keys.values() if key.expires is None}
    last: dict[str, datetime] = {}
    for key in keys.values():
        if key.expires is not None and key.client not in never:
            last[key.client] = max(key.expires, last.get(key.client, key.expires))
    return last


@dataclass(frozen=True)
class FileState:
    """What tells a changed file from the one read: a Secret volume swaps in a new inode."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileState:
        found = path.stat()
        return cls(found.st_ino, found.st_size, found.st_mtime_ns)


class ApiKeys:
    """The keys of one service's keys file, read again when it changes."""

    def __init__(
        self,
        path: Path,
        *,
        service: str,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        reload_seconds: float = RELOAD_SECONDS,
    ) -> None:
        self.path = path
        self.service = service
        self.clock = clock
        self.wall_clock = wall_clock
        self.reload_seconds = reload_seconds
        self._state, self._keys = self._read()  # a file unusable at start is the caller's error
        self._checked = clock()
        self._failing = False
        if not self._keys:
            logger.warning("%s: %s holds no keys: every request that needs one is refused", service, path)
        self._warn_expired()

    @property
    def reload_failing(self) -> bool:
        """Whether the file last checked could not be used, so the keys read before stay in force."""
        return self._failing

    @property
    def clients(self) -> frozenset[str]:
        return frozenset(key.client for key in self._keys.values())

    def expiries(self) -> dict[str, datetime]:
        """When each client whose keys all expire loses access (``last_expiries``).

        The file is checked first, as for a request: a scrape between requests must not report
        the expiry of a key removed a while ago.
        """
        self.refresh()
        return last_expiries(self._keys)

    def _warn_expired(self) -> None:
        # Once per read of the file: the lines are dead weight an operator should remove.
        now = self.wall_clock()
        expired = sorted(
            {k.client for k in self._keys.values() if k.expires is not None and k.expires.timestamp() <= now}
        )
        if expired:
            logger.warning(
                "%s: %s holds expired keys, which are refused, of: %s "
                "(take them out: mlp api-keys FILE --prune)",
                self.service,
                self.path,
                ", ".join(expired),
            )

    def _read(self) -> tuple[FileState, dict[str, Key]]:
        try:
            state = FileState.of(self.path)
        except OSError as exc:
            raise KeysFileError(f"{self.path}: cannot read it ({exc.strerror or exc})") from None
        return state, parse_keys(read_keys_text(self.path), str(self.path))

    def refresh(self) -> None:
        """Read the file again if it changed; keep the keys in force if it cannot be used."""
        now = self.clock()
        if now - self._checked < self.reload_seconds:
            return
        self._checked = now
        try:
            if FileState.of(self.path) == self._state:
                return
            self._state, keys = self._read()
        except Exception as exc:  # whatever the file holds, no request may fail for it
            if not self._failing:  # once per failure, not once per check
                logger.error(
                    "%s: API keys not reloaded, the keys read last stay in force: %s", self.service, exc
                )
            self._failing = True
            return
        self._failing = False
        before = self.clients
        self._keys = keys
        after = self.clients
        # Not refused: an operator may mean to shut every client out. But it must not pass unseen.
        logger.log(
            logging.INFO if keys else logging.WARNING,
            "%s: API keys reloaded from %s: %d keys of %d clients (clients added: %s; removed: %s)%s",
            self.service,
            self.path,
            len(keys),
            len(after),
            ", ".join(sorted(after - before)) or "none",
            ", ".join(sorted(before - after)) or "none",
            "" if keys else ": it holds no keys, so every request that needs one is now refused",
        )
        self._warn_expired()

    def authenticate(self, headers: Mapping[str, str], where: str = "header.") -> str:
        """The client whose key the request carries; a 401 ServekitError when it carries none of ours.

        ``headers`` maps lower-case names to values (HTTP headers, gRPC metadata); ``where``
        prefixes the field the error names (``header.Authorization``, ``metadata.authorization``).
        Who, not what it may do: a request is let through by ``bind``, which checks the key's scope.
        """
        return self.identify(headers, where)[0]

    def bind(self, headers: Mapping[str, str], endpoint: str, method: str, where: str = "header.") -> str:
        """``authenticate``, the client and key id put on the request's log lines and metrics, and
        a 403 ServekitError when the key does not open ``endpoint`` (its label) with ``method``.

        The client is put first: a refused read-only key's request is logged and counted as its
        client's. Not reset on the way out, like the request id: the access line and the request's
        count are written after the app returns, in the same task.
        """
        found, key_digest, field = self.find(headers, where)
        logs.client.set(found.client)
        logs.key_id.set(key_id(key_digest))
        if not found.opens(endpoint, method):
            raise forbidden(field, found)
        return found.client

    def identify(self, headers: Mapping[str, str], where: str = "header.") -> tuple[str, str]:
        """The client whose key the request carries, and the key's id (``key_id``)."""
        found, key_digest, _ = self.find(headers, where)
        return found.client, key_id(key_digest)

    def find(self, headers: Mapping[str, str], where: str = "header.") -> tuple[Key, str, str]:
        """The key the request carries, its digest and the field it came in; a 401 when none of ours."""
        self.refresh()
        key, field = credential(headers, where)
        key_digest = digest(key)
        found = self._keys.get(key_digest)
        if found is None:
            raise unauthenticated(field, "not a key of this service (revoked, or for another service)")
        if found.expires is not None and found.expires.timestamp() <= self.wall_clock():
            raise unauthenticated(
                field, f"{found.client}'s key expired on {expiry_text(found.expires)}: ask for a new one"
            )
        return found, key_digest, field


def credential_field(name: str, where: str = "header.") -> str:
    """How a refusal names a credential header: as documented, or as lower-case gRPC metadata."""
    documented = CREDENTIAL_HEADERS[name]
    return f"{where}{documented}" if where == "header." else f"{where}{documented.lower()}"


def credential_headers(sent: Iterable[tuple[str, str]], where: str = "header.") -> dict[str, str]:
    """A request's Authorization and X-API-Key (of its headers or gRPC metadata) by lower-case name.

    One sent more than once is a 401: which copy a proxy or a server keeps differs, so none is
    taken for the key.
    """
    values: dict[str, list[str]] = {}
    for name, value in sent:
        if name.lower() in CREDENTIAL_HEADERS:
            values.setdefault(name.lower(), []).append(value)
    for name, copies in values.items():
        if len(copies) > 1:
            raise unauthenticated(credential_field(name, where), f"sent {len(copies)} times: send it once")
    return {name: copies[0] for name, copies in values.items()}


def not_bearer(authorization: str) -> str:
    """Why an Authorization value holds no Bearer key, without repeating any of it (it may be the key)."""
    scheme, space, _ = authorization.strip().partition(" ")
    if not scheme:
        return "empty: send 'Authorization: Bearer <key>'"
    if not space or scheme.startswith(KEY_PREFIX):
        return "the scheme is missing: send 'Authorization: Bearer <key>', not the key alone"
    if scheme.lower() in KNOWN_SCHEMES:
        return f"scheme {scheme!r} is not Bearer: send 'Bearer <key>' (or the key in X-API-Key)"
    return "not 'Bearer <key>': send 'Authorization: Bearer <key>' (or the key in X-API-Key)"


def credential(headers: Mapping[str, str], where: str = "header.") -> tuple[str, str]:
    """The key a request carries and the field it came in; a 401 naming what is wrong."""
    authorization, api_key = headers.get(AUTHORIZATION), headers.get(API_KEY_HEADER)
    scheme, _, bearer = (authorization or "").strip().partition(" ")
    if authorization is not None and scheme.lower() == "bearer":
        where_sent, key = credential_field(AUTHORIZATION, where), bearer
        if api_key is not None and api_key.strip() != key.strip():
            raise unauthenticated(
                credential_field(API_KEY_HEADER, where),
                "a key other than Authorization's: send one key, in one of the two headers",
            )
    elif api_key is not None:
        # An Authorization of another scheme is a proxy's (Basic, say), not this service's.
        where_sent, key = credential_field(API_KEY_HEADER, where), api_key
    elif authorization is not None:
        raise unauthenticated(credential_field(AUTHORIZATION, where), not_bearer(authorization))
    else:
        raise unauthenticated(
            credential_field(AUTHORIZATION, where),
            "missing: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        )
    key = key.strip()
    if not key:
        raise unauthenticated(where_sent, "the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise unauthenticated(where_sent, f"longer than {MAX_KEY_LENGTH} characters: no key of this service")
    return key, where_sent


def read_keys_text(path: Path) -> str:
    """A keys file's text; a KeysFileError naming the file when it cannot be read.

    A byte order mark, which Notepad writes, is dropped: it is no part of the first line.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise KeysFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise KeysFileError(f"{path}: cannot read it: not UTF-8 text (byte {exc.start})") from None


def unauthenticated(field: str, problem: str) -> ServekitError:
    return ServekitError(
        401,
        "unauthenticated",
        f"this endpoint needs an API key of this service: {field}: {problem}",
        (FieldProblem(field, problem),),
    )


def forbidden(field: str, key: Key) -> ServekitError:
    """A 403: the key is the service's, but its scope does not open this endpoint. Not a 401, which
    would tell its client the key is wrong, and counted apart from the refusals of no key."""
    problem = f"{key.client}'s key reads metadata only (scope={key.scope}): it opens {READABLE}"
    return ServekitError(
        403,
        "forbidden",
        f"this endpoint is closed to read-only keys: {field}: {problem}; "
        "predictions need a key without a scope",
        (FieldProblem(field, problem),),
    )


def api_keys(service: str, keys_file: str) -> ApiKeys | None:
    """The service's keys, or None when ``keys_file`` is empty (no key needed).

    A file that cannot be used at start is a SettingsError naming the variable: the service
    must not start open, nor start refusing every client, because of a typo.
    """
    if not keys_file:
        return None
    try:
        return ApiKeys(Path(os.path.expanduser(keys_file)), service=service)
    except KeysFileError as exc:
        variable = f"{service.upper()}_API_KEYS_FILE"
        raise SettingsError(f"{service} settings: {variable}={keys_file!r}: {exc}") from None
