"""Starting and stopping the real servers of the integration tests (all on 127.0.0.1).

Every server runs in its own session, so stopping its process group also stops
the workers it forked; nothing outlives the test run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, path: str, status: int = 200, seconds: float = 120) -> httpx.Response:
        deadline = time.monotonic() + seconds
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.logs()[-3000:]}"
                )
            try:
                last = httpx.get(self.url + path, timeout=5)
                if last.status_code == status:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name}{path} never answered {status} (last: {last}):\n{self.logs()[-3000:]}"
        )


def start(
    name: str, command: list[str], port: int, log_dir: Path, env: Mapping[str, str] | None = None
) -> Server:
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def start_mlflow(state: Path, log_dir: Path) -> Server:
    port = free_port()
    server = start(
        "mlflow", [str(ROOT / "scripts" / "mlflow-server.sh"), str(port), str(state)], port, log_dir
    )
    server.wait_for("/health", seconds=180)
    return server


def start_service(name: str, log_dir: Path, env: Mapping[str, str], label: str = "") -> Server:
    port = free_port()
    command = [str(BIN / "mlp"), "serve", name, "--host", "127.0.0.1", "--port", str(port)]
    return start(label or name, command, port, log_dir, env)
