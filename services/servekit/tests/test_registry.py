"""``registry.local_port``: every local tool finds ``make up``'s services through one offset."""

from __future__ import annotations

import pytest
from toy import TOY as SPEC

from servekit import cli, registry


def test_without_an_offset_the_port_is_the_services_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(registry.PORT_OFFSET_ENV, raising=False)
    assert registry.local_port(SPEC) == SPEC.local_port
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, "")
    assert registry.local_port(SPEC) == SPEC.local_port


@pytest.mark.parametrize("offset", ["100", " 100 ", "-100"])
def test_the_offset_is_added(monkeypatch: pytest.MonkeyPatch, offset: str) -> None:
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, offset)
    assert registry.local_port(SPEC) == SPEC.local_port + int(offset)


@pytest.mark.parametrize(
    ("offset", "problem"),
    [("ten", "'ten' is not an integer"), ("1.5", "'1.5' is not an integer"), ("70000", "outside 1024-65535")],
)
def test_a_bad_offset_says_what_is_wrong(monkeypatch: pytest.MonkeyPatch, offset: str, problem: str) -> None:
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, offset)
    with pytest.raises(registry.PortOffsetError, match=problem):
        registry.local_port(SPEC)


def test_a_port_below_1024_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, str(1000 - SPEC.local_port))
    with pytest.raises(registry.PortOffsetError, match=f"puts {SPEC.name} on port 1000"):
        registry.local_port(SPEC)


@pytest.fixture
def only_the_toy_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.registry, "available", lambda: [SPEC.name])
    monkeypatch.setattr(cli.registry, "get_service", lambda name: SPEC)


@pytest.mark.usefixtures("only_the_toy_service")
def test_mlp_services_lists_the_offset_ports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, "100")
    assert cli.main(["services"]) == 0
    assert capsys.readouterr().out == f"{SPEC.name}\t{SPEC.local_port + 100}\t{SPEC.title}\n"


@pytest.mark.usefixtures("only_the_toy_service")
def test_mlp_services_with_a_bad_offset_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(registry.PORT_OFFSET_ENV, "ten")
    assert cli.main(["services"]) == 2
    assert capsys.readouterr().err == "mlp: MLP_PORT_OFFSET='ten' is not an integer\n"


def test_a_mistyped_service_name_suggests_the_installed_one_it_is_close_to() -> None:
    known = ", ".join(registry.available())
    with pytest.raises(LookupError) as typo:
        registry.get_service("bankchrn")
    assert str(typo.value) == f"unknown service 'bankchrn' (known: {known}); did you mean 'bankchurn'?"
    with pytest.raises(LookupError) as unlike:
        registry.get_service("nope")
    assert str(unlike.value) == f"unknown service 'nope' (known: {known})"
