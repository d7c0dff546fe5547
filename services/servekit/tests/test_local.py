"""Ports for local servers: free, outside the kernel's ephemeral range, never handed out twice."""

from __future__ import annotations

import itertools
import socket

import pytest

from servekit import local


def ephemeral_ports() -> range:
    low, high = map(int, local.EPHEMERAL_PORTS.read_text().split())
    return range(low, high + 1)


def test_the_default_range_is_below_the_ephemeral_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(local.PORTS_VARIABLE, raising=False)
    ports = local.port_range()
    assert len(ports) >= 1000
    assert ports.stop - 1 < ephemeral_ports().start
    assert ports.start >= 1024


def test_free_ports_are_free_distinct_and_in_the_configured_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, "21000-21049")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 21000))
        taken.listen()
        ports = [local.free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(21001 <= port <= 21049 for port in ports)
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_an_exhausted_block_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, "21100-21101")
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 21100))
        second.bind(("127.0.0.1", 21101))
        with pytest.raises(RuntimeError, match=r"no free port left in 21100-21101 \(\$MLP_FREE_PORTS\)"):
            local.free_port()


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_worker_blocks_are_disjoint_and_inside_the_range(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, "20000-27999")
    blocks = []
    for index in range(count):
        low, high = map(int, local.split_ports(index, count).split("-"))
        blocks.append(range(low, high + 1))
    assert all(len(block) == 8000 // count for block in blocks)
    assert all(a.stop <= b.start for a, b in itertools.pairwise(blocks))
    assert blocks[0].start == 20000
    assert blocks[-1].stop - 1 <= 27999


@pytest.mark.parametrize(
    ("configured", "says"),
    [
        ("9400", "not LOW-HIGH"),
        ("9499-9400", "empty, its LOW is above its HIGH"),
        ("low-high", "not LOW-HIGH"),
        ("0-10", "ports are 1 to 65535"),
    ],
)
def test_a_configured_range_it_cannot_use_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, configured: str, says: str
) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, configured)
    with pytest.raises(local.PortRangeError, match=f"^MLP_FREE_PORTS={configured}: {says}"):
        local.free_port()
    monkeypatch.setenv(local.PORTS_VARIABLE, " 21000-21009 ")
    assert local.port_range() == range(21000, 21010)
