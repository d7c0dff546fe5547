"""A file's chunks scored by worker processes, a few at a time, and handed back in its order.

Validating and scoring the chunks is nearly all of ``mlp score``'s time. Threads would share the
GIL for the validation and the shaping of the answers, so each worker is a process. The parent
reads the file and hands each chunk to the next free worker, which scores it and encodes its rows
in the output's format; the parent writes them in the file's order. About twice as many chunks
as workers are out at once, so memory is bounded by the chunk size, not the file's.

The parent scores the first chunk itself and times it, and foresees from it how long the rest
would take in one process (from a CSV file's size, or a Parquet file's count of rows). Only where
that is longer than the workers need to start and pay back (:data:`WORKERS_PAY_AFTER_SECONDS`)
do they start: a small file never waits for them.

Ctrl-C is the parent's alone (:func:`_ctrl_c_held`): a worker never sees it, and a run stopped
for any reason stops its workers at once (``ScoringPool.__exit__``).

A worker that dies (the kernel's OOM killer sends SIGKILL to the largest process of a container
over its memory limit) ends the run with :class:`WorkerDiedError`, the others killed: the executor
alone raised a ``BrokenProcessPool`` traceback, or hung waiting for a survivor. A chunk that does
not fit in memory is :class:`ChunkOutOfMemoryError`, naming its rows, in whichever process scored it.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from itertools import islice
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType, TracebackType
from typing import Generic, TypeVar

from servekit.scoring.formats import Chunk

T = TypeVar("T")
#: A chunk and the file's row number of its first row -> what the parent keeps of it.
ChunkJob = Callable[[Chunk, int], T]

#: A worker's start: a process spawned, the model's libraries imported and the model unpickled,
#: 1.4 s for BankChurn or NLPInsight on this 2-core machine (two starting at once). Two workers
#: there score the rest of a file about 1.5 times as fast as one process (the parent's reading
#: is not shared), so they pay once the rest would take about three starts in one process.
WORKERS_PAY_AFTER_SECONDS = 6.0
#: The CPU limit of this process's container: cgroup v2's quota and period ("max 100000", or
#: "200000 100000" for 2 CPUs), else cgroup v1's two files (EKS's Amazon Linux 2 nodes).
CGROUP = Path("/sys/fs/cgroup")
#: How long a broken pool's other workers are given to end of the executor's SIGTERM before they
#: are killed: an idle worker ends at once, and one that does not would hold the run forever.
WORKER_END_SECONDS = 2.0


class WorkerDiedError(Exception):
    """A worker process ended without handing back the chunks it held: killed, or crashed."""

    def __init__(self, pid: int | None, exitcode: int | None, rows: tuple[int, int] | None) -> None:
        super().__init__(pid, exitcode, rows)
        self.pid = pid
        self.exitcode = exitcode
        self.rows = rows

    @property
    def out_of_memory(self) -> bool:
        """SIGKILL: what the kernel's OOM killer sends, and nearly all that does (Kubernetes asks
        with SIGTERM first)."""
        return self.exitcode == -signal.SIGKILL

    def __str__(self) -> str:
        who = "a worker process" if self.pid is None else f"worker process {self.pid}"
        if self.exitcode is None:
            how = "ended"
        elif self.exitcode < 0:
            how = f"was killed by {_signal_name(-self.exitcode)}"
        else:
            how = f"exited with status {self.exitcode}"
        # No rows: it died as it started (unpickling the model), before a chunk was handed out.
        said = (
            f"{who} {how}"
            if self.rows is None
            else f"{who} {how} while rows {self.rows[0]:,} to {self.rows[1]:,} were scored"
        )
        if self.out_of_memory:
            return (
                f"{said}; most likely out of memory (the kernel's OOM killer, a container's memory "
                "limit): run with fewer --workers or a smaller --chunk-rows"
            )
        return f"{said}; the run stopped the others"


class ChunkOutOfMemoryError(MemoryError):
    """A chunk's rows did not fit in the memory left: the same chunk would not fit on a retry."""

    def __init__(self, first_row: int, rows: int) -> None:
        super().__init__(first_row, rows)
        self.first_row = first_row
        self.rows = rows

    def __str__(self) -> str:
        last = self.first_row + self.rows - 1
        return (
            f"out of memory scoring rows {self.first_row:,} to {last:,} (a chunk of {self.rows:,} rows); "
            "run with a smaller --chunk-rows (or fewer --workers)"
        )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use: those it may run on, fewer under a container's CPU limit.

    A pod limited to 2 CPUs on a 16-CPU node sees 16 in ``os.cpu_count()``; 16 workers there
    would be throttled to the time of 2, each holding a model and its chunks in memory.
    """
    cpus = len(os.sched_getaffinity(0))
    limit = _cpu_limit(cgroup)
    return cpus if limit is None else min(cpus, max(1, math.ceil(limit)))


def _cpu_limit(cgroup: Path) -> float | None:
    """The container's CPU limit in CPUs; None where there is none, or none can be read."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass  # not cgroup v2: try v1's files
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us  # -1: no limit


#: The job of this worker process, sent once when it starts rather than with every chunk.
_job: ChunkJob[object] | None = None


def _start_worker(job: ChunkJob[object]) -> None:
    global _job
    _job = job
    # Ctrl-C reaches the whole process group: the parent stops the run and the workers with it,
    # and a traceback from each worker would bury its one line. Blocked since the worker was
    # created (``_ctrl_c_held``), it is ignored from here on, and one that came meanwhile dropped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C held off while a worker process may be created, then acted on.

    A spawned worker imports the model's libraries and unpickles the model for a second or more
    before ``_start_worker`` runs; the process group's Ctrl-C in that time gave a KeyboardInterrupt
    traceback from each worker starting. SIGINT blocked in this thread while the worker is created
    stays blocked in the worker from its first instruction (a signal mask outlives ``exec``, a
    handler does not, and Python leaves the mask as it found it), until ``_start_worker`` ignores it.

    The parent's own SIGINT meanwhile (``kill -INT``; in the main thread, where Python runs signal
    handlers) is noted and raised once the worker is the pool's: raised while the worker was being
    created, it left a worker nobody stopped, which failed its start with a ``FileNotFoundError``
    traceback once this process had gone. The pool blocks while the worker reads the model (more
    than a pipe holds), so Ctrl-C waits for one worker's start at most.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    held: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    if main:

        def note(signum: int, frame: FrameType | None) -> None:
            held.append(signum)

        previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        # Unblocked first: one that came while this thread blocked it is noted, not lost.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if main:
            # None: a handler set outside Python, which cannot be put back; the default stands in.
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
            if held:
                signal.raise_signal(signal.SIGINT)  # as the handler put back would have had it


def _run_in_worker(chunk: Chunk, first_row: int) -> object:
    if _job is None:  # pragma: no cover - the initializer always ran first
        raise RuntimeError("scoring worker started without its job")
    return _scored(_job, chunk, first_row)


def _scored(job: ChunkJob[T], chunk: Chunk, first_row: int) -> T:
    """The job's answer; a MemoryError (numpy's, 55 lines of traceback) as the chunk's rows."""
    try:
        return job(chunk, first_row)
    except MemoryError:
        raise ChunkOutOfMemoryError(first_row, len(chunk[0])) from None


class ScoringPool(Generic[T]):
    """Chunks scored in order by ``workers`` processes (in this one alone when ``workers`` is 1)."""

    def __init__(self, job: ChunkJob[T], workers: int, chunks_left: Callable[[Chunk], float]) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.job = job
        self.workers = workers
        #: How many chunks the file holds past its first, foreseen from it (``InputFile.chunks_left``).
        self.chunks_left = chunks_left
        #: Worker processes started: 0 unless a file's rest would take them long enough to pay.
        self.started = 0
        #: The file's rows, foreseen from its first chunk (0 until then).
        self.estimated_rows = 0.0
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ScoringPool[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # On an error, the chunks not yet begun are dropped, not scored for nothing. The workers
        # are asked, not killed: one killed while the pool's feeder thread wrote it a job (the
        # model, more than a pipe holds) left that thread blocked and the shutdown waiting on it,
        # so a SIGTERM never ended the run.
        try:
            executor.shutdown(wait=True, cancel_futures=True)
        except BaseException:
            # A SIGTERM or a Ctrl-C while the workers end their chunks: they are killed, or the
            # interpreter's exit would wait for them all the same (concurrent.futures joins its
            # threads at exit), and a second SIGTERM is ignored (servekit.termination).
            _kill(_workers(executor))
            raise

    def _died(self, pending: Iterable[tuple[int, int]]) -> WorkerDiedError:
        """Which worker died and how, the others ended (waited for a moment, then killed)."""
        workers = _workers(self._executor)
        ended: dict[int | None, int | None] = {}
        deadline = time.monotonic() + WORKER_END_SECONDS
        try:
            for worker in workers:  # the executor sent each survivor SIGTERM; most end at once
                worker.join(max(0.0, deadline - time.monotonic()))
                ended[worker.pid] = _exit_code(worker, seconds=1.0)  # a live one's None is at once
        finally:
            _kill(workers)
        # The first that did not end of the executor's SIGTERM, or of any; none: already gone.
        pid, exitcode = next(
            (item for item in ended.items() if item[1] not in (None, 0, -signal.SIGTERM)),
            next((item for item in ended.items() if item[1] is not None), (None, None)),
        )
        spans = list(pending)
        rows = (
            (min(start for start, _ in spans), max(start + count - 1 for start, count in spans))
            if spans
            else None
        )
        return WorkerDiedError(pid, exitcode, rows)

    def scored(self, chunks: Iterable[Chunk]) -> Iterator[T]:
        """What the job made of each chunk, in the file's order."""
        numbered = _numbered(chunks)
        first = next(numbered, None)
        if first is None:
            return
        began = time.perf_counter()
        scores = _scored(self.job, *first)
        chunks_left = self.chunks_left(first[0])
        seconds_left = (time.perf_counter() - began) * chunks_left
        self.estimated_rows = len(first[0][0]) * (1 + chunks_left)
        yield scores
        # Each chunk out, with its first row and its count of rows, which a worker's death names.
        pending: deque[tuple[Future[T], int, int]] = deque()
        try:
            if self.workers > 1 and seconds_left > WORKERS_PAY_AFTER_SECONDS:
                pending.extend(self._submit(*chunk) for chunk in islice(numbered, 2 * self.workers))
            while pending:
                future = pending[0][0]
                following = next(numbered, None)  # handed out before waiting: no worker idles
                if following is not None:
                    pending.append(self._submit(*following))
                answer = future.result()
                pending.popleft()
                yield answer
        except BrokenProcessPool:
            raise self._died((start, rows) for _, start, rows in pending) from None
        for chunk in numbered:  # in one process: every chunk scored here
            yield _scored(self.job, *chunk)

    def _submit(self, chunk: Chunk, first_row: int) -> tuple[Future[T], int, int]:
        if self._executor is None:
            # spawn, not fork: a fork of a process whose OpenMP (LightGBM's) has run can hang.
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.job,),
            )
            self.started = self.workers
        # A worker is spawned by the submit that finds none free (a process per submit until
        # ``workers`` run), so each is held apart from Ctrl-C.
        with _ctrl_c_held():
            future: Future[T] = self._executor.submit(_run_in_worker, chunk, first_row)  # type: ignore[arg-type]
        return future, first_row, len(chunk[0])


def _workers(executor: ProcessPoolExecutor | None) -> list[BaseProcess]:
    """The executor's worker processes: it names them only in a private attribute (3.11 to 3.13)."""
    processes: dict[int, BaseProcess] | None = getattr(executor, "_processes", None)
    return list((processes or {}).values())


def _exit_code(worker: BaseProcess, seconds: float) -> int | None:
    """The exit code of a worker that has ended; None while it runs.

    The executor's own thread joins its broken pool's workers too, and a process is reaped once:
    where that thread reaped it first, this one's join finds no child and its ``exitcode`` is None
    until that thread has stored the code, a moment later. The end of a process is its sentinel's.
    """
    give_up = time.monotonic() + seconds
    while (code := worker.exitcode) is None and time.monotonic() < give_up:
        try:
            if not multiprocessing.connection.wait([worker.sentinel], timeout=0):
                return None  # still running
        except (OSError, ValueError):  # its handle closed meanwhile: nothing more to learn
            return None
        time.sleep(0.01)
    return code


def _kill(workers: Iterable[BaseProcess]) -> None:
    """SIGKILL to each worker still running (a dead one's pipes then end the executor's threads)."""
    for worker in workers:
        if worker.exitcode is None:
            with suppress(OSError, ValueError):  # ended, or its handle closed, meanwhile
                worker.kill()


def _numbered(chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, int]]:
    """Each chunk with the file's row number of its first row (1 for the first data row)."""
    first_row = 1
    for chunk in chunks:
        yield chunk, first_row
        first_row += len(chunk[0])
