"""The --cpu file: the CPU a prediction costs a replica, by service and kind, as
``python -m servekit.bench.cpu`` measures it or ``servekit.bench.observed`` reads it from production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from costing.errors import CostError

#: The --cpu kind of figures read from production's Prometheus (python -m servekit.bench.observed),
#: and what only those figures carry: the access and service log bytes of a prediction.
OBSERVED = "observed"
#: The measured kind whose capture line a shadow's answer writes: a prediction, never explained.
SHADOW_LINE_KIND = "predict"
#: A measured kind's figures on a replica with a shadow model beside (python -m servekit.bench.cpu).
WITH_SHADOW = "with_shadow"
OPERATIONAL_BYTES = "operational_log_bytes_per_prediction"


#: How a --cpu file is made, for the message that finds none (or another report).
MAKE_CPU = (
    "make cost measures it (python -m servekit.bench.cpu --output reports/cpu.json), make cost-observed "
    "reads it from production"
)


def read_cpu(path: Path) -> dict[str, Any]:
    """A --cpu file's figures: each service's kinds, each with its CPU a prediction; else a
    :class:`CostError` naming the file, what is wrong, and how to make one."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CostError(f"--cpu {path}: {error.strerror or error}; {MAKE_CPU}") from None
    try:
        figures: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise CostError(f"--cpu {path}: not JSON ({error}); {MAKE_CPU}") from None
    services = figures.get("services") if isinstance(figures, dict) else None
    if not isinstance(services, dict) or not services:
        raise CostError(f'--cpu {path}: no "services" with CPU figures; {MAKE_CPU}')
    for service, kinds in services.items():
        wrong = (
            [f"{service} is {type(kinds).__name__}"]
            if not isinstance(kinds, dict) or not kinds
            else [
                kind
                for kind, found in kinds.items()
                if not isinstance(found, dict)
                or not isinstance(found.get("cpu_ms_per_prediction"), int | float)
                or found["cpu_ms_per_prediction"] <= 0
            ]
        )
        if wrong:
            # bench.json and soak.json have "services" too, of other figures.
            raise CostError(
                f"--cpu {path}: {service}'s {', '.join(map(repr, wrong[:3]))} carry no "
                "cpu_ms_per_prediction: not the CPU figures of python -m servekit.bench.cpu or "
                f"servekit.bench.observed; {MAKE_CPU}"
            )
    checked: dict[str, Any] = figures
    return checked
