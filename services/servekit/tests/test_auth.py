"""API keys: the keys file, reading it again when it changes, and what a request must carry."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from servekit.auth.api_keys import ApiKeys, api_keys
from servekit.auth.credentials import credential_headers
from servekit.auth.expiry import LATEST_EXPIRY, expires_in, last_expiries
from servekit.auth.key_lines import (
    KEY_PREFIX,
    KeysFileError,
    digest,
    key_line,
    new_key,
    parse_keys,
    read_keys_text,
)
from servekit.auth.scopes import Key
from servekit.errors import ServekitError
from servekit.metrics.collectors import ServiceMetrics
from servekit.settings import SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_keys(path: Path, *pairs: tuple[str, str]) -> None:
    # A new file swapped in, as the kubelet updates a Secret volume: a new inode.
    staged = path.with_suffix(".new")
    staged.write_text("".join(f"{key_line(client, key)}\n" for client, key in pairs))
    os.replace(staged, path)


def refused(keys: ApiKeys, headers: dict[str, str]) -> ServekitError:
    with pytest.raises(ServekitError) as caught:
        keys.authenticate(headers)
    assert caught.value.status_code == 401
    return caught.value


def test_a_new_key_is_long_random_and_its_line_holds_only_its_digest() -> None:
    first, second = new_key(), new_key()
    assert first != second
    assert first.startswith(KEY_PREFIX)
    assert len(first) >= 40
    line = key_line("risk-dashboard", first)
    assert first not in line
    assert parse_keys(line, "keys") == {digest(first): Key("risk-dashboard")}


@pytest.mark.parametrize("name", ["", "-starts-with-dash", "has space", "has:colon", "x" * 65])
def test_a_client_name_that_would_break_the_file_or_the_logs_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a client name"):
        key_line(name, new_key())


def test_the_file_may_hold_comments_blank_lines_and_two_keys_of_one_client() -> None:
    old, new = new_key(), new_key()
    text = f"# risk team, rotating\n\n{key_line('risk', old)}\n  {key_line('risk', new)}  \n"
    assert parse_keys(text, "keys") == {
        digest(old): Key("risk"),
        digest(new): Key("risk"),
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("risk:" + "0" * 64, "line 1: not '<client>:sha256:"),
        ("# ok\nrisk:sha256:" + "A" * 64, "line 2: not"),  # upper-case hex is not what mlp writes
        ("risk:sha256:" + "0" * 63, "line 1: not"),
        ("risk key:sha256:" + "0" * 64, "line 1: not"),
        (f"a:sha256:{'0' * 64}\nb:sha256:{'0' * 64}", "line 2: the same key as a's"),
        (f"a:sha256:{'0' * 64}:expires=next-week", "line 1: expires='next-week' is not a date we read"),
        (f"a:sha256:{'0' * 64}:expires=20270301", "line 1: expires='20270301' is not a date we read"),
        (f"a:sha256:{'0' * 64}:expires=2027-02-30", "line 1: expires='2027-02-30' is not"),
        (
            f"a:sha256:{'0' * 64}:expires=2027-03-01T12:00:00",
            "line 1: expires='2027-03-01T12:00:00' has no UTC",
        ),
        (f"a:sha256:{'0' * 64}:expires=", "line 1: not"),
        # Past the calendar's end once in UTC: an OverflowError, not a ValueError, when converted.
        (
            f"a:sha256:{'0' * 64}:expires=9999-12-31T23:00:00-05:00",
            "line 1: expires='9999-12-31T23:00:00-05:00' is out of range: a key must expire before 9000",
        ),
        (f"a:sha256:{'0' * 64}:expires=9000-01-01", "line 1: expires='9000-01-01' is out of range"),
        (
            f"a:sha256:{'0' * 64}:expires=0001-01-01T00:00:00+01:00",
            "line 1: expires='0001-01-01T00:00:00[+]01:00' is out of range: before 0001-01-02",
        ),
    ],
)
def test_a_bad_line_is_named_by_its_number(text: str, problem: str) -> None:
    with pytest.raises(KeysFileError, match=problem):
        parse_keys(text, "keys")


def test_a_request_is_its_clients_whichever_header_carries_the_key(tmp_path: Path) -> None:
    risk, ops = new_key(), new_key()
    write_keys(tmp_path / "keys", ("risk", risk), ("ops", ops))
    keys = ApiKeys(tmp_path / "keys", service="toy")
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
    write_keys(tmp_path / "keys", ("risk", new_key()))
    error = refused(ApiKeys(tmp_path / "keys", service="toy"), headers)
    (named,) = error.fields
    assert named.field == field
    assert problem in named.problem
    assert error.error == "unauthenticated"
    assert field in error.message


def test_grpc_metadata_names_its_lower_case_keys(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys", ("risk", new_key()))
    keys = ApiKeys(tmp_path / "keys", service="toy")
    with pytest.raises(ServekitError) as caught:
        keys.authenticate({}, where="metadata.")
    assert caught.value.fields[0].field == "metadata.authorization"


def test_a_changed_file_is_read_again_at_the_next_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "keys", Clock()
    old, new = new_key(), new_key()
    write_keys(path, ("risk", old))
    keys = ApiKeys(path, service="toy", clock=clock, reload_seconds=5)
    write_keys(path, ("risk", new), ("ops", new_key()))  # old revoked, new added

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
    key = new_key()
    write_keys(path, ("risk", key))
    keys = ApiKeys(path, service="toy", clock=clock, reload_seconds=1)
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

    write_keys(path, ("ops", other := new_key()))
    clock.now = 5
    assert keys.authenticate({"x-api-key": other}) == "ops"


def test_a_revocation_the_service_cannot_read_is_exported_until_a_file_that_reads_replaces_it(
    tmp_path: Path,
) -> None:
    """The keys read last stay in force (availability), so a key revoked in a bad file still works:
    ``<svc>_api_keys_reload_failing`` says so at every scrape, without waiting for a request."""
    path, clock = tmp_path / "keys", Clock()
    leaked, kept = new_key(), new_key()
    write_keys(path, ("risk", kept), ("leaky", leaked))
    keys = ApiKeys(path, service="toy", clock=clock, reload_seconds=1)
    metrics = ServiceMetrics("toy")
    metrics.watch_api_keys(keys)

    def failing() -> float | None:
        return metrics.registry.get_sample_value(metrics.names.api_keys_reload_failing)

    assert failing() == 0
    # In one edit the leaked key's line is taken out and a line of upper-case hex is added.
    revoked = f"{key_line('risk', kept)}\nops:sha256:{digest(new_key()).upper()}\n"
    path.write_text(revoked)
    clock.now = 1
    assert failing() == 1
    assert keys.reload_failing
    assert keys.authenticate({"x-api-key": leaked}) == "leaky"  # the documented fail-safe, now seen

    clock.now = 1.5
    path.write_text(f"{key_line('risk', kept)}\n")
    assert failing() == 1  # checked at most every reload_seconds
    clock.now = 2
    assert failing() == 0
    refused(keys, {"x-api-key": leaked})
    assert b"toy_api_keys_reload_failing 0.0" in metrics.exposition()


def test_an_empty_file_refuses_everyone_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "keys").write_text("# every key revoked\n")
    with caplog.at_level(logging.WARNING, logger="servekit.auth"):
        keys = ApiKeys(tmp_path / "keys", service="toy")
    assert "holds no keys" in caplog.text
    refused(keys, {"x-api-key": new_key()})


def test_no_file_named_means_no_key_needed() -> None:
    assert api_keys("toy", "") is None


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read it"), ("nonsense\n", "line 1: not")])
def test_a_file_unusable_at_start_is_a_settings_error_naming_the_variable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError) as caught:
        api_keys("toy", str(path))
    assert f"toy settings: TOY_API_KEYS_FILE='{path}'" in str(caught.value)
    assert problem in str(caught.value)


def test_an_expiry_is_a_utc_date_or_a_date_and_time_with_its_offset() -> None:
    key = new_key()
    midnight = datetime(2027, 3, 1, tzinfo=UTC)
    line = key_line("risk", key, midnight)
    assert line.endswith(":expires=2027-03-01")
    assert parse_keys(line, "keys") == {digest(key): Key("risk", midnight)}
    noon_in_paris = key_line("risk", key) + ":expires=2027-03-01T13:00:00+01:00"
    [parsed] = parse_keys(noon_in_paris, "keys").values()
    assert parsed.expires == datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert key_line("risk", key, parsed.expires).endswith(":expires=2027-03-01T12:00:00Z")


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
    assert expires_in(days, now) == expected


def test_a_key_is_refused_from_its_expiry_on_naming_the_date(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    expiring, lasting = new_key(), new_key()
    path.write_text(
        key_line("contractor", expiring, datetime(2027, 3, 1, tzinfo=UTC))
        + "\n"
        + key_line("risk", lasting)
        + "\n"
    )
    now = Clock()
    now.now = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp()
    keys = ApiKeys(path, service="toy", wall_clock=now)
    assert keys.authenticate({"x-api-key": expiring}) == "contractor"
    now.now += 1
    error = refused(keys, {"x-api-key": expiring})
    assert error.fields[0].field == "header.X-API-Key"
    assert "contractor's key expired on 2027-03-01: ask for a new one" in error.fields[0].problem
    assert keys.authenticate({"x-api-key": lasting}) == "risk"  # no expiry: never refused by date


def test_each_client_whose_keys_all_expire_is_given_its_last_expiry() -> None:
    march, june = datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    lines = [
        key_line("rotating", new_key(), march),  # the old key and the new one
        key_line("rotating", new_key(), june),
        key_line("contractor", new_key(), march),
        key_line("service-account", new_key(), march),
        key_line("service-account", new_key()),  # one key that never expires: left out
    ]
    keys = parse_keys("\n".join(lines), "keys")
    assert last_expiries(keys) == {"rotating": june, "contractor": march}


def test_expired_lines_are_named_in_the_log_when_the_file_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    past = datetime(2020, 1, 1, tzinfo=UTC)
    path.write_text(key_line("gone", new_key(), past) + "\n" + key_line("risk", new_key()))
    with caplog.at_level(logging.WARNING, logger="servekit.auth"):
        ApiKeys(path, service="toy")
    assert "holds expired keys, which are refused, of: gone (take them out" in caplog.text
    assert "risk" not in caplog.text


def windows(key: str, width: int = 6) -> set[str]:
    """Every run of ``width`` characters of ``key``: none may be repeated back to whoever sent it."""
    return {key[start : start + width] for start in range(len(key) - width + 1)}


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        ("{key}", "the scheme is missing: send 'Authorization: Bearer <key>', not the key alone"),
        ("{key} trailing", "the scheme is missing"),
        ("Token{key}", "the scheme is missing"),
        ("Key {key}", "not 'Bearer <key>': send 'Authorization: Bearer <key>'"),
        ("{key_body} {key}", "not 'Bearer <key>'"),
    ],
)
def test_a_key_sent_without_bearer_is_refused_without_repeating_any_of_it(
    tmp_path: Path, sent: str, problem: str
) -> None:
    key = new_key()
    write_keys(tmp_path / "keys", ("risk", key))
    keys = ApiKeys(tmp_path / "keys", service="toy")
    for where in ("header.", "metadata."):
        with pytest.raises(ServekitError) as caught:
            keys.authenticate({"authorization": sent.format(key=key, key_body=key[4:24])}, where=where)
        error = caught.value
        assert problem in error.fields[0].problem
        said = f"{error.message} {error.fields[0].problem}"
        assert not {run for run in windows(key) if run in said}


def test_a_registered_scheme_is_named_back(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys", ("risk", new_key()))
    error = refused(ApiKeys(tmp_path / "keys", service="toy"), {"authorization": "Digest x=1"})
    assert "scheme 'Digest' is not Bearer" in error.fields[0].problem


def test_an_authorization_of_another_scheme_does_not_hide_an_x_api_key(tmp_path: Path) -> None:
    key = new_key()
    write_keys(tmp_path / "keys", ("risk", key))
    keys = ApiKeys(tmp_path / "keys", service="toy")
    assert keys.authenticate({"authorization": "Basic dXNlcjpwYXNz", "x-api-key": key}) == "risk"
    assert keys.authenticate({"authorization": f"Bearer {key}", "x-api-key": key}) == "risk"  # the same key
    error = refused(keys, {"authorization": f"Bearer {key}", "x-api-key": new_key()})
    assert error.fields[0].field == "header.X-API-Key"
    assert "a key other than Authorization's: send one key" in error.fields[0].problem


@pytest.mark.parametrize(
    ("sent", "where", "field"),
    [
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "header.", "header.Authorization"),
        ([("X-API-Key", "a"), ("x-api-key", "a"), ("x-api-key", "b")], "header.", "header.X-API-Key"),
        ([("x-api-key", "a"), ("x-api-key", "b")], "metadata.", "metadata.x-api-key"),
    ],
)
def test_a_credential_header_sent_more_than_once_is_refused_saying_how_often(
    sent: list[tuple[str, str]], where: str, field: str
) -> None:
    with pytest.raises(ServekitError) as caught:
        credential_headers(sent, where)
    assert caught.value.status_code == 401
    assert caught.value.fields[0].field == field
    assert caught.value.fields[0].problem == f"sent {len(sent)} times: send it once"


def test_credential_headers_are_read_by_lower_case_name_others_left_out() -> None:
    sent = [("Authorization", "Bearer k"), ("x-request-id", "r"), ("X-Api-Key", "k")]
    assert credential_headers(sent) == {"authorization": "Bearer k", "x-api-key": "k"}


@pytest.mark.parametrize("days", [3_000_000, 1e9, float("inf"), float("nan")])
def test_a_lifetime_past_the_year_9000_or_no_number_is_a_value_error(days: float) -> None:
    with pytest.raises(ValueError, match=r"must expire before 9000-01-01|not a number of days"):
        expires_in(days, datetime(2026, 12, 2, tzinfo=UTC))


def test_the_longest_lifetime_still_ends_before_the_year_9000() -> None:
    now = datetime(2026, 12, 2, 8, tzinfo=UTC)
    longest = (LATEST_EXPIRY - now).days - 1
    assert expires_in(longest - 1, now) < LATEST_EXPIRY
    with pytest.raises(ValueError, match="must expire before"):
        expires_in(longest + 1, now)


def test_a_file_read_again_that_cannot_be_used_in_any_way_never_fails_a_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, clock = tmp_path / "keys", Clock()
    key = new_key()
    write_keys(path, ("risk", key))
    keys = ApiKeys(path, service="toy", clock=clock, reload_seconds=1)
    staged = tmp_path / "keys.new"
    staged.write_text(f"{key_line('carol', new_key())}:expires=9999-12-31T23:00:00-05:00\n")
    staged.replace(path)
    with caplog.at_level(logging.ERROR, logger="servekit.auth"):
        clock.now = 1
        assert keys.authenticate({"x-api-key": key}) == "risk"
        assert keys.expiries() == {}  # what a scrape reads
        # Whatever else reading it may raise: the keys read last stay in force, not a 500.
        monkeypatch.setattr("servekit.auth.api_keys.parse_keys", lambda text, source: 1 / 0)
        write_keys(path, ("risk", key))
        clock.now = 2
        assert keys.authenticate({"x-api-key": key}) == "risk"
        assert keys.reload_failing  # the file read this time went through the failing parse
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "keys read last stay in force" in errors[0]
    assert "line 1: expires='9999-12-31T23:00:00-05:00' is out of range" in errors[0]


def test_a_file_that_starts_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text(f"\ufeff{key_line('risk', key)}\n", encoding="utf-8")  # as Notepad saves it
    assert ApiKeys(path, service="toy").authenticate({"x-api-key": key}) == "risk"
    assert read_keys_text(path) == f"{key_line('risk', key)}\n"


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"\xff\xfer\x00i\x00")
    with pytest.raises(KeysFileError, match=f"{path}: cannot read it: not UTF-8 text"):
        read_keys_text(path)


def test_a_reload_that_leaves_no_key_is_a_warning_and_is_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "keys", Clock()
    key = new_key()
    write_keys(path, ("alice", key), ("bob", new_key()))
    keys = ApiKeys(path, service="toy", clock=clock, reload_seconds=1)
    write_keys(path)  # every key revoked: an operator may mean it
    clock.now = 1
    with caplog.at_level(logging.INFO, logger="servekit.auth"):
        refused(keys, {"x-api-key": key})
    (reloaded,) = [r for r in caplog.records if "reloaded" in r.getMessage()]
    assert reloaded.levelno == logging.WARNING
    assert "removed: alice, bob" in reloaded.getMessage()
    assert "every request that needs one is now refused" in reloaded.getMessage()
