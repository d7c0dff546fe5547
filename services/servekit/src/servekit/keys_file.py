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

from servekit.auth.expiry import expiry_text
from servekit.auth.key_lines import key_id, key_lines
from servekit.auth.scopes import Key


@dataclass(frozen=True)
class Listed:
    """One key line: whose key, which (its id), how long it lasts, and what it opens (None: all)."""

    client: str
    key_id: str
    expires: datetime | None
    scope: str | None = None

    @classmethod
    def of(cls, digest: str, key: Key) -> Listed:
        return cls(key.client, key_id(digest), key.expires, key.scope)

    @property
    def opens(self) -> str:
        """What the key opens, as ``mlp api-keys`` lists it: nothing said of a key that opens all."""
        return "" if self.scope is None else f"scope={self.scope}: metadata only"

    def state(self, now: datetime) -> str:
        if self.expires is None:
            return "never expires"
        days = (self.expires - now).total_seconds() / 86400
        when = expiry_text(self.expires)
        if days <= 0:
            return f"expired on {when}"
        return f"expires on {when} (in {days:.0f} days)" if days >= 1 else f"expires on {when} (within a day)"


def listing(text: str, source: str) -> list[Listed]:
    """The file's keys in its order; a KeysFileError names its first bad line."""
    return [Listed.of(line.digest, line.key) for line in key_lines(text, source) if line.key is not None]


def without(text: str, source: str, drop: Callable[[Listed], bool]) -> tuple[str, list[Listed]]:
    """The file with the key lines ``drop`` picks taken out, and those lines' keys."""
    kept: list[str] = []
    dropped: list[Listed] = []
    for line in key_lines(text, source):
        if line.key is not None and drop(listed := Listed.of(line.digest, line.key)):
            dropped.append(listed)
        else:
            kept.append(line.text)
    return "".join(kept), dropped


class RewriteError(OSError):
    """The keys file cannot be replaced as it is (nothing was changed); the message says why."""


def replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole, with its mode, owner and group: a reader sees old or new.

    A symlink is followed: the file the services read is its target, and a link replaced by a
    file of its own would leave the target, keys and all, as it was.
    """
    target = path.resolve(strict=True)
    found = target.stat()
    try:
        descriptor, staged = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise RewriteError(
            f"{path}: cannot be rewritten in {target.parent} ({exc.strerror}); "
            "if it is a mounted Secret, change the Secret instead"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as staged_file:
            staged_file.write(text)
        os.chmod(staged, found.st_mode & 0o777)
        keep_owner(staged, found, path)
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def keep_owner(staged: str, found: os.stat_result, path: Path) -> None:
    """Give ``staged`` the owner and group of the file it replaces, whose readers must still read it."""
    try:
        os.chown(staged, found.st_uid, found.st_gid)
    except PermissionError:
        made = os.stat(staged)
        if (made.st_uid, made.st_gid) != (found.st_uid, found.st_gid):
            raise RewriteError(
                f"{path}: left as it was: rewritten, it would no longer belong to {found.st_uid}:"
                f"{found.st_gid} (user:group), and the service may not be able to read it; run this as "
                "its owner or as root"
            ) from None
