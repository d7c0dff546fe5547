"""``mlp api-key``: a key shown once, and a keys-file line the services read."""

from __future__ import annotations

import stat
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from servekit import auth, cli


def test_the_key_goes_to_stdout_and_only_its_digest_to_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["api-key", "risk-dashboard"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith(auth.KEY_PREFIX)
    [expires] = auth.parse_keys(err, "stderr").values()
    assert err.strip() == auth.key_line("risk-dashboard", key, expires.expires)
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
    keys = auth.ApiKeys(path, service="toy")
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
    expiries = auth.ApiKeys(path, service="toy").expiries()
    assert set(expiries) == {"risk", "ops", "short"}
    now = datetime.now(UTC)
    assert timedelta(days=90) <= expiries["risk"] - now <= timedelta(days=91)
    assert expiries["ops"] == datetime(2099, 1, 1, tzinfo=UTC)
    assert timedelta(days=1) <= expiries["short"] - now <= timedelta(days=2)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--expires", "2020-01-01"], "already past"),
        (["--expires", "soon"], "is not an ISO 8601 date"),
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
    assert captured.out == ""


def test_api_keys_lists_prunes_and_revokes_by_client_or_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    for args in (["risk"], ["risk", "--expires-in", "200"], ["ops", "--no-expiry"]):
        assert cli.main(["api-key", *args, "--append", str(path)]) == 0
    with path.open("a") as written:
        written.write(auth.key_line("gone", auth.new_key(), datetime(2020, 1, 1, tzinfo=UTC)) + "\n")
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
    remaining = {
        auth.key_id(digest): key.client for digest, key in auth.parse_keys(path.read_text(), "k").items()
    }
    assert remaining == {rows[1][1]: "risk"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_api_keys_says_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys"
    assert cli.main(["api-keys", str(path)]) == 2
    assert "No such file" in capsys.readouterr().err
    path.write_text(auth.key_line("risk", auth.new_key()) + "\n")
    assert cli.main(["api-keys", str(path), "--revoke", "nobody"]) == 2
    assert "holds no key of a client or with an id 'nobody'" in capsys.readouterr().err
    assert cli.main(["api-keys", str(path), "--prune"]) == 0
    assert "holds no expired key" in capsys.readouterr().err
    path.write_text("nonsense\n")
    assert cli.main(["api-keys", str(path)]) == 2
    assert "line 1: not" in capsys.readouterr().err
