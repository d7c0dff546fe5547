"""The Prometheus and Alertmanager the tests run are the releases the cluster runs, and those
releases accept the Deployments' arguments and the rendered Prometheus configuration.

The rules, promtool tests, dashboard queries and Alertmanager configuration are checked by the tools
``make prometheus`` installs (monitoring/install-prometheus.sh); that only means something if they
are the images' releases. A bumped image fails here until ``make prometheus`` follows it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from manifests import Rendered, container, prometheus_config, prometheus_config_text

from processes import installed

#: Deployment -> the tools of its image's release (the server, then its command-line companion).
TOOLS = {"prometheus": ("prometheus", "promtool"), "alertmanager": ("alertmanager", "amtool")}
IMAGE = re.compile(r"^quay\.io/prometheus/(?P<name>[a-z]+):v(?P<minor>\d+\.\d+)\.\d+$")
VERSION = re.compile(r"^[a-z]+, version (?P<minor>\d+\.\d+)\.\d+")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("deployment", sorted(TOOLS))
def test_the_tools_are_the_release_the_image_runs(overlay: Rendered, deployment: str) -> None:
    image = container(overlay.workload(deployment))["image"]
    match = IMAGE.match(image)
    assert match, image
    assert match["name"] == deployment, image
    for tool in TOOLS[deployment]:
        done = run(installed(tool), "--version")
        found = VERSION.match(done.stdout + done.stderr)
        assert found, done.stdout + done.stderr
        assert found["minor"] == match["minor"], f"{tool} {found['minor']}.x tests what {image} runs"


@pytest.mark.parametrize("deployment", sorted(TOOLS))
def test_the_release_accepts_the_deployments_arguments(overlay: Rendered, deployment: str) -> None:
    """Its own flag parser reads them (--help stops it after, and only after, they parse)."""
    args = container(overlay.workload(deployment))["args"]
    done = run(installed(deployment), *args, "--help")
    assert done.returncode == 0, done.stderr.splitlines()[-1:]
    # The check can fail: a flag neither release knows (Prometheus 3 removed it) is refused.
    refused = run(installed(deployment), *args, "--storage.tsdb.retention=15d", "--help")
    assert refused.returncode != 0
    assert "unknown long flag '--storage.tsdb.retention'" in refused.stderr


def test_promtool_accepts_the_rendered_prometheus_configuration(overlay: Rendered, tmp_path: Path) -> None:
    """Syntax only: the rule files and the service account's token are the cluster's paths."""
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config_text(overlay))
    assert prometheus_config(overlay)["scrape_configs"]
    done = run(installed("promtool"), "check", "config", "--syntax-only", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
