"""API keys in a real ``mlp serve``: a key revoked in the file stops working with no restart."""

from __future__ import annotations

import json
import os
import time

import pytest

from processes import KeyedService, predict_its_example
from servekit import http_client
from servekit.auth.api_keys import RELOAD_SECONDS
from servekit.auth.key_lines import digest, key_id, key_line, new_key

pytestmark = pytest.mark.integration


def status_with(service: KeyedService, key: str) -> int:
    model = http_client.get(f"{service.server.url}/model", headers={"x-api-key": key}, timeout=10)
    return model.status_code


def test_a_key_revoked_in_the_file_is_refused_and_a_new_one_answered_without_a_restart(
    keyed_bankchurn: KeyedService,
) -> None:
    service = keyed_bankchurn
    old = service.keys["risk"]
    headers = {"authorization": f"Bearer {old}", "x-request-id": "keyed-1"}
    predict_its_example(service.server.url, explain=True, headers=headers)
    assert http_client.post(f"{service.server.url}/predict", json={}, timeout=10).status_code == 401

    # What the kubelet does when the Secret changes: a new file swapped in whole.
    new = new_key()
    lines = [key_line("risk", new), key_line("loadtest", service.keys["loadtest"])]
    staged = service.keys_file.with_name("keys.new")
    staged.write_text("\n".join(lines) + "\n")
    os.replace(staged, service.keys_file)
    service.keys["risk"] = new
    deadline = time.monotonic() + 3 * RELOAD_SECONDS
    while status_with(service, old) != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    assert status_with(service, new) == 200
    assert service.server.process.poll() is None

    lines_logged = [json.loads(line) for line in service.server.logs().splitlines() if line.startswith("{")]
    answered = [line for line in lines_logged if line.get("request_id") == "keyed-1"]
    assert answered, "the explained prediction has an access line"
    assert all(line["client"] == "risk" for line in answered)
    assert all(line["key_id"] == key_id(digest(old)) for line in answered)
    assert any("API keys reloaded" in line["message"] for line in lines_logged)
    assert old not in service.server.logs()
    assert new not in service.server.logs()


def test_an_oncall_read_only_key_reads_a_pods_model_and_runs_no_prediction(
    keyed_bankchurn: KeyedService,
) -> None:
    """The runbooks' "Reading a pod's /model": a line of scope=read added to the running service's
    file, as to its Secret, opens /model and the metadata, and a prediction answers 403."""
    service = keyed_bankchurn
    oncall = new_key()
    staged = service.keys_file.with_name("keys.oncall")
    line = key_line("oncall", oncall, scope="read")
    staged.write_text(service.keys_file.read_text() + line + "\n")
    os.replace(staged, service.keys_file)
    deadline = time.monotonic() + 3 * RELOAD_SECONDS
    while status_with(service, oncall) != 200:
        assert time.monotonic() < deadline, "the on-call key is not taken"
        time.sleep(0.2)
    headers = {"authorization": f"Bearer {oncall}", "x-request-id": "oncall-1"}
    model = http_client.get(f"{service.server.url}/model", headers=headers, timeout=10).json()
    assert {"refresh", "canary", "live_evaluation"} <= set(model)
    assert (
        http_client.get(f"{service.server.url}/v2/models/bankchurn", headers=headers, timeout=10).status_code
        == 200
    )
    refused = http_client.post(f"{service.server.url}/predict", json={}, headers=headers, timeout=10)
    assert refused.status_code == 403
    assert "oncall's key reads metadata only (scope=read)" in refused.json()["message"]
    assert status_with(service, service.keys["risk"]) == 200  # the clients' keys are as they were
    logged = [json.loads(text) for text in service.server.logs().splitlines() if '"oncall-1"' in text]
    assert {(entry["client"], entry["error"]["code"]) for entry in logged if "error" in entry} == {
        ("oncall", "forbidden")
    }
    assert oncall not in service.server.logs()
