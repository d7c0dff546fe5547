"""Chunks scored by worker processes, handed back in the file's order; workers only where they pay."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from spawned_jobs import FailsPastFirstChunk, OutOfMemoryPastFirstChunk, rows_and_process

from servekit.scoring import pool
from servekit.scoring.formats import Chunk
from servekit.scoring.pool import ChunkOutOfMemoryError, ScoringPool, usable_cpus


def chunks(sizes: list[int]) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Chunks of the given numbers of rows, as read typed and as written."""
    made = []
    for size in sizes:
        written = pd.DataFrame({"x": ["1.5"] * size, "id": ["007"] * size})
        made.append((written.astype({"x": float}), written))
    return made


def chunks_left(count: float) -> Callable[[Chunk], float]:
    """A file foreseen to hold ``count`` chunks past its first."""
    return lambda first: count


def test_workers_score_the_chunks_past_the_first_and_hand_them_back_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)  # however quick the job
    sizes = [3, 2, 4, 1, 5, 2, 3, 1, 2]  # more than the four chunks handed out at once
    with ScoringPool(rows_and_process, workers=2, chunks_left=chunks_left(10**6)) as scoring:
        scored = list(scoring.scored(chunks(sizes)))
        assert scoring.started == 2
    first_rows = [1 + sum(sizes[:i]) for i in range(len(sizes))]
    assert [(first, rows) for first, rows, _ in scored] == list(zip(first_rows, sizes, strict=True))
    processes = [process for _, _, process in scored]
    assert processes[0] == os.getpid()  # scored here while deciding whether workers pay
    assert os.getpid() not in processes[1:]
    assert len(set(processes[1:])) <= 2


def test_workers_start_only_for_a_file_whose_rest_takes_longer_here_than_they_need_to_pay() -> None:
    sizes = [3, 2, 4]
    # Foreseen: 3.5 chunks more, each scored in microseconds.
    with ScoringPool(rows_and_process, workers=2, chunks_left=chunks_left(3.5)) as scoring:
        scored = list(scoring.scored(chunks(sizes)))
        assert scoring.started == 0
    assert [(first, rows, process) for first, rows, process in scored] == [
        (1, 3, os.getpid()),
        (4, 2, os.getpid()),
        (6, 4, os.getpid()),
    ]
    # The same first chunk of a file of a terabyte: 40 billion more chunks would take hours here.
    with ScoringPool(rows_and_process, workers=2, chunks_left=chunks_left(4e10)) as scoring:
        assert len(list(scoring.scored(chunks(sizes)))) == 3
        assert scoring.started == 2


def test_one_worker_scores_every_chunk_here_and_an_empty_file_nothing() -> None:
    with ScoringPool(rows_and_process, workers=1, chunks_left=chunks_left(10**6)) as scoring:
        assert [p for *_, p in scoring.scored(chunks([2, 2, 2]))] == [os.getpid()] * 3
        assert list(scoring.scored([])) == []
        assert scoring.started == 0
    with pytest.raises(ValueError, match="workers must be at least 1, not 0"):
        ScoringPool(rows_and_process, workers=0, chunks_left=chunks_left(0))


def test_a_workers_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)
    with ScoringPool(FailsPastFirstChunk(), workers=2, chunks_left=chunks_left(10**6)) as scoring:
        scored = scoring.scored(chunks([2, 2, 2]))
        assert next(scored) == 2
        with pytest.raises(ValueError, match="cannot score the chunk from row 3"):
            next(scored)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_chunk_out_of_memory_names_its_rows_in_whichever_process_scored_it(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # numpy's MemoryError was a 55-line traceback and exit 1, which a scheduler retries to no end.
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)
    with ScoringPool(OutOfMemoryPastFirstChunk(), workers, chunks_left=chunks_left(10**6)) as scoring:
        scored = scoring.scored(chunks([2, 3, 2]))
        assert next(scored) == 2
        with pytest.raises(ChunkOutOfMemoryError) as raised:
            next(scored)
    assert (raised.value.first_row, raised.value.rows) == (3, 3)
    assert str(raised.value) == (
        "out of memory scoring rows 3 to 5 (a chunk of 3 rows); run with a smaller --chunk-rows "
        "(or fewer --workers)"
    )


#: A run whose worker is killed as the OOM killer kills it, its other worker stuck: ``mlp score``'s end.
KILLED_DRIVER = """
import sys

sys.path.insert(0, {tests!r})
import pandas as pd
from spawned_jobs import DiesOnRow
from servekit.scoring import pool

if __name__ == "__main__":  # a spawned worker imports this file too
    pool.WORKERS_PAY_AFTER_SECONDS = 0.0
    chunk = pd.DataFrame({{"x": [1.5, 2.5]}})
    try:
        with pool.ScoringPool(DiesOnRow(3), workers=2, chunks_left=lambda first: 1e6) as scoring:
            for _ in scoring.scored([(chunk, chunk)] * 8):
                pass
    except pool.WorkerDiedError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
"""


def test_a_worker_killed_ends_the_run_with_one_line_and_its_other_workers(tmp_path: Path) -> None:
    # A worker the OOM killer ended: the other, not ended by the pool's SIGTERM, held the run for
    # hours (no SIGTERM ended it), or it ended in a BrokenProcessPool traceback and exit 1.
    driver = tmp_path / "driver.py"
    driver.write_text(KILLED_DRIVER.format(tests=str(Path(__file__).parent)))
    run = subprocess.Popen(
        [sys.executable, str(driver)], start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        err = "did not end"
    finally:
        # A worker SIGKILLed a moment ago may still be exiting (its command line already gone, not
        # yet a zombie): what is left is what is still there after a bounded wait.
        deadline = time.monotonic() + 10
        while (left := _session(run.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # what is left of it: none, when it ended well
        run.wait()
    assert run.returncode == 2, err
    assert re.fullmatch(
        r"worker process \d+ was killed by SIGKILL while rows 3 to \d+ were scored; most likely out of "
        r"memory \(the kernel's OOM killer, a container's memory limit\): run with fewer --workers or a "
        r"smaller --chunk-rows\n",
        err,
    ), err
    assert left == []  # the stuck worker was killed, not left running


@pytest.mark.parametrize(
    ("exitcode", "rows", "said"),
    [
        (-signal.SIGSEGV, (3, 8), "worker process 7 was killed by SIGSEGV while rows 3 to 8 were scored; "),
        (1, (3, 8), "worker process 7 exited with status 1 while rows 3 to 8 were scored; "),
        (None, None, "worker process 7 ended; "),  # as it started, before it was handed a chunk
    ],
)
def test_a_worker_that_died_otherwise_is_said_as_it_died(
    exitcode: int | None, rows: tuple[int, int] | None, said: str
) -> None:
    died = pool.WorkerDiedError(7, exitcode, rows)
    assert not died.out_of_memory
    assert str(died) == f"{said}the run stopped the others"
    killed = pool.WorkerDiedError(7, -signal.SIGKILL, None)
    assert killed.out_of_memory
    assert str(killed).startswith("worker process 7 was killed by SIGKILL; most likely out of memory")


class _Ended:
    """A worker that has ended, which the executor's own thread reaped first: its sentinel is ready
    at once, and its exit code is there only once that thread has stored it, ``after`` seconds on."""

    def __init__(self, after: float, ended: bool = True) -> None:
        read, write = os.pipe()
        if ended:
            os.close(write)  # what a process's end does to its sentinel
        self._pipe = (read, None if ended else write)
        self.sentinel = read
        self._known_at = time.monotonic() + after

    @property
    def exitcode(self) -> int | None:
        return -signal.SIGKILL if time.monotonic() >= self._known_at else None

    def close(self) -> None:
        for end in self._pipe:
            if end is not None:
                os.close(end)


def test_a_worker_another_thread_reaped_is_still_said_as_it_died() -> None:
    """The executor's thread joins a broken pool's workers while the run reads how they ended: a
    process is reaped once, so the run's join found no child and read no code, and a worker the
    OOM killer ended was 'a worker process ended' (a fresh clone's CI run, 2026-12-07)."""
    ended = _Ended(after=0.3)
    try:
        assert pool._exit_code(ended, seconds=2.0) == -signal.SIGKILL  # type: ignore[arg-type]
    finally:
        ended.close()
    never = _Ended(after=60)
    try:
        assert pool._exit_code(never, seconds=0.2) is None  # type: ignore[arg-type]
    finally:
        never.close()
    running = _Ended(after=60, ended=False)
    began = time.monotonic()
    try:
        assert pool._exit_code(running, seconds=5.0) is None  # type: ignore[arg-type]
    finally:
        running.close()
    assert time.monotonic() - began < 1.0  # a worker still running is not waited for


def _session(sid: int) -> list[str]:
    """The command lines of the live processes (not zombies) of a session."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[3]) == sid and fields[0] != "Z" and "resource_tracker" not in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, "all"),  # cgroup v2, no limit
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two processes share them
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU is still one process
        ({"cpu.max": "not a quota\n"}, "all"),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "all"),
        ({"cpu/cpu.cfs_quota_us": "100000\n"}, "all"),  # no period to divide by
        ({}, "all"),  # no cgroup files at all
    ],
)
def test_the_usable_cpus_are_those_this_process_may_run_on_within_its_cpu_limit(
    tmp_path: Path, files: dict[str, str], expected: int | str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    want = affinity if expected == "all" else min(affinity, int(expected))
    assert usable_cpus(tmp_path) == want


#: A run of the pool in a process of its own, stopped by Ctrl-C: as ``mlp`` reports it, one line.
DRIVER = """
import os
import signal
import sys

# Ctrl-C as a terminal's shell gives it, whatever ran these tests (a background job ignores it).
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
import pandas as pd
from held_jobs import rows
from servekit.scoring import pool

if __name__ == "__main__":  # a spawned worker imports this file too
    os.environ["HELD_JOBS_DIR"] = sys.argv[1]  # the workers' import of held_jobs waits
    pool.WORKERS_PAY_AFTER_SECONDS = 0.0
    chunk = pd.DataFrame({{"x": [1.5]}})
    try:
        with pool.ScoringPool(rows, workers=2, chunks_left=lambda first: 1e6) as scoring:
            for _ in scoring.scored([(chunk, chunk)] * 8):
                pass
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
"""


@pytest.mark.parametrize("to", ["group", "parent"])
def test_ctrl_c_while_the_workers_start_stops_the_run_and_them_with_one_line(tmp_path: Path, to: str) -> None:
    # The group's Ctrl-C reached the workers while they imported, before they ignored it: a
    # KeyboardInterrupt traceback from each. The parent's alone (kill -INT), raised while a worker
    # was being created, left one that failed its start on the parent's gone semaphores.
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(Path(__file__).parent)))
    run = subprocess.Popen(
        [sys.executable, str(driver), str(tmp_path)],
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        workers = _started(tmp_path, 2, run)
        (os.killpg if to == "group" else os.kill)(run.pid, signal.SIGINT)
        # Released once the signal is in: the run waits for its workers to end what they began.
        time.sleep(0.5)
        (tmp_path / "release").touch()
        _, err = run.communicate(timeout=60)
    finally:
        (tmp_path / "release").touch()
        run.kill()
        run.wait()
    assert (run.returncode, err) == (130, "interrupted\n")
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in workers)


def _started(place: Path, count: int, run: subprocess.Popen[str]) -> list[int]:
    """The pids of ``count`` workers held at their start (waited for, a minute at most)."""
    for _ in range(1200):
        started = sorted(place.glob("started-*"))
        if len(started) >= count:
            return [int(path.name.removeprefix("started-")) for path in started]
        assert run.poll() is None, run.communicate()[1]
        time.sleep(0.05)
    raise AssertionError(f"{count} workers did not start in a minute")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def test_ctrl_c_held_while_a_worker_is_created_is_raised_after() -> None:
    # Raised while the worker was being created, it left one nobody stopped.
    blocked: set[int] = set()

    def create_a_worker() -> None:
        with pool._ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            blocked.update(signal.pthread_sigmask(signal.SIG_BLOCK, set()))

    # Ctrl-C as a terminal's shell gives it, whatever ran these tests (a background job ignores it).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            create_a_worker()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signal.SIGINT in blocked  # what a worker created there inherits
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
