"""Property-based fuzzing of the managed targets' handlers: whatever the body, media type and
Accept header, SageMaker's ``transform_fn`` and the Vertex AI handler answer the REST service's
batch body or refuse with a 4xx naming the field, never anything else.

schemathesis fuzzes the REST service through its OpenAPI document; these handlers have none, and
read two more forms (CSV and a bare JSON list) with parsers of their own. The requests are drawn
from each service's own example, mutated field by field (any JSON value, a field dropped or
added, the batch wrapped or not), as CSV rows of mutated cells, and as raw bytes.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import string
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (
    FUZZ,
    JSON_VALUES,
    assert_both_kinds_drawn,
    assert_refusal_names_the_problem,
    documented_example,
    example,
    sometimes,
    trained,
)
from servekit import registry
from servekit.managed import sagemaker
from servekit.managed.common import LoadedModel, from_artifact
from servekit.testing import cpr_request, vertex_handler

CELLS = st.text(alphabet=string.printable + "é\u200b\ufeff", max_size=10)
#: Media types a request may be refused for (415, or 422 naming the parameter).
ODD_MEDIA_TYPES = [
    "application/json; explain=true",
    "text/csv; charset=latin-1",
    "text/csv; header=maybe",
    "text/plain",
    "",
]
ACCEPTS = st.sampled_from(["application/json", "*/*", "application/*", "", "text/html"]) | st.text(
    max_size=12
)


@functools.cache
def loaded(name: str) -> LoadedModel:
    return from_artifact(registry.get_service(name), trained(name))


@st.composite
def instances(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """The service's example with some fields given any JSON value, dropped, or added."""
    instance = example(name)
    if not sometimes(draw, 2):
        return instance
    for field in draw(st.lists(st.sampled_from(sorted(instance)), min_size=1, max_size=3, unique=True)):
        if draw(st.booleans()):
            instance[field] = draw(JSON_VALUES)
        else:
            del instance[field]
    if sometimes(draw, 1):
        instance[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    return instance


@st.composite
def json_bodies(draw: st.DrawFn, name: str) -> bytes:
    batch = draw(st.lists(instances(name), min_size=0 if sometimes(draw, 1) else 1, max_size=4))
    options = draw(st.sampled_from([{}, {"explain": True}, {"reasons": 2}, {"explain": False, "reasons": 0}]))
    if sometimes(draw, 2):
        options = draw(
            st.dictionaries(st.sampled_from(["explain", "reasons", "other"]), JSON_VALUES, max_size=2)
        )
    # SageMaker takes the options beside the instances, Vertex AI under "parameters".
    forms: dict[str, Any] = {
        "instances": {"instances": batch},
        "list": batch,
        "options": {"instances": batch, **options},
        "parameters": {"instances": batch, "parameters": options},
        "single": batch[0] if batch else {},
    }
    envelope = forms[draw(st.sampled_from(["instances", "list", "options", "parameters"] * 3 + ["single"]))]
    return json.dumps(envelope, allow_nan=True).encode()


@st.composite
def csv_bodies(draw: st.DrawFn, name: str) -> tuple[bytes, list[str]]:
    """CSV rows of the example's cells in the request's field order, some mutated, with or
    without a header, and the media types that say so."""
    fields = list(registry.get_service(name).request.model_fields)
    header = draw(st.booleans())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(fields)
    for _ in range(draw(st.integers(0 if sometimes(draw, 1) else 1, 3))):
        cells = [str(documented_example(name)[field]) for field in fields]
        if sometimes(draw, 2):
            for i in draw(st.lists(st.integers(0, len(cells) - 1), min_size=1, max_size=3)):
                cells[i] = draw(CELLS)
        writer.writerow(cells)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    said = [
        "text/csv",
        "text/csv; explain=true; reasons=2",
        f"text/csv; header={'present' if header else 'absent'}",
    ]
    return out.getvalue().encode(encoding, errors="replace"), said


@st.composite
def requests(draw: st.DrawFn, name: str) -> tuple[bytes, str]:
    """A body and its media type: JSON or CSV said as such, mostly; else said as anything, or
    bytes at random."""
    kind = draw(st.sampled_from(["json"] * 6 + ["csv"] * 3 + ["bytes"]))
    if kind == "json":
        body, said = draw(json_bodies(name)), ["application/json", "application/json; charset=utf-8"]
    elif kind == "csv":
        body, said = draw(csv_bodies(name))
    else:
        body, said = draw(st.binary(max_size=64)), ["application/json", "text/csv"]
    if sometimes(draw, 8):
        return body, draw(st.sampled_from(said))
    return body, draw(st.sampled_from(ODD_MEDIA_TYPES) | st.text(max_size=20))


def assert_answer(body: bytes, seen: Counter[int]) -> None:
    answer = json.loads(body)
    assert isinstance(answer["predictions"], list), answer
    assert answer["predictions"], answer
    seen[200] += 1


@pytest.mark.parametrize("name", registry.available())
def test_sagemaker_answers_or_refuses_with_a_4xx_whatever_it_is_sent(name: str) -> None:
    model = loaded(name)
    seen: Counter[int] = Counter()

    @FUZZ
    @given(request=requests(name), accept=ACCEPTS)
    def handled(request: tuple[bytes, str], accept: str) -> None:
        body, content_type = request
        try:
            answer, media = sagemaker.transform_fn(model, body, content_type, accept)
        except sagemaker.InvalidRequest as refusal:
            assert_refusal_names_the_problem(refusal.status_code, json.loads(refusal.message), seen)
        else:
            assert media == "application/json"
            assert_answer(answer, seen)

    handled()
    assert_both_kinds_drawn(seen)


@pytest.mark.parametrize("name", registry.available())
def test_the_vertex_handler_answers_or_refuses_with_a_4xx_whatever_it_is_sent(name: str) -> None:
    handler = vertex_handler(loaded(name))
    seen: Counter[int] = Counter()

    @FUZZ
    @given(request=requests(name))
    def handled(request: tuple[bytes, str]) -> None:
        response = asyncio.run(handler.handle(cpr_request(*request)))
        if response.status_code == 200:
            assert_answer(response.body, seen)
        else:
            assert_refusal_names_the_problem(response.status_code, json.loads(response.body), seen)

    handled()
    assert_both_kinds_drawn(seen)
