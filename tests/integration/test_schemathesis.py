"""Property-based fuzzing of every live service's OpenAPI: no input may produce a 5xx, and every
answer is one the document declares."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from processes import BIN, ROOT, Server
from servekit import registry

pytestmark = pytest.mark.integration

#: Cases per operation, besides the coverage phase's own. 50 give each service 1,026 to 1,277
#: cases (2026-12-02), twice the 500 asked for, in about 20 s; 150 gave about 2,000 in 45 to 90 s
#: and made this the suite's longest file, on two cores that have no idle time to lend it.
MAX_EXAMPLES = 50
#: No 5xx, and every answer as the document says: a status, media type, headers and body it
#: declares for the operation. Not the checks of what a request should get (schemathesis's
#: positive_data_acceptance, negative_data_rejection): they count as valid what the schema
#: cannot rule out and the service refuses by design (a trip over 80 mph, a text of invisible
#: characters, a batch over the limit, 413 before 422), each a 4xx naming the field.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.mark.parametrize("name", registry.available())
def test_no_generated_request_gets_a_5xx_or_an_answer_the_document_does_not_declare(
    name: str, live_services: dict[str, Server], tmp_path: Path
) -> None:
    server = live_services[name]
    report = tmp_path / "events.ndjson"
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
            "--workers",
            "1",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    tail = result.stdout[-4000:]
    assert result.returncode == 0, tail
    cases = count_cases(report)
    print(f"schemathesis {name}: {cases} test cases, exit {result.returncode}")
    assert cases >= 500, tail


def count_cases(report: Path) -> int:
    """Requests schemathesis sent, from its NDJSON event log."""
    total = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for value in event.values():
            if isinstance(value, dict) and "recorder" in value:
                total += len(value["recorder"].get("interactions", {}))
    return total
