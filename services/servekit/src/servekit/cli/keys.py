"""``mlp api-key | api-keys``: API keys made, listed and taken out of a keys file (``servekit.auth``)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from servekit.cli.common import (
    UsageError,
)

if TYPE_CHECKING:
    from servekit.cli.common import Commands

#: How long ``mlp api-key``'s keys live unless told: a quarter, as cloud providers advise for
#: access keys; ApiKeyExpiresSoon warns two weeks before a client's last key runs out.
API_KEY_DAYS = 90
#: How soon a changed keys file takes effect (servekit.auth.api_keys.RELOAD_SECONDS, plus the
#: kubelet's refresh when it is a Secret's).
RELOAD_NOTE = "5 s (of a replaced Secret: about a minute, the kubelet's refresh)"


def cmd_api_key(args: argparse.Namespace) -> int:
    from servekit.auth.expiry import expires_in, expiry, expiry_text
    from servekit.auth.key_lines import KeysFileError, key_line, new_key, parse_keys, read_keys_text
    from servekit.auth.scopes import READ_SCOPE

    key = new_key()
    try:
        if args.no_expiry:
            expires = None
        elif args.expires is not None:
            try:
                expires = expiry(args.expires)
            except ValueError as exc:  # it names the file's field, expires=...: the option's --expires=...
                raise ValueError(f"--{exc}") from None
            if expires <= datetime.now(UTC):
                raise ValueError(f"--expires {args.expires}: already past; the key would be refused at once")
        else:
            if args.expires_in <= 0:
                raise ValueError(f"--expires-in {args.expires_in:g}: a key must live at least part of a day")
            try:
                expires = expires_in(args.expires_in)
            except ValueError as exc:
                raise ValueError(f"--expires-in {args.expires_in:g}: {exc}") from None
        line = key_line(args.client, key, expires, READ_SCOPE if args.read_only else None)
    except ValueError as exc:
        raise UsageError(f"api-key: {exc}") from None
    lifetime = "never expires" if expires is None else f"expires on {expiry_text(expires)}"
    lifetime += ", reads metadata only" if args.read_only else ""
    if args.append is None:
        print(line, file=sys.stderr)
        print(key)
        return 0
    path: Path = args.append
    if not path.parent.is_dir():
        raise UsageError(f"api-key: --append {path}: no directory {path.parent} to create it in")
    try:
        existing = read_keys_text(path) if path.exists() else ""
        parse_keys(existing, str(path))  # never append to a file the services would refuse
        separator = "" if not existing or existing.endswith("\n") else "\n"
        # Created readable by its owner only; digests are no keys, but nobody else needs them.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as keys_file:
            keys_file.write(f"{separator}{line}\n")
    except KeysFileError as exc:
        raise UsageError(f"api-key: {exc}") from None
    except OSError as exc:  # the key is not shown: it was never added
        raise UsageError(f"api-key: --append {path}: cannot write to it ({exc.strerror or exc})") from None
    print(f"mlp: {args.client}'s key ({lifetime}) added to {path}; it is shown once, below", file=sys.stderr)
    print(key)
    return 0


def cmd_api_keys(args: argparse.Namespace) -> int:
    from servekit.auth.key_lines import KeysFileError, read_keys_text
    from servekit.keys_file import listing, replace, without

    path: Path = args.file
    if args.revoke is not None and not args.revoke.strip():
        raise UsageError("api-keys: --revoke '': name a client or a key id (mlp api-keys FILE lists them)")
    changing = args.prune or args.revoke is not None
    try:
        text = read_keys_text(path)
        now = datetime.now(UTC)
        if not changing:
            listed = listing(text, str(path))
        elif args.prune:
            kept, listed = without(
                text, str(path), lambda key: key.expires is not None and key.expires <= now
            )
        else:
            kept, listed = without(text, str(path), lambda key: args.revoke in (key.client, key.key_id))
            if not listed:
                raise UsageError(f"api-keys: {path} holds no key of a client or with an id {args.revoke!r}")
        if changing and listed:
            # Whole, with its mode and owner, through a symlink: a service reading it sees one or the other.
            replace(path, kept)
    except (OSError, KeysFileError) as exc:
        raise UsageError(f"api-keys: {exc}") from None
    if changing:
        if listed:
            print(
                f"mlp: taken out of {path}, the services refuse them within {RELOAD_NOTE}:", file=sys.stderr
            )
        else:
            print(f"mlp: {path} holds no expired key", file=sys.stderr)
    width = max((len(key.client) for key in listed), default=6)
    for key in listed:
        opens = f"  {key.opens}" if key.opens else ""
        print(f"{key.client:<{width}}  {key.key_id}  {key.state(now)}{opens}")
    return 0


def add_commands(commands: Commands) -> None:
    """Adds ``mlp api-key``, ``mlp api-keys``."""
    key = commands.add_parser(
        "api-key",
        help="a new API key for CLIENT: the key on stdout (shown once), its keys-file line on stderr",
    )
    key.add_argument("client", help="who gets the key; what log lines name its requests by")
    key.add_argument(
        "--append", type=Path, metavar="FILE", help="add the line to this keys file (created 0600)"
    )
    lifetime = key.add_mutually_exclusive_group()
    lifetime.add_argument(
        "--expires-in",
        type=float,
        default=API_KEY_DAYS,
        metavar="DAYS",
        help=f"refused from the UTC midnight after DAYS days on (default {API_KEY_DAYS})",
    )
    lifetime.add_argument(
        "--expires", metavar="DATE", help="refused from DATE on (2027-03-01, or 2027-03-01T12:00:00Z)"
    )
    lifetime.add_argument(
        "--no-expiry", action="store_true", help="never expires: revoke it by removing its line"
    )
    key.add_argument(
        "--read-only",
        action="store_true",
        help="a key that reads metadata only (GET /model, /model/card, the Open Inference metadata): "
        "on-call's; predictions, batches, explanations and infer answer it 403",
    )
    key.set_defaults(func=cmd_api_key)

    keys = commands.add_parser(
        "api-keys",
        help="list a keys file's keys (client, key id, expiry, scope), or take lines out of it",
        description="Without an option, lists the keys. The key id is what the services' log lines "
        "name (key_id), so a rotation can be followed: once the old key's id is no longer logged, "
        "revoke it.",
    )
    keys.add_argument(
        "file", type=Path, metavar="FILE", help="the keys file (what <SVC>_API_KEYS_FILE names)"
    )
    change = keys.add_mutually_exclusive_group()
    change.add_argument("--prune", action="store_true", help="take out the lines of expired keys")
    change.add_argument(
        "--revoke", metavar="CLIENT_OR_KEY_ID", help="take out every key of a client, or one key by its id"
    )
    keys.set_defaults(func=cmd_api_keys)
