"""`promtool check rules` and `promtool test rules` (one unit test per alert, firing and quiet)."""

from __future__ import annotations

import subprocess

from processes import installed
from scripts import MONITORING


def promtool() -> str:
    return installed("promtool")


def test_promtool_check_rules() -> None:
    files = sorted(str(p) for p in (MONITORING / "rules").glob("*.yaml"))
    assert files
    result = subprocess.run(
        [promtool(), "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    files = sorted((MONITORING / "tests").glob("*.test.yaml"))
    assert files
    # One process per file: they are independent and each takes a few CPU-seconds.
    runs = {
        f.name: subprocess.Popen(
            [promtool(), "test", "rules", f.name],
            cwd=f.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for f in files
    }
    failures = []
    for name, process in runs.items():
        output, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(f"{name}:\n{output}")
    assert not failures, "\n".join(failures)
