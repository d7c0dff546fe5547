"""The files a run of ``mlp score`` read and wrote, as it found them.

A file copied or rewritten while it is read could mix two versions in one output, so its size
and time of change are compared before and after the run. A scores file handed to an auditor
is tied to its exact input by the sha256 of each file, as training records its data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servekit.scoring.files import part_name, parts
from servekit.training.fingerprint import sha256_of_file


def file_states(path: Path) -> dict[str, tuple[int, int] | None]:
    """Each file of ``path`` by its path within it, with its size and time of change: compared
    before and after a run, they tell a file copied or rewritten while it was read."""
    files = parts(path) if path.exists() else ()
    return {part_name(file, files): _state(file) for file in files}


def _state(file: Path) -> tuple[int, int] | None:
    try:
        found = file.stat()
    except FileNotFoundError:  # removed since the directory was listed
        return None
    return found.st_size, found.st_mtime_ns


def file_fingerprints(path: Path) -> list[dict[str, Any]]:
    """Each file of ``path`` (itself, or a directory's parts) by its path within it, size and
    sha256, as training records its data: with the version and run, what ties a scores file to
    the exact input it was made from, for an auditor who holds both."""
    files = parts(path)
    return [
        {"path": part_name(file, files), "bytes": file.stat().st_size, "sha256": sha256_of_file(file)}
        for file in files
    ]
