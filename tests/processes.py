"""Where the integration tests find the project and its servers (started by servekit.local)."""

from __future__ import annotations

from pathlib import Path

from servekit.local import Server, free_port, start_mlflow, start_service

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"

__all__ = ["BIN", "ROOT", "Server", "free_port", "start_mlflow", "start_service"]
