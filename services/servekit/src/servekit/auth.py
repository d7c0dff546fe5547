"""API keys: who may ask a service for predictions, and who asked.

Off unless ``<SVC>_API_KEYS_FILE`` names a keys file. The file holds one line per key,
``<client>:sha256:<hex digest of the key>``, so the Secret it is mounted from holds no key a
leak would hand out: a key is shown once, to whoever creates it (``mlp api-key``), and the
service only ever compares digests. A client sends its key as ``Authorization: Bearer <key>``
(what OpenAPI's and the Open Inference Protocol's clients send) or ``X-API-Key: <key>``.

The client's name, never its key, goes on every log line written for its request (capture
lines included), so an auditor can say which client was given which answer.

The file is read again when it changes (checked at most every ``RELOAD_SECONDS``): a
key added to the Secret starts working, and one removed stops, within about a minute of
the kubelet updating the volume, with no restart. A file that becomes unreadable or invalid
leaves the keys read last in force, and says so in the log.

The digest is a plain SHA-256, not a password hash: keys are 256 random bits, so there is
nothing to guess, and a request must not spend a slow hash's milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from servekit.errors import FieldProblem, ServekitError
from servekit.metrics.names import GRPC_METHODS, OPEN_INFERENCE_ENDPOINTS, grpc_endpoint
from servekit.settings import SettingsError

logger = logging.getLogger("servekit.auth")

AUTHORIZATION = "authorization"
API_KEY_HEADER = "x-api-key"
#: A client's name: what the log lines and the keys file call it.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_LINE = re.compile(r"(?P<client>[^:\s]+):sha256:(?P<digest>[0-9a-f]{64})")
KEY_PREFIX = "mlp_"
#: Longer credentials are refused unread: nobody's key is this long, and hashing one costs time.
MAX_KEY_LENGTH = 512
RELOAD_SECONDS = 5.0
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


def new_key() -> str:
    """A new key: 256 random bits, URL-safe, recognisable by its prefix in a secret scanner."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_line(client_name: str, key: str) -> str:
    """The keys file's line for ``key`` of ``client_name``."""
    if not CLIENT_NAME.fullmatch(client_name):
        raise ValueError(
            f"{client_name!r} is not a client name: 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return f"{client_name}:sha256:{digest(key)}"


def parse_keys(text: str, source: str) -> dict[str, str]:
    """Each key's digest and the client it belongs to; a KeysFileError names the first bad line.

    A client may have several keys (the old and the new one while it rotates). Blank lines
    and lines starting with ``#`` are left out.
    """
    clients: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = KEY_LINE.fullmatch(line)
        if match is None or not CLIENT_NAME.fullmatch(match["client"]):
            raise KeysFileError(
                f"{source} line {number}: not '<client>:sha256:<64 lower-case hex digits>' "
                "(make one with: mlp api-key <client>)"
            )
        if match["digest"] in clients:
            raise KeysFileError(f"{source} line {number}: the same key as {clients[match['digest']]}'s")
        clients[match["digest"]] = match["client"]
    return clients


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
        reload_seconds: float = RELOAD_SECONDS,
    ) -> None:
        self.path = path
        self.service = service
        self.clock = clock
        self.reload_seconds = reload_seconds
        self._state, self._clients = self._read()  # a file unusable at start is the caller's error
        self._checked = clock()
        self._failing = False
        if not self._clients:
            logger.warning("%s: %s holds no keys: every request that needs one is refused", service, path)

    @property
    def clients(self) -> frozenset[str]:
        return frozenset(self._clients.values())

    def _read(self) -> tuple[FileState, dict[str, str]]:
        try:
            state = FileState.of(self.path)
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeysFileError(f"{self.path}: cannot read it ({exc})") from None
        return state, parse_keys(text, str(self.path))

    def refresh(self) -> None:
        """Read the file again if it changed; keep the keys in force if it cannot be used."""
        now = self.clock()
        if now - self._checked < self.reload_seconds:
            return
        self._checked = now
        try:
            if FileState.of(self.path) == self._state:
                return
            self._state, clients = self._read()
        except (OSError, KeysFileError) as exc:
            if not self._failing:  # once per failure, not once per check
                logger.error(
                    "%s: API keys not reloaded, the keys read last stay in force: %s", self.service, exc
                )
            self._failing = True
            return
        self._failing = False
        before = self.clients
        self._clients = clients
        after = self.clients
        logger.info(
            "%s: API keys reloaded from %s: %d keys of %d clients (clients added: %s; removed: %s)",
            self.service,
            self.path,
            len(clients),
            len(after),
            ", ".join(sorted(after - before)) or "none",
            ", ".join(sorted(before - after)) or "none",
        )

    def authenticate(self, headers: Mapping[str, str], where: str = "header.") -> str:
        """The client whose key the request carries; a 401 ServekitError when it carries none of ours.

        ``headers`` maps lower-case names to values (HTTP headers, gRPC metadata); ``where``
        prefixes the field the error names (``header.Authorization``, ``metadata.authorization``).
        """
        self.refresh()
        key, field = credential(headers, where)
        found = self._clients.get(digest(key))
        if found is None:
            raise unauthenticated(field, "not a key of this service (revoked, or for another service)")
        return found


def credential(headers: Mapping[str, str], where: str = "header.") -> tuple[str, str]:
    """The key a request carries and the field it came in; a 401 naming what is wrong."""

    def field(name: str) -> str:  # HTTP header names as documented; gRPC metadata keys are lower-case
        return f"{where}{name}" if where == "header." else f"{where}{name.lower()}"

    authorization = headers.get(AUTHORIZATION)
    if authorization is not None:
        where_sent = field("Authorization")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise unauthenticated(where_sent, f"scheme {scheme[:20]!r} is not Bearer: send 'Bearer <key>'")
    elif API_KEY_HEADER in headers:
        where_sent, key = field("X-API-Key"), headers[API_KEY_HEADER]
    else:
        raise unauthenticated(
            field("Authorization"), "missing: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    key = key.strip()
    if not key:
        raise unauthenticated(where_sent, "the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise unauthenticated(where_sent, f"longer than {MAX_KEY_LENGTH} characters: no key of this service")
    return key, where_sent


def unauthenticated(field: str, problem: str) -> ServekitError:
    return ServekitError(
        401,
        "unauthenticated",
        f"this endpoint needs an API key of this service: {field}: {problem}",
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
