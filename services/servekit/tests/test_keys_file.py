"""The keys file as an operator keeps it: listed in its order, lines taken out, the rest untouched."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from servekit import auth, keys_file

MARCH = datetime(2027, 3, 1, tzinfo=UTC)


def keys_text() -> tuple[str, dict[str, str]]:
    keys = {name: auth.new_key() for name in ("risk-old", "risk-new", "ops")}
    text = (
        "# risk team, rotating\n"
        f"{auth.key_line('risk', keys['risk-old'], MARCH)}\n"
        "\n"
        f"  {auth.key_line('risk', keys['risk-new'])}\n"
        f"{auth.key_line('ops', keys['ops'], datetime(2020, 1, 1, tzinfo=UTC))}\n"
    )
    return text, keys


def test_the_listing_names_each_key_by_client_and_id_in_the_files_order() -> None:
    text, keys = keys_text()
    listed = keys_file.listing(text, "keys")
    assert [(key.client, key.key_id, key.expires) for key in listed] == [
        ("risk", auth.key_id(auth.digest(keys["risk-old"])), MARCH),
        ("risk", auth.key_id(auth.digest(keys["risk-new"])), None),
        ("ops", auth.key_id(auth.digest(keys["ops"])), datetime(2020, 1, 1, tzinfo=UTC)),
    ]
    now = datetime(2027, 2, 1, tzinfo=UTC)
    assert [key.state(now) for key in listed] == [
        "expires on 2027-03-01 (in 28 days)",
        "never expires",
        "expired on 2020-01-01",
    ]
    assert listed[0].state(datetime(2027, 2, 28, 12, tzinfo=UTC)) == "expires on 2027-03-01 (within a day)"


def test_lines_taken_out_leave_comments_blank_lines_and_the_rest_as_written() -> None:
    text, keys = keys_text()
    kept, dropped = keys_file.without(
        text, "keys", lambda key: key.client == "risk" and key.expires is not None
    )
    assert [key.key_id for key in dropped] == [auth.key_id(auth.digest(keys["risk-old"]))]
    assert kept == text.replace(f"{auth.key_line('risk', keys['risk-old'], MARCH)}\n", "")
    assert "  risk:sha256:" in kept  # indentation an operator wrote is kept


def test_a_file_the_services_would_refuse_is_neither_listed_nor_changed() -> None:
    with pytest.raises(auth.KeysFileError, match="line 2: not"):
        keys_file.listing("# fine\nrisk:sha256:nothex\n", "keys")
    with pytest.raises(auth.KeysFileError, match="line 1: not"):
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
