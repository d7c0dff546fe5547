"""Every workspace package ships ``py.typed`` (PEP 561): without it, mypy on a service outside the
root's configured files (a new service's own check, a team's code importing servekit) found no types
in servekit and reported each import as ``import-untyped``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(path.parent for path in (ROOT / "services").glob("*/pyproject.toml"))


def test_the_workspace_has_its_packages() -> None:
    assert {member.name for member in MEMBERS} >= {"servekit", "bankchurn", "nlpinsight", "chicagotaxi"}


@pytest.mark.parametrize("member", MEMBERS, ids=lambda member: member.name)
def test_each_package_ships_py_typed_in_its_wheel(member: Path) -> None:
    project = tomllib.loads((member / "pyproject.toml").read_text())
    # hatchling puts every file under a listed package directory into the wheel (VCS-ignored ones
    # aside), py.typed with the modules: the marker must sit in that directory.
    assert project["build-system"]["build-backend"] == "hatchling.build", member.name
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages, member.name
    for package in packages:
        marker = member / package / "py.typed"
        assert marker.is_file(), f"{marker.relative_to(ROOT)} is missing: mypy would not read its types"
