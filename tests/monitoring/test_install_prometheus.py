"""monitoring/install-prometheus.sh takes the images' own releases when it can reach them, checked
against their checksums, and refuses one that does not match.

GitHub cannot be reached from this machine (make test itself installs from Debian, the fallback),
so a stand-in serves releases laid out as github.com/prometheus serves them, on 127.0.0.1: the
tools in it are scripts that print the version a real one prints.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import platform
import re
import subprocess
import tarfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from processes import ROOT
from servekit.testing import http_stub

SCRIPT = ROOT / "monitoring" / "install-prometheus.sh"
#: Project -> its image's manifest and the tools its release holds.
PROJECTS = {
    "prometheus": ("k8s/base/prometheus/prometheus.yaml", ("prometheus", "promtool")),
    "alertmanager": ("k8s/base/alertmanager/alertmanager.yaml", ("alertmanager", "amtool")),
}


def image_version(project: str) -> str:
    manifest = (ROOT / PROJECTS[project][0]).read_text()
    [version] = re.findall(rf"image: quay\.io/prometheus/{project}:v(\S+)", manifest)
    return version


def release(root: Path, project: str, *, corrupt: bool = False) -> None:
    """The release of ``project``'s image version under ``root``, as GitHub lays it out."""
    version = image_version(project)
    # As the script names this machine (uname -s, uname -m).
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    name = f"{project}-{version}.{platform.system().lower()}-{arch}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for tool in PROJECTS[project][1]:
            script = f'#!/bin/sh\necho "{tool}, version {version} (branch: HEAD, revision: test)"\n'.encode()
            info = tarfile.TarInfo(f"{name}/{tool}")
            info.size, info.mode = len(script), 0o755
            archive.addfile(info, io.BytesIO(script))
    data = buffer.getvalue()
    directory = root / project / "releases" / "download" / f"v{version}"
    directory.mkdir(parents=True)
    (directory / f"{name}.tar.gz").write_bytes(data + (b"tampered" if corrupt else b""))
    (directory / "sha256sums.txt").write_text(f"{hashlib.sha256(data).hexdigest()}  {name}.tar.gz\n")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served on 127.0.0.1, and its address."""
    root = tmp_path / "releases"
    root.mkdir()
    with http_stub(functools.partial(QuietHandler, directory=str(root))) as url:
        yield root, url


def install(url: str, tools: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PROMETHEUS_RELEASES_URL": url,
        "PROMETHEUS_TOOLS_DIR": str(tools),
        # Were the releases not taken, the fallback would fail at once, and say so.
        "DEBIAN_MIRROR": "http://127.0.0.1:9",
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_images_releases_are_installed_when_they_can_be_reached(
    releases: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = releases
    for project in PROJECTS:
        release(root, project)
    tools = tmp_path / "bin"
    done = install(url, tools)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cannot be reached" not in done.stdout
    for project, (_, names) in PROJECTS.items():
        assert f"  {project} {image_version(project)} ({url})" in done.stdout
        for name in names:
            version = subprocess.run([tools / name, "--version"], capture_output=True, text=True, check=True)
            assert version.stdout.startswith(f"{name}, version {image_version(project)} ")
    # Up to date: nothing is fetched again, from anywhere.
    again = install("http://127.0.0.1:9", tools)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_a_release_that_does_not_match_its_checksum_is_refused(
    releases: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = releases
    release(root, "prometheus", corrupt=True)
    release(root, "alertmanager")
    tools = tmp_path / "bin"
    done = install(url, tools)
    assert done.returncode == 1
    assert "does not match its sha256sums.txt" in done.stderr
    assert "refusing it" in done.stderr
    # Neither installed nor replaced by another source.
    assert not tools.exists()
    assert "cannot be reached" not in done.stdout
