"""SIGTERM and SIGHUP during a benchmark stop its servers and remove its directory, as Ctrl-C does.

The servers run in sessions of their own (``servekit.local.start``), which no terminal signal
reaches: only the benchmark's own cleanup stops them. A real subprocess gets the real signal here;
its MLflow server is a stand-in (a process and a child of it, as uvicorn's), its training and
measurement are skipped, so the test takes the time of an interpreter's start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time, types
    from servekit import local
    from servekit.bench import servers
    import {module} as bench

    def start_mlflow(state, log_dir):
        # A server and a child of its own (uvicorn's worker), in a session of their own.
        child = "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"
        return local.start("mlflow", [sys.executable, "-c", child], local.free_port(), log_dir)

    def measuring(spec, mlflow, work, *args, **kwargs):
        print(mlflow.process.pid, work, flush=True)
        time.sleep(600)

    servers.start_mlflow = start_mlflow
    servers.train = lambda *args, **kwargs: types.SimpleNamespace(run_id="run")
    bench.{measure} = measuring
    sys.exit(bench.main(["--services", "bankchurn", "--output", sys.argv[1]]))
    """
)


def living_in_group(group: int) -> list[int]:
    """The processes of process group ``group`` that are not zombies (which a container's init may
    never reap)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("module", "measure", "signum"),
    [
        ("servekit.bench.cpu", "measure", signal.SIGTERM),
        ("servekit.bench.__main__", "bench_service", signal.SIGTERM),
        ("servekit.bench.soak", "soak_service", signal.SIGHUP),
    ],
)
def test_a_signal_mid_benchmark_stops_its_servers_and_removes_its_directory(
    tmp_path: Path, module: str, measure: str, signum: int
) -> None:
    script = SCRIPT.format(module=module, measure=measure)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "report.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server_group, work = 0, ""
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.communicate(timeout=30)[1]
        pid, work = line.split()
        server_group = int(pid)  # start_new_session: the server leads its own group
        assert living_in_group(server_group)
        assert Path(work).is_dir()
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 128 + signum, err
        assert living_in_group(server_group) == []
        assert not Path(work).exists()
        assert not (tmp_path / "report.json").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if server_group and living_in_group(server_group):
            os.killpg(server_group, signal.SIGKILL)
        if work:
            shutil.rmtree(work, ignore_errors=True)
