"""Which code trained a model, and which code serves it.

A model-risk review traces an answer to the model version, its training run, the data (the
file's sha256, in ``data``) and the code. The code is the git commit the packages were installed
from, whether the tree had changes not committed (a commit then names only part of the code),
and the packages' versions. A training run records it (``GET /model`` → ``code``, run tags
``code.*`` and MLflow's own ``mlflow.source.git.commit``), and every replica says what it runs
(``serving_code``). An image holds no git checkout: the build bakes the commit into
``MLP_CODE_REVISION`` (the Dockerfile's ``REVISION`` argument, CI's commit).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: The commit an image was built from (set by the Dockerfile); read before any git checkout.
REVISION_ENV = "MLP_CODE_REVISION"
#: How long a git call may take: it runs once a process, and a hung file system must not hang it.
GIT_TIMEOUT_SECONDS = 5.0


@functools.cache
def code_version(packages: tuple[str, ...]) -> dict[str, Any]:
    """``revision`` (the git commit, or None where none can be told), ``modified`` (tracked files
    changed since it: True, False, or None when not known, as in an image) and each package's
    version. Once a process: ``GET /model`` must not call git."""
    revision: str | None = os.environ.get(REVISION_ENV) or None
    modified: bool | None = None
    if revision is None:
        revision, modified = git_state(Path(__file__).resolve().parent)
    return {"revision": revision, "modified": modified, "packages": package_versions(packages)}


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def git_state(directory: Path) -> tuple[str | None, bool | None]:
    """The commit of the git work tree ``directory`` is in, and whether its tracked files changed
    since; (None, None) outside a work tree, or without git."""
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    changes = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else bool(changes)


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_tags(code: dict[str, Any]) -> dict[str, str]:
    """The training run's tags of ``code``: searchable in MLflow (``tags.code.revision = '…'``),
    and MLflow's own commit tag, which its UI shows as the run's source version."""
    tags = {f"code.{name}.version": version for name, version in code["packages"].items()}
    tags["code.revision"] = code["revision"] or "unknown"
    tags["code.modified"] = "unknown" if code["modified"] is None else str(code["modified"]).lower()
    if code["revision"]:
        tags["mlflow.source.git.commit"] = code["revision"]
    return tags
