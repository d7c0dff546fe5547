"""API keys: the keys file, reading it again when it changes, and what a request must carry."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from servekit import auth
from servekit.errors import ServekitError
from servekit.settings import SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_keys(path: Path, *pairs: tuple[str, str]) -> None:
    # A new file swapped in, as the kubelet updates a Secret volume: a new inode.
    staged = path.with_suffix(".new")
    staged.write_text("".join(f"{auth.key_line(client, key)}\n" for client, key in pairs))
    os.replace(staged, path)


def refused(keys: auth.ApiKeys, headers: dict[str, str]) -> ServekitError:
    with pytest.raises(ServekitError) as caught:
        keys.authenticate(headers)
    assert caught.value.status_code == 401
    return caught.value


def test_a_new_key_is_long_random_and_its_line_holds_only_its_digest() -> None:
    first, second = auth.new_key(), auth.new_key()
    assert first != second
    assert first.startswith(auth.KEY_PREFIX)
    assert len(first) >= 40
    line = auth.key_line("risk-dashboard", first)
    assert first not in line
    assert auth.parse_keys(line, "keys") == {auth.digest(first): auth.Key("risk-dashboard")}


@pytest.mark.parametrize("name", ["", "-starts-with-dash", "has space", "has:colon", "x" * 65])
def test_a_client_name_that_would_break_the_file_or_the_logs_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a client name"):
        auth.key_line(name, auth.new_key())


def test_the_file_may_hold_comments_blank_lines_and_two_keys_of_one_client() -> None:
    old, new = auth.new_key(), auth.new_key()
    text = f"# risk team, rotating\n\n{auth.key_line('risk', old)}\n  {auth.key_line('risk', new)}  \n"
    assert auth.parse_keys(text, "keys") == {
        auth.digest(old): auth.Key("risk"),
        auth.digest(new): auth.Key("risk"),
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("risk:" + "0" * 64, "line 1: not '<client>:sha256:"),
        ("# ok\nrisk:sha256:" + "A" * 64, "line 2: not"),  # upper-case hex is not what mlp writes
        ("risk:sha256:" + "0" * 63, "line 1: not"),
        ("risk key:sha256:" + "0" * 64, "line 1: not"),
        (f"a:sha256:{'0' * 64}\nb:sha256:{'0' * 64}", "line 2: the same key as a's"),
        (f"a:sha256:{'0' * 64}:expires=next-week", "line 1: expires='next-week' is not an ISO 8601 date"),
        (f"a:sha256:{'0' * 64}:expires=2027-02-30", "line 1: expires='2027-02-30' is not"),
        (
            f"a:sha256:{'0' * 64}:expires=2027-03-01T12:00:00",
            "line 1: expires='2027-03-01T12:00:00' has no UTC",
        ),
        (f"a:sha256:{'0' * 64}:expires=", "line 1: not"),
    ],
)
def test_a_bad_line_is_named_by_its_number(text: str, problem: str) -> None:
    with pytest.raises(auth.KeysFileError, match=problem):
        auth.parse_keys(text, "keys")


def test_a_request_is_its_clients_whichever_header_carries_the_key(tmp_path: Path) -> None:
    risk, ops = auth.new_key(), auth.new_key()
    write_keys(tmp_path / "keys", ("risk", risk), ("ops", ops))
    keys = auth.ApiKeys(tmp_path / "keys", service="toy")
    assert keys.clients == {"risk", "ops"}
    assert keys.authenticate({"authorization": f"Bearer {risk}"}) == "risk"
    assert keys.authenticate({"authorization": f"bearer   {risk} "}) == "risk"
    assert keys.authenticate({"x-api-key": ops}) == "ops"


@pytest.mark.parametrize(
    ("headers", "field", "problem"),
    [
        ({}, "header.Authorization", "missing"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "header.Authorization", "scheme 'Basic' is not Bearer"),
        ({"authorization": "Bearer "}, "header.Authorization", "the key is empty"),
        ({"authorization": "Bearer mlp_not-a-key"}, "header.Authorization", "not a key of this service"),
        ({"x-api-key": "mlp_not-a-key"}, "header.X-API-Key", "not a key of this service"),
        ({"x-api-key": "k" * 513}, "header.X-API-Key", "longer than 512 characters"),
    ],
)
def test_a_request_without_a_key_of_ours_gets_a_401_naming_the_header(
    tmp_path: Path, headers: dict[str, str], field: str, problem: str
) -> None:
    write_keys(tmp_path / "keys", ("risk", auth.new_key()))
    error = refused(auth.ApiKeys(tmp_path / "keys", service="toy"), headers)
    (named,) = error.fields
    assert named.field == field
    assert problem in named.problem
    assert error.error == "unauthenticated"
    assert field in error.message


def test_grpc_metadata_names_its_lower_case_keys(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys", ("risk", auth.new_key()))
    keys = auth.ApiKeys(tmp_path / "keys", service="toy")
    with pytest.raises(ServekitError) as caught:
        keys.authenticate({}, where="metadata.")
    assert caught.value.fields[0].field == "metadata.authorization"


def test_a_changed_file_is_read_again_at_the_next_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "keys", Clock()
    old, new = auth.new_key(), auth.new_key()
    write_keys(path, ("risk", old))
    keys = auth.ApiKeys(path, service="toy", clock=clock, reload_seconds=5)
    write_keys(path, ("risk", new), ("ops", auth.new_key()))  # old revoked, new added

    clock.now = 4.9  # not yet checked: the file is not read on every request
    assert keys.authenticate({"x-api-key": old}) == "risk"
    clock.now = 5.0
    with caplog.at_level(logging.INFO, logger="servekit.auth"):
        assert keys.authenticate({"x-api-key": new}) == "risk"
    assert "not a key of this service" in refused(keys, {"x-api-key": old}).message
    assert "clients added: ops; removed: none" in caplog.text


def test_a_file_that_breaks_leaves_the_keys_read_last_in_force_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "keys", Clock()
    key = auth.new_key()
    write_keys(path, ("risk", key))
    keys = auth.ApiKeys(path, service="toy", clock=clock, reload_seconds=1)
    path.write_text("risk:sha256:not-hex\n")
    with caplog.at_level(logging.ERROR, logger="servekit.auth"):
        for second in (1, 2, 3):
            clock.now = second
            assert keys.authenticate({"x-api-key": key}) == "risk"
        path.unlink()
        clock.now = 4
        assert keys.authenticate({"x-api-key": key}) == "risk"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # the file went from invalid to missing: still one failure
    assert "line 1: not" in errors[0]
    assert "keys read last stay in force" in errors[0]

    write_keys(path, ("ops", other := auth.new_key()))
    clock.now = 5
    assert keys.authenticate({"x-api-key": other}) == "ops"


def test_an_empty_file_refuses_everyone_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "keys").write_text("# every key revoked\n")
    with caplog.at_level(logging.WARNING, logger="servekit.auth"):
        keys = auth.ApiKeys(tmp_path / "keys", service="toy")
    assert "holds no keys" in caplog.text
    refused(keys, {"x-api-key": auth.new_key()})


def test_no_file_named_means_no_key_needed() -> None:
    assert auth.api_keys("toy", "") is None


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read it"), ("nonsense\n", "line 1: not")])
def test_a_file_unusable_at_start_is_a_settings_error_naming_the_variable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError) as caught:
        auth.api_keys("toy", str(path))
    assert f"toy settings: TOY_API_KEYS_FILE='{path}'" in str(caught.value)
    assert problem in str(caught.value)


def test_an_expiry_is_a_utc_date_or_a_date_and_time_with_its_offset() -> None:
    key = auth.new_key()
    midnight = datetime(2027, 3, 1, tzinfo=UTC)
    line = auth.key_line("risk", key, midnight)
    assert line.endswith(":expires=2027-03-01")
    assert auth.parse_keys(line, "keys") == {auth.digest(key): auth.Key("risk", midnight)}
    noon_in_paris = auth.key_line("risk", key) + ":expires=2027-03-01T13:00:00+01:00"
    [parsed] = auth.parse_keys(noon_in_paris, "keys").values()
    assert parsed.expires == datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert auth.key_line("risk", key, parsed.expires).endswith(":expires=2027-03-01T12:00:00Z")


@pytest.mark.parametrize(
    ("now", "days", "expected"),
    [
        (datetime(2026, 12, 2, 8, 30, tzinfo=UTC), 90, datetime(2027, 3, 3, tzinfo=UTC)),  # rounded up
        (datetime(2026, 12, 2, tzinfo=UTC), 90, datetime(2027, 3, 2, tzinfo=UTC)),  # already a midnight
        (datetime(2026, 12, 2, 23, 59, tzinfo=UTC), 0.5, datetime(2026, 12, 4, tzinfo=UTC)),
    ],
)
def test_a_lifetime_in_days_ends_at_the_next_utc_midnight(
    now: datetime, days: float, expected: datetime
) -> None:
    assert auth.expires_in(days, now) == expected


def test_a_key_is_refused_from_its_expiry_on_naming_the_date(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    expiring, lasting = auth.new_key(), auth.new_key()
    path.write_text(
        auth.key_line("contractor", expiring, datetime(2027, 3, 1, tzinfo=UTC))
        + "\n"
        + auth.key_line("risk", lasting)
        + "\n"
    )
    now = Clock()
    now.now = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp()
    keys = auth.ApiKeys(path, service="toy", wall_clock=now)
    assert keys.authenticate({"x-api-key": expiring}) == "contractor"
    now.now += 1
    error = refused(keys, {"x-api-key": expiring})
    assert error.fields[0].field == "header.X-API-Key"
    assert "contractor's key expired on 2027-03-01: ask for a new one" in error.fields[0].problem
    assert keys.authenticate({"x-api-key": lasting}) == "risk"  # no expiry: never refused by date


def test_each_client_whose_keys_all_expire_is_given_its_last_expiry() -> None:
    march, june = datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    lines = [
        auth.key_line("rotating", auth.new_key(), march),  # the old key and the new one
        auth.key_line("rotating", auth.new_key(), june),
        auth.key_line("contractor", auth.new_key(), march),
        auth.key_line("service-account", auth.new_key(), march),
        auth.key_line("service-account", auth.new_key()),  # one key that never expires: left out
    ]
    keys = auth.parse_keys("\n".join(lines), "keys")
    assert auth.last_expiries(keys) == {"rotating": june, "contractor": march}


def test_expired_lines_are_named_in_the_log_when_the_file_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    past = datetime(2020, 1, 1, tzinfo=UTC)
    path.write_text(
        auth.key_line("gone", auth.new_key(), past) + "\n" + auth.key_line("risk", auth.new_key())
    )
    with caplog.at_level(logging.WARNING, logger="servekit.auth"):
        auth.ApiKeys(path, service="toy")
    assert "holds expired keys, which are refused, of: gone (take them out" in caplog.text
    assert "risk" not in caplog.text
