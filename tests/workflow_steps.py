"""A GitHub workflow's shell step run outside GitHub, as GitHub runs it (``bash -e``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_script(script: str, work: Path, runner_temp: Path, path: str, **env: str) -> tuple[int, str, str]:
    """``script`` (a step's ``run``) in a fresh ``bash -e`` (GitHub's default shell) in ``work``: its
    status, its output, and what it wrote to ``$GITHUB_OUTPUT``."""
    work.mkdir(parents=True, exist_ok=True)
    output = work / "github_output"
    output.write_text("")
    written = work / "step.sh"
    written.write_text(script)
    environment = {
        "PATH": path,
        "HOME": str(work),
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(runner_temp),
        **env,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", str(written)],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, output.read_text()
