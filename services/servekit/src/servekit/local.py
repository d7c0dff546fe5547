"""Local servers on 127.0.0.1: the MLflow tracking server and ``mlp serve``.

One home for how they are started, shared by ``make up`` (through
``scripts/mlflow-server.sh``), the integration tests and ``make bench``. Every
server runs in its own session, so stopping its process group also stops the
workers it forked; nothing outlives its caller.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from servekit import http_client

BIN = Path(sys.executable).parent


#: ``LOW-HIGH``: the ports :func:`free_port` may hand out (default: see :func:`port_range`).
PORTS_VARIABLE = "MLP_FREE_PORTS"
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def port_range() -> range:
    """Where listening ports are picked: ``$MLP_FREE_PORTS``, else the 8,000 below the ephemeral ones.

    Not a port the kernel picks (bind to port 0): that one is in the ephemeral range, so
    between its release and the server's bind any outgoing connection on the machine may
    take it as its local port, and the server then fails with "address already in use".
    """
    configured = os.environ.get(PORTS_VARIABLE, "")
    if configured:
        return configured_range(configured)
    try:
        ephemeral_low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default
    return range(max(1024, ephemeral_low - 8000), ephemeral_low)


class PortRangeError(ValueError):
    """``$MLP_FREE_PORTS`` is not a range of ports to pick from."""


def configured_range(configured: str) -> range:
    """``LOW-HIGH`` (both included) as a range, or :class:`PortRangeError` saying what is wrong."""
    low, sep, high = configured.strip().partition("-")
    example = f"e.g. {PORTS_VARIABLE}=9400-9449"
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise PortRangeError(f"{PORTS_VARIABLE}={configured}: not LOW-HIGH, {example}")
    ports = range(int(low), int(high) + 1)
    if not ports:
        raise PortRangeError(f"{PORTS_VARIABLE}={configured}: empty, its LOW is above its HIGH ({example})")
    if ports.start < 1 or ports.stop - 1 > 65535:
        raise PortRangeError(f"{PORTS_VARIABLE}={configured}: ports are 1 to 65535 ({example})")
    return ports


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port of :func:`port_range` nobody listens on, never the same twice in one process."""
    ports = port_range()
    start = random.randrange(len(ports))
    for step in range(len(ports)):
        port = ports[(start + step) % len(ports)]
        if port not in _handed_out and port_is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port left in {ports.start}-{ports.stop - 1} (${PORTS_VARIABLE})")


def split_ports(index: int, count: int) -> str:
    """The ``LOW-HIGH`` block ``index`` of ``count`` disjoint ones (e.g. one per test worker)."""
    ports = port_range()
    size = len(ports) // count
    low = ports.start + index * size
    return f"{low}-{low + size - 1}"


def mlflow_command(port: int, state: Path) -> tuple[list[str], dict[str, str]]:
    """The MLflow server command: SQLite backend and proxied artifacts under ``state``."""
    state = state.resolve()
    (state / "artifacts").mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination",
        str(state / "artifacts"),
        "--serve-artifacts",
    ]
    # One worker and no job runner: the defaults (4 workers + a huey job queue) cost
    # ~10 processes and minutes of start-up on a 2-core machine, for features we do not use.
    return command, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    #: Where it serves the Open Inference Protocol over gRPC (0: it does not).
    grpc_port: int = 0
    #: The settings it was started with on purpose (a benchmark's, for its report).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

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
                last = http_client.get(self.url + path, timeout=5)
                if last.status_code == status:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name}{path} never answered {status} (last: {last}):\n{self.logs()[-3000:]}"
        )


def start(
    name: str,
    command: Sequence[str],
    port: int,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> Server:
    """``command`` in a session of its own, its output in ``log_dir/<name>.log``; its environment is
    ``base`` (default: this process's) with ``env`` on top."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**(os.environ if base is None else base), **(env or {})},
            start_new_session=True,
        )
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def start_mlflow(state: Path, log_dir: Path) -> Server:
    port = free_port()
    command, env = mlflow_command(port, state)
    server = start("mlflow", command, port, log_dir, env)
    server.wait_for("/health", seconds=180)
    return server


def start_service(
    name: str,
    log_dir: Path,
    env: Mapping[str, str],
    label: str = "",
    port: int | None = None,
    *,
    grpc_port: int = 0,
    base: Mapping[str, str] | None = None,
) -> Server:
    """``mlp serve`` on 127.0.0.1 (HTTP on ``port`` or a free one; gRPC too if ``grpc_port``), in
    ``base`` (default: this process's environment) with ``env`` on top."""
    port = port or free_port()
    command = [str(BIN / "mlp"), "serve", name, "--host", "127.0.0.1", "--port", str(port)]
    if grpc_port:
        env = {**env, f"{name.upper()}_GRPC_PORT": str(grpc_port)}
    server = start(label or name, command, port, log_dir, env, base=base)
    server.grpc_port = grpc_port
    return server


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m servekit.local mlflow PORT STATE``: exec the MLflow server in the foreground."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "mlflow":
        raise SystemExit("usage: python -m servekit.local mlflow PORT STATE_DIR")
    command, env = mlflow_command(int(args[1]), Path(args[2]))
    os.environ.update(env)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
