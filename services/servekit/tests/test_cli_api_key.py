"""``mlp api-key``: a key shown once, and a keys-file line the services read."""

from __future__ import annotations

import errno
import stat
import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from servekit import cli
from servekit.auth.api_keys import ApiKeys
from servekit.auth.key_lines import KEY_PREFIX, key_id, key_line, new_key, parse_keys
from servekit.auth.scopes import Key


def test_the_key_goes_to_stdout_and_only_its_digest_to_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["api-key", "risk-dashboard"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith(KEY_PREFIX)
    [expires] = parse_keys(err, "stderr").values()
    assert err.strip() == key_line("risk-dashboard", key, expires.expires)
    assert key not in err


def test_append_adds_a_line_the_service_accepts_to_a_file_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    assert cli.main(["api-key", "risk", "--append", str(path)]) == 0
    first = capsys.readouterr().out.strip()
    path.write_text(path.read_text().rstrip("\n"))  # an operator's editor dropped the last newline
    assert cli.main(["api-key", "ops", "--append", str(path)]) == 0
    second = capsys.readouterr().out.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = ApiKeys(path, service="toy")
    assert keys.authenticate({"x-api-key": first}) == "risk"
    assert keys.authenticate({"x-api-key": second}) == "ops"
    assert first not in path.read_text()


def test_a_bad_client_name_or_keys_file_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["api-key", "risk team"]) == 2
    assert "not a client name" in capsys.readouterr().err
    path = tmp_path / "keys"
    path.write_text("not a key line\n")
    assert cli.main(["api-key", "risk", "--append", str(path)]) == 2
    captured = capsys.readouterr()
    assert "line 1: not" in captured.err
    assert captured.out == ""  # no key handed out that the file would not hold
    assert path.read_text() == "not a key line\n"


def test_a_key_expires_in_90_days_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    assert cli.main(["api-key", "risk", "--append", str(path)]) == 0
    assert "(expires on " in capsys.readouterr().err
    assert cli.main(["api-key", "ops", "--append", str(path), "--expires", "2099-01-01"]) == 0
    assert cli.main(["api-key", "batch", "--append", str(path), "--no-expiry"]) == 0
    assert "(never expires)" in capsys.readouterr().err
    assert cli.main(["api-key", "short", "--append", str(path), "--expires-in", "1"]) == 0
    expiries = ApiKeys(path, service="toy").expiries()
    assert set(expiries) == {"risk", "ops", "short"}
    now = datetime.now(UTC)
    assert timedelta(days=90) <= expiries["risk"] - now <= timedelta(days=91)
    assert expiries["ops"] == datetime(2099, 1, 1, tzinfo=UTC)
    assert timedelta(days=1) <= expiries["short"] - now <= timedelta(days=2)


def test_read_only_writes_a_line_of_scope_read_the_service_opens_metadata_to_and_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["api-key", "oncall", "--read-only", "--no-expiry"]) == 0
    shown = capsys.readouterr()
    assert shown.err.strip() == key_line("oncall", shown.out.strip(), scope="read")
    path = tmp_path / "keys"
    assert cli.main(["api-key", "risk", "--append", str(path)]) == 0
    assert cli.main(["api-key", "oncall", "--read-only", "--append", str(path)]) == 0
    captured = capsys.readouterr()
    oncall = captured.out.split()[-1]
    assert "oncall's key (expires on " in captured.err
    assert ", reads metadata only) added to " in captured.err
    assert path.read_text().splitlines()[-1].endswith(":scope=read")  # after its expiry, as mlp writes it
    keys = ApiKeys(path, service="toy")
    found, _, _ = keys.find({"x-api-key": oncall})
    assert found == Key("oncall", found.expires, "read")
    assert found.opens("/model", "GET")
    assert not found.opens("/predict", "POST")
    assert set(keys.expiries()) == {"risk", "oncall"}  # ApiKeyExpiresSoon reminds of on-call's too

    assert cli.main(["api-keys", str(path)]) == 0
    risk, listed = capsys.readouterr().out.splitlines()
    assert "scope" not in risk  # a key that opens everything is listed as before
    assert listed.split()[0] == "oncall"
    assert listed.endswith("  scope=read: metadata only")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--expires", "2020-01-01"], "already past"),
        (["--expires", "soon"], "--expires='soon' is not a date we read"),
        (["--expires", "20270301"], "--expires='20270301' is not a date we read"),
        (["--expires", "2027-03-01T12:00:00"], "--expires='2027-03-01T12:00:00' has no UTC offset"),
        (["--expires", "0001-01-01T00:00:00+01:00"], "--expires='0001-01-01T00:00:00+01:00' is out of range"),
        (["--expires", "9999-12-31T23:00:00-05:00"], "is out of range: a key must expire before 9000-01-01"),
        (["--expires-in", "3000000"], "--expires-in 3e+06: a key must expire before 9000-01-01"),
        (["--expires-in", "1e9"], "--expires-in 1e+09: a key must expire before 9000-01-01"),
        (["--expires-in", "inf"], "--expires-in inf: a key must expire before 9000-01-01"),
        (["--expires-in", "nan"], "--expires-in nan: not a number of days"),
        (["--expires-in", "0"], "at least part of a day"),
        (["--expires-in", "30", "--no-expiry"], "not allowed with argument"),
    ],
)
def test_an_expiry_that_cannot_be_used_is_refused(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if "--no-expiry" in args else nullcontext():
        assert cli.main(["api-key", "risk", *args]) == 2
    captured = capsys.readouterr()
    assert problem in captured.err
    assert len(captured.err.splitlines()) == 1 or "--no-expiry" in args  # argparse adds its usage
    assert captured.out == ""


def test_api_keys_lists_prunes_and_revokes_by_client_or_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    for args in (["risk"], ["risk", "--expires-in", "200"], ["ops", "--no-expiry"]):
        assert cli.main(["api-key", *args, "--append", str(path)]) == 0
    with path.open("a") as written:
        written.write(key_line("gone", new_key(), datetime(2020, 1, 1, tzinfo=UTC)) + "\n")
    capsys.readouterr()

    assert cli.main(["api-keys", str(path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in rows] == ["risk", "risk", "ops", "gone"]
    assert rows[2][2:] == ["never", "expires"]
    assert rows[3][2:] == ["expired", "on", "2020-01-01"]

    assert cli.main(["api-keys", str(path), "--prune"]) == 0
    assert capsys.readouterr().out.split()[0] == "gone"
    assert cli.main(["api-keys", str(path), "--revoke", rows[0][1]]) == 0  # risk's first key, by its id
    assert cli.main(["api-keys", str(path), "--revoke", "ops"]) == 0
    capsys.readouterr()
    remaining = {key_id(digest): key.client for digest, key in parse_keys(path.read_text(), "k").items()}
    assert remaining == {rows[1][1]: "risk"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_api_keys_says_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys"
    assert cli.main(["api-keys", str(path)]) == 2
    assert "No such file" in capsys.readouterr().err
    path.write_text(key_line("risk", new_key()) + "\n")
    assert cli.main(["api-keys", str(path), "--revoke", "nobody"]) == 2
    assert "holds no key of a client or with an id 'nobody'" in capsys.readouterr().err
    assert cli.main(["api-keys", str(path), "--prune"]) == 0
    assert "holds no expired key" in capsys.readouterr().err
    path.write_text("nonsense\n")
    assert cli.main(["api-keys", str(path)]) == 2
    assert "line 1: not" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("keys-dir", "{tmp}/keys-dir: cannot read it (Is a directory)"),
        (
            "missing/dir/keys",
            "--append {tmp}/missing/dir/keys: no directory {tmp}/missing/dir to create it in",
        ),
        ("latin-1", "{tmp}/latin-1: cannot read it: not UTF-8 text (byte 0)"),
    ],
)
def test_append_to_what_cannot_take_a_line_is_one_line_and_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, problem: str
) -> None:
    (tmp_path / "keys-dir").mkdir()
    (tmp_path / "latin-1").write_bytes("é: a note\n".encode("latin-1"))
    assert cli.main(["api-key", "risk", "--append", str(tmp_path / where)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"mlp: api-key: {problem.format(tmp=tmp_path)}\n"
    assert captured.out == ""  # no key handed out that no file holds
    assert not (tmp_path / "missing").exists()
    assert (tmp_path / "latin-1").read_bytes() == "é: a note\n".encode("latin-1")


def test_append_to_a_file_notepad_saved_keeps_its_keys_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    first = new_key()
    path.write_text(f"\ufeff{key_line('risk', first)}", encoding="utf-8")  # a BOM, no last newline
    assert cli.main(["api-key", "ops", "--append", str(path)]) == 0
    second = capsys.readouterr().out.strip()
    keys = ApiKeys(path, service="toy")
    assert keys.authenticate({"x-api-key": first}) == "risk"
    assert keys.authenticate({"x-api-key": second}) == "ops"
    assert cli.main(["api-keys", str(path)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["risk", "ops"]


def test_api_keys_refuses_an_empty_revoke_and_names_a_file_that_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    path.write_text(key_line("risk", new_key()) + "\n")
    assert cli.main(["api-keys", str(path), "--revoke", ""]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == "mlp: api-keys: --revoke '': name a client or a key id (mlp api-keys FILE lists them)\n"
    )
    assert captured.out == ""
    path.write_bytes(b"\xff\xfe\x00\x00")
    assert cli.main(["api-keys", str(path)]) == 2
    assert capsys.readouterr().err == f"mlp: api-keys: {path}: cannot read it: not UTF-8 text (byte 0)\n"


def test_api_keys_revokes_in_the_file_a_symlink_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "secret" / "keys"
    target.parent.mkdir()
    target.write_text(key_line("risk", new_key()) + "\n" + key_line("ops", new_key()) + "\n")
    link = tmp_path / "keys"
    link.symlink_to(target)
    assert cli.main(["api-keys", str(link), "--revoke", "risk"]) == 0
    capsys.readouterr()
    assert link.is_symlink()
    assert {key.client for key in parse_keys(target.read_text(), "keys").values()} == {"ops"}


def test_api_keys_on_a_read_only_mount_is_one_line_and_leaves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    path = tmp_path / "keys"
    text = key_line("risk", new_key()) + "\n"
    path.write_text(text)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # root writes a chmod-ed directory anyway
    assert cli.main(["api-keys", str(path), "--revoke", "risk"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"mlp: api-keys: {path}: cannot be rewritten in {tmp_path} (Read-only file system); "
        "if it is a mounted Secret, change the Secret instead\n"
    )
    assert captured.out == ""
    assert path.read_text() == text
