"""Resident memory sampled while a benchmark runs: of one process, or of it and its workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from servekit.bench import memory

MIB = 1024 * 1024


def test_the_sampler_sees_this_process_grow() -> None:
    with memory.MemorySampler(os.getpid(), interval=0.01) as sampler:
        while not sampler.samples:
            time.sleep(0.001)
        before = memory.resident_bytes(os.getpid())
        ballast = bytearray(64 * MIB)
        ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page, so it is resident
        after = memory.resident_bytes(os.getpid())
    assert after - before > 60 * MIB
    assert len(sampler.samples) >= 2
    assert sampler.samples[-1][1] - sampler.samples[0][1] > 60 * MIB  # the last sample is taken on leaving
    assert [t for t, _ in sampler.samples] == sorted(t for t, _ in sampler.samples)
    del ballast


def test_a_process_tree_counts_its_workers_memory_and_a_gone_one_not() -> None:
    # A worker that makes 64 MiB resident, says so, and waits to be told to end.
    code = (
        "import sys; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); "
        "print('ready', flush=True); sys.stdin.readline()"
    )
    alone = memory.tree_resident_bytes(os.getpid())
    worker = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        assert worker.pid in memory.descendants(os.getpid())
        with_worker = memory.tree_resident_bytes(os.getpid())
        assert with_worker - alone > 64 * MIB
        assert with_worker - memory.resident_bytes(os.getpid()) >= memory.resident_bytes(worker.pid)
    finally:
        worker.communicate("\n", timeout=30)
    deadline = time.monotonic() + 10
    while worker.pid in memory.descendants(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.pid not in memory.descendants(os.getpid())
    assert memory.tree_resident_bytes(os.getpid()) - alone < 32 * MIB
