"""The JSON reports the benchmarks write beside what they print (``reports/`` by default)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write(path: Path, report: Mapping[str, Any]) -> None:
    """``report`` as indented JSON at ``path``, its directory made if need be, and where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")
