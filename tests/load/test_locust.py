"""A short headless Locust run against the live services: no errors, p95 within limits, reports."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from processes import BIN, ROOT, Server

pytestmark = pytest.mark.integration


def test_locust_short_run(live_services: dict[str, Server], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {**os.environ, "LOADTEST_DATA": os.environ.get("LOADTEST_DATA", "auto")}
    for name, server in live_services.items():
        env[f"LOADTEST_{name.upper()}_HOST"] = server.url
    users = max(3, len(live_services))
    result = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "tests" / "load" / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            "15s",
            "--csv",
            str(reports / "locust"),
            "--html",
            str(reports / "locust.html"),
            "--json-file",
            str(reports / "locust"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "loadtest: passed" in output, output[-5000:]
    for name in ("locust_stats.csv", "locust_failures.csv", "locust.html", "locust.json"):
        assert (reports / name).is_file(), f"{name} not written: {sorted(p.name for p in reports.iterdir())}"
    stats = json.loads((reports / "locust.json").read_text())
    names = {entry["name"] for entry in stats}
    for service in live_services:
        assert {f"{service} /predict", f"{service} /predict?explain", f"{service} /predict/batch"} <= names
