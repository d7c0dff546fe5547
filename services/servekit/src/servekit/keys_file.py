"""The keys file as an operator keeps it (``mlp api-keys``): what it holds, and lines taken out.

The services read the file (``servekit.auth``); this module only lists and rewrites it, line by
line, so comments, blank lines and the order of the lines an operator wrote stay as they were.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from servekit.auth import KEY_LINE, Key, expiry_text, key_id, parse_keys


@dataclass(frozen=True)
class Listed:
    """One key line: whose key, which (its id), and how long it lasts."""

    client: str
    key_id: str
    expires: datetime | None

    def state(self, now: datetime) -> str:
        if self.expires is None:
            return "never expires"
        days = (self.expires - now).total_seconds() / 86400
        when = expiry_text(self.expires)
        if days <= 0:
            return f"expired on {when}"
        return f"expires on {when} (in {days:.0f} days)" if days >= 1 else f"expires on {when} (within a day)"


def _lines(text: str, source: str) -> list[tuple[str, tuple[str, Key] | None]]:
    """Each line of the file, with the key it holds (None for a comment or blank line)."""
    parse_keys(text, source)  # the whole file valid first: a bad line is named by its number
    found: list[tuple[str, tuple[str, Key] | None]] = []
    for raw in text.splitlines(keepends=True):
        match = KEY_LINE.fullmatch(raw.strip())
        if match is None:  # parse_keys let it through: a comment or a blank line
            found.append((raw, None))
            continue
        [(digest, key)] = parse_keys(raw, source).items()
        found.append((raw, (digest, key)))
    return found


def listing(text: str, source: str) -> list[Listed]:
    """The file's keys in its order; a KeysFileError names its first bad line."""
    return [
        Listed(key.client, key_id(digest), key.expires)
        for _, held in _lines(text, source)
        if held is not None
        for digest, key in [held]
    ]


def without(text: str, source: str, drop: Callable[[Listed], bool]) -> tuple[str, list[Listed]]:
    """The file with the key lines ``drop`` picks taken out, and those lines' keys."""
    kept: list[str] = []
    dropped: list[Listed] = []
    for raw, held in _lines(text, source):
        if held is not None:
            digest, key = held
            listed = Listed(key.client, key_id(digest), key.expires)
            if drop(listed):
                dropped.append(listed)
                continue
        kept.append(raw)
    return "".join(kept), dropped


def replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole, keeping its mode: a reader sees the old file or the new one."""
    mode = path.stat().st_mode & 0o777
    descriptor, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as staged_file:
            staged_file.write(text)
        os.chmod(staged, mode)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
