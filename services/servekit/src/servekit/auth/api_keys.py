"""A service's keys, read from its keys file and read again when the file changes.

The one part of the package that holds state: the other modules read and write lines, dates and
headers.
``ApiKeys`` holds the keys in force and decides, for each request, whose key it carries and
whether the key opens its endpoint; the REST middleware and the gRPC server both call it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from servekit import logs
from servekit.auth.credentials import credential, forbidden, unauthenticated
from servekit.auth.expiry import expiry_text, last_expiries
from servekit.auth.key_lines import KeysFileError, digest, key_id, parse_keys, read_keys_text
from servekit.auth.scopes import Key
from servekit.settings import SettingsError

# The package's name, not this module's: its log lines keep the logger name they always had, which
# whoever searches the logs may filter on.
logger = logging.getLogger("servekit.auth")

RELOAD_SECONDS = 5.0


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
