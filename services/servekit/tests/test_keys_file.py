"""The keys file as an operator keeps it: listed in its order, lines taken out, the rest untouched."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from servekit import keys_file
from servekit.auth.key_lines import KeysFileError, digest, key_id, key_line, new_key

MARCH = datetime(2027, 3, 1, tzinfo=UTC)


def keys_text() -> tuple[str, dict[str, str]]:
    keys = {name: new_key() for name in ("risk-old", "risk-new", "ops")}
    text = (
        "# risk team, rotating\n"
        f"{key_line('risk', keys['risk-old'], MARCH)}\n"
        "\n"
        f"  {key_line('risk', keys['risk-new'])}\n"
        f"{key_line('ops', keys['ops'], datetime(2020, 1, 1, tzinfo=UTC))}\n"
    )
    return text, keys


def test_the_listing_names_each_key_by_client_and_id_in_the_files_order() -> None:
    text, keys = keys_text()
    listed = keys_file.listing(text, "keys")
    assert [(key.client, key.key_id, key.expires) for key in listed] == [
        ("risk", key_id(digest(keys["risk-old"])), MARCH),
        ("risk", key_id(digest(keys["risk-new"])), None),
        ("ops", key_id(digest(keys["ops"])), datetime(2020, 1, 1, tzinfo=UTC)),
    ]
    now = datetime(2027, 2, 1, tzinfo=UTC)
    assert [key.state(now) for key in listed] == [
        "expires on 2027-03-01 (in 28 days)",
        "never expires",
        "expired on 2020-01-01",
    ]
    assert listed[0].state(datetime(2027, 2, 28, 12, tzinfo=UTC)) == "expires on 2027-03-01 (within a day)"


def test_the_listing_names_a_read_only_keys_scope_and_nothing_of_the_others() -> None:
    text, _ = keys_text()
    text += key_line("oncall", new_key(), MARCH, scope="read") + "\n"
    listed = keys_file.listing(text, "keys")
    assert [(key.client, key.scope) for key in listed][-2:] == [("ops", None), ("oncall", "read")]
    assert [key.opens for key in listed] == ["", "", "", "scope=read: metadata only"]
    kept, dropped = keys_file.without(text, "keys", lambda key: key.scope == "read")
    assert [key.client for key in dropped] == ["oncall"]
    assert kept == "".join(text.splitlines(keepends=True)[:-1])  # the rest as written


def test_lines_taken_out_leave_comments_blank_lines_and_the_rest_as_written() -> None:
    text, keys = keys_text()
    kept, dropped = keys_file.without(
        text, "keys", lambda key: key.client == "risk" and key.expires is not None
    )
    assert [key.key_id for key in dropped] == [key_id(digest(keys["risk-old"]))]
    assert kept == text.replace(f"{key_line('risk', keys['risk-old'], MARCH)}\n", "")
    assert "  risk:sha256:" in kept  # indentation an operator wrote is kept


def test_a_file_the_services_would_refuse_is_neither_listed_nor_changed() -> None:
    with pytest.raises(KeysFileError, match="line 2: not"):
        keys_file.listing("# fine\nrisk:sha256:nothex\n", "keys")
    with pytest.raises(KeysFileError, match="line 1: not"):
        keys_file.without("nonsense\n", "keys", lambda key: True)


def test_the_file_is_replaced_whole_with_its_mode_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("old\n")
    path.chmod(0o640)
    inode = path.stat().st_ino
    keys_file.replace(path, "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # a new file renamed over the old: never half written
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]


def test_through_a_symlink_the_file_it_points_to_is_replaced(tmp_path: Path) -> None:
    # What the service reads is the target; a link swapped for a file of its own would leave it as it was.
    target = tmp_path / "secret" / "keys"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "keys"
    link.symlink_to(target)
    keys_file.replace(link, "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["keys"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives a file another owner")
def test_the_file_is_replaced_with_its_owner_and_group_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("old\n")
    os.chown(path, 12345, 23456)  # the service's user and group, not whoever rewrites it
    keys_file.replace(path, "new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 23456)


def not_permitted(*args: object) -> None:
    raise PermissionError(errno.EPERM, "Operation not permitted")


def test_an_owner_that_cannot_be_given_is_no_matter_when_it_is_already_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text("old\n")
    monkeypatch.setattr(os, "chown", not_permitted)
    keys_file.replace(path, "new\n")
    assert path.read_text() == "new\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives a file another owner")
def test_an_owner_that_cannot_be_kept_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text("old\n")
    os.chown(path, 12345, 23456)
    monkeypatch.setattr(os, "chown", not_permitted)  # as for anyone but root and the owner
    with pytest.raises(keys_file.RewriteError, match=r"12345:23456 .* the service may not be able to read"):
        keys_file.replace(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]


def test_a_file_whose_directory_is_read_only_is_left_saying_where_to_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    path = tmp_path / "keys"
    path.write_text("old\n")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a Secret's volume, as root sees it too
    with pytest.raises(keys_file.RewriteError) as caught:
        keys_file.replace(path, "new\n")
    assert str(caught.value) == (
        f"{path}: cannot be rewritten in {tmp_path} (Read-only file system); "
        "if it is a mounted Secret, change the Secret instead"
    )
    assert path.read_text() == "old\n"
