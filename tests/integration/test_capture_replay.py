"""Prediction capture end to end: a real server writes the lines, ``mlp replay`` checks them against
the real registry, and a changed answer or a version the registry lacks is reported."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from processes import Server, metric_value, start_service
from servekit import http_client, registry
from servekit.bench import logging_cost
from servekit.loading import load_artifact
from servekit.testing import valid_requests
from servekit.training.splitting import to_records
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration


def capture_lines(log: Path) -> list[tuple[int, dict[str, Any]]]:
    lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith("{")]
    return [(i, line) for i, line in enumerate(lines) if line.get("logger") == "servekit.capture"]


def with_changed_line(log: Path, out: Path, change: Callable[[dict[str, Any]], None]) -> int:
    """``log`` copied to ``out`` with the first capture line changed; that line's number."""
    texts = log.read_text().splitlines()
    number = next(i for i, text in enumerate(texts) if '"logger":"servekit.capture"' in text)
    line = json.loads(texts[number])
    change(line)
    texts[number] = json.dumps(line)
    out.write_text("\n".join(texts) + "\n")
    return number + 1


@pytest.mark.parametrize("name", registry.available())
def test_every_captured_answer_is_reproduced_from_the_registry_and_a_changed_one_is_named(
    name: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    spec = registry.get_service(name)
    version = registered[name].version
    prefix = name.upper()
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        f"{prefix}_MODEL_URI": f"models:/{name}/{version}",
        f"{prefix}_CAPTURE_PERCENT": "100",
        f"{prefix}_LOG_FORMAT": "json",
        f"{prefix}_LOG_LEVEL": "WARNING",  # capture lines are written whatever the level
    }
    server = start_service(name, tmp_path, env, label=f"{name}-capture")
    rows = valid_requests(spec, to_records(spec.recipe.generate(60, 3).drop(columns=[spec.recipe.target])))
    try:
        server.wait_for("/readyz")
        for body, explain in (({"instances": rows[:40]}, "false"), ({"instances": rows[40:55]}, "true")):
            response = http_client.post(f"{server.url}/predict/batch", params={"explain": explain}, json=body)
            assert response.status_code == 200, response.text
        for row in rows[55:]:
            response = http_client.post(f"{server.url}/predict", params={"explain": "true"}, json=row)
            assert response.status_code == 200, response.text
        count = http_client.get(f"{server.url}/metrics").text
        assert f"{name}_captured_instances_total {float(len(rows))}" in count
        counted_bytes = metric_value(server, f"{name}_log_bytes_total", logger="servekit.capture")
    finally:
        server.stop()
    log = tmp_path / f"{name}-capture.log"
    captured = capture_lines(log)
    assert len(captured) == len(rows)
    assert {line["capture"]["model"]["version"] for _, line in captured} == {version}

    # make cost prices the capture by the bytes logging_cost measures in process: the served lines'.
    sizes = [len(text.encode()) + 1 for text in log.read_text().splitlines() if '"servekit.capture"' in text]
    # ...and the pods count what they write: the dashboards' log volume is the log file's.
    assert counted_bytes == sum(sizes)
    model = spec.model(load_artifact(name, f"models:/{name}/{version}", mlflow_server.url))
    for served, measured in (
        (sizes[:40], logging_cost.capture_line_bytes(model, rows[:40], explain=False, rows=40)),
        (sizes[40:55], logging_cost.capture_line_bytes(model, rows[40:55], rows=15)),
    ):
        assert measured == pytest.approx(sum(served) / len(served), rel=0.005)

    reproduced = f"{name} v{version}: {len(rows)} of {len(rows)} captured answers reproduced"
    assert reproduced in mlp("replay", str(log))
    # An export piped in: gsutil cat gs://…/*.json | mlp replay -
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(log.read_text()))
        assert reproduced in mlp("replay", "-")

    def nudge_first_number(line: dict[str, Any]) -> None:
        prediction = line["capture"]["prediction"]
        key = next(k for k, v in prediction.items() if isinstance(v, float))
        prediction[key] *= 1.001

    changed = with_changed_line(log, tmp_path / "changed.log", nudge_first_number)
    report = mlp("replay", str(tmp_path / "changed.log"), status=3)
    assert f"line {changed} (request " in report
    assert f"{len(rows) - 1} of {len(rows)} captured answers reproduced, 1 differs" in report

    def unknown_version(line: dict[str, Any]) -> None:
        line["capture"]["model"]["version"] = "999"

    with_changed_line(log, tmp_path / "unknown.log", unknown_version)
    report = mlp("replay", str(tmp_path / "unknown.log"), status=3)
    assert f"{name} v999: 1 captured answer not checked: ModelLoadError" in report
