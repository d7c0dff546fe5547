"""The keys file: its lines, ``<client>:sha256:<digest>[:expires=<date>][:scope=read]``, made and read.

Both sides of the file live here: ``mlp api-key`` writes a line (``new_key``, ``key_line``),
the services and ``mlp api-keys`` read them (``key_lines``, ``parse_keys``), so a line the one
writes is always a line the other reads. Nothing here holds a key past the call that makes it:
a line holds its digest only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from servekit.auth.expiry import expiry, expiry_text
from servekit.auth.scopes import SCOPES, Key, not_a_scope

#: A client's name: what the log lines and the keys file call it.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_LINE = re.compile(r"(?P<client>[^:\s]+):sha256:(?P<digest>[0-9a-f]{64})(?P<fields>(?::\S+)?)")
#: Where a key line's next field starts: a colon before a name and '='. An expiry's time has
#: colons too (12:00:00+01:00), but never before a lower-case name and '='.
FIELD_START = re.compile(r":(?=[a-z]+=)")
FIELD = re.compile(r"(?P<name>[a-z]+)=(?P<value>\S+)")
#: How a key line is written, as the refusal of a bad one says.
KEY_LINE_FORM = "'<client>:sha256:<64 lower-case hex digits>[:expires=<date>][:scope=read]'"
KEY_PREFIX = "mlp_"
KEY_ID_LENGTH = 8


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
