"""Which code trained a model and which serves it: a git work tree's commit and changes, or an
image's build commit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servekit import provenance
from servekit.provenance import REVISION_ENV, code_version, git_state, run_tags


@pytest.fixture(autouse=True)
def _uncached() -> Iterator[None]:
    code_version.cache_clear()
    yield
    code_version.cache_clear()


def git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_work_tree_s_commit_and_whether_its_tracked_files_changed(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "model.py").write_text("THRESHOLD = 0.3\n")
    git(tmp_path, "add", "model.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == (head, False)
    (tmp_path / "notes.txt").write_text("untracked files are no code that ran\n")
    assert git_state(tmp_path) == (head, False)
    (tmp_path / "model.py").write_text("THRESHOLD = 0.4\n")
    assert git_state(tmp_path) == (head, True)


def test_outside_a_work_tree_nothing_is_claimed(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None)


def test_an_image_s_build_commit_comes_before_any_work_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REVISION_ENV, "0123abc")
    code = code_version(("servekit", "no-such-package"))
    assert code == {
        "revision": "0123abc",
        "modified": None,
        "packages": {"servekit": "0.1.0", "no-such-package": "not installed"},
    }


def test_without_a_build_commit_the_installed_code_s_work_tree_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REVISION_ENV, raising=False)
    source = Path(provenance.__file__).resolve().parent
    assert code_version(("servekit",))["revision"] == git_state(source)[0]


def test_the_run_s_tags_are_searchable_and_mlflow_s_own_commit_tag() -> None:
    code = {"revision": "0123abc", "modified": True, "packages": {"servekit": "0.1.0", "bankchurn": "0.1.0"}}
    assert run_tags(code) == {
        "code.servekit.version": "0.1.0",
        "code.bankchurn.version": "0.1.0",
        "code.revision": "0123abc",
        "code.modified": "true",
        "mlflow.source.git.commit": "0123abc",
    }
    unknown = run_tags({**code, "revision": None, "modified": None})
    assert (unknown["code.revision"], unknown["code.modified"]) == ("unknown", "unknown")
    assert "mlflow.source.git.commit" not in unknown
