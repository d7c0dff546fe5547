"""What the property-based fuzz tests share: hypothesis's settings, JSON values of any kind,
each service's documented example to mutate, and the check that a run drew both outcomes."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from servekit import registry
from servekit.model import ModelArtifact
from servekit.testing import train_in_memory

#: Examples per service and test: about 2 s each here, deterministic (``derandomize``).
EXAMPLES = 300
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def sometimes(draw: st.DrawFn, tenths: int) -> bool:
    """True ``tenths`` times in ten: most requests stay close enough to valid to be answered."""
    return draw(st.integers(0, 9)) < tenths


@functools.cache
def documented_example(name: str) -> dict[str, Any]:
    """The service's documented request (read only: schema generation is slow, so it is kept)."""
    return dict(registry.get_service(name).request.model_json_schema()["examples"][0])


def example(name: str) -> dict[str, Any]:
    """The service's documented request, a copy to mutate."""
    return dict(documented_example(name))


@functools.cache
def trained(name: str) -> ModelArtifact:
    """A model of the service trained in memory, once per test process."""
    artifact, _ = train_in_memory(registry.get_service(name), rows=1500)
    return artifact


def assert_refusal_names_the_problem(status: int, error: Mapping[str, Any], seen: Counter[int]) -> None:
    """A 4xx whose body says what is wrong (the REST error body), counted under its status."""
    assert 400 <= status < 500, (status, error)
    assert error["error"], error
    assert error["message"], error
    seen[status] += 1


def assert_both_kinds_drawn(seen: Counter[int]) -> None:
    """Answers and refusals both: a handler that refused everything would pass the rest."""
    print(dict(sorted(seen.items())))
    assert seen[200] >= EXAMPLES // 10, seen
    assert seen[422] >= EXAMPLES // 10, seen
