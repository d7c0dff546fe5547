"""Validation shared by every transport: what a body must be before a model sees it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter

from servekit.errors import MAX_LISTED_PROBLEMS, ServekitError
from servekit.inference import (
    COUNTED_BODY_BYTES,
    batch_adapter,
    duplicate_key,
    fields_limit,
    refuse_field_floods,
    reject_duplicate_keys,
    validate_batch_json,
    validate_json,
)


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age: int
    city: str = "Lyon"


SINGLE = TypeAdapter(Row)
BATCH = batch_adapter(Row)


def rejected(adapter: TypeAdapter[object], body: bytes | str) -> ServekitError:
    with pytest.raises(ServekitError) as caught:
        validate_json(adapter, body)
    assert caught.value.status_code == 422
    return caught.value


def test_a_key_given_twice_is_named_with_where_it_came_again() -> None:
    error = rejected(SINGLE, b'{"age": 42,\n "age": 24}')
    assert [(p.field, p.problem) for p in error.fields] == [
        ("age", "given more than once in one object (again near line 2, column 8); send each field once")
    ]
    assert error.message.startswith("1 problem: age: given more than once")


def test_a_key_given_twice_inside_a_batch_instance_is_refused_too() -> None:
    with pytest.raises(ServekitError) as caught:
        validate_batch_json(BATCH, '{"instances": [{"age": 1}, {"age": 2, "city": "Nice", "city": "Metz"}]}')
    assert caught.value.fields[0].field == "instances[1].city"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"parameters": {"explain": true, "explain": false}}', "parameters.explain"),
        ('{"a": [{"b": {"c": 1}}, {"b": {"c": 1, "c": 2}}]}', "a[1].b.c"),
        # The object that repeats the key the parser named, not one that holds it once.
        ('{"c": {"c": 1}, "c": 2}', "c"),
        ('{"x": {"x": 1, "x": 2}}', "x.x"),
    ],
)
def test_a_repeated_key_is_named_by_its_path(body: str, field: str) -> None:
    """As every other problem is (``instances[3].Age``): the key alone does not say which instance."""
    with pytest.raises(ServekitError) as caught:
        reject_duplicate_keys(body)
    assert [problem.field for problem in caught.value.fields] == [field]


def test_the_same_key_in_different_objects_is_not_a_repeat() -> None:
    records = validate_batch_json(BATCH, b'{"instances": [{"age": 1}, {"age": 2}]}')
    assert records == [{"age": 1, "city": "Lyon"}, {"age": 2, "city": "Lyon"}]


def test_a_body_that_fails_validation_reports_that_first() -> None:
    error = rejected(SINGLE, b'{"age": "old", "age": "older"}')
    assert error.fields[0].problem.startswith("Input should be a valid integer")


def test_keys_with_escapes_are_reported_as_parsed() -> None:
    class Quoted(BaseModel):
        model_config = ConfigDict(extra="allow")

    error = rejected(TypeAdapter(Quoted), b'{"a\\"b": 1, "a\\"b": 2}')
    assert error.fields[0].field == 'a"b'


def test_a_parser_message_of_another_form_still_names_the_body() -> None:
    error = duplicate_key("something else entirely")
    assert [(p.field, p.problem) for p in error.fields] == [("body", "not accepted: something else entirely")]


def test_text_that_cannot_be_utf8_is_a_422_not_a_crash() -> None:
    with pytest.raises(ServekitError) as caught:
        reject_duplicate_keys('{"city": "\ud800"}')
    assert caught.value.status_code == 422
    assert caught.value.fields[0].field == "body"


def test_a_body_of_thousands_of_problems_lists_the_first_and_counts_them_all() -> None:
    """A megabyte of unknown keys was answered with each of its 100,000 problems: 6.7 MB, built on
    the event loop."""
    body = "{" + ",".join(f'"k{i}": 0' for i in range(5_000)) + "}"
    error = rejected(SINGLE, body)
    assert len(error.fields) == MAX_LISTED_PROBLEMS
    assert error.fields[0].field == "age"  # the missing field first, as pydantic reports it
    assert error.fields[1].field == "k0"
    assert error.message.startswith("5,001 problems: age: Field required; k0: Extra inputs")
    assert error.message.endswith(f"(fields lists the first {MAX_LISTED_PROBLEMS})")


def test_a_body_of_as_many_problems_as_are_listed_says_nothing_of_more() -> None:
    body = "{" + ",".join(f'"k{i}": 0' for i in range(MAX_LISTED_PROBLEMS - 1)) + "}"
    error = rejected(SINGLE, body)
    assert len(error.fields) == MAX_LISTED_PROBLEMS
    assert "fields lists" not in error.message


def test_a_large_body_of_more_fields_than_any_request_holds_is_refused_before_validation() -> None:
    """pydantic held the interpreter (event loop and probes) for a second listing a megabyte of
    unknown fields, in any thread; they are counted first, in a twentieth of that."""
    limit = fields_limit(Row, max_batch_size=4)
    assert limit == 4 * (2 + 4) + 64
    flood = "{" + ",".join(f'"k{i}": 0' for i in range(10_000)) + "}"
    assert len(flood) > COUNTED_BODY_BYTES
    with pytest.raises(ServekitError) as caught:
        refuse_field_floods(flood, limit)
    assert [(p.field, p.problem.split(",")[0]) for p in caught.value.fields] == [
        ("body", f"holds over {limit} fields")
    ]
    # Nested ones count too (a batch's instances), and a body under the size is left to validation.
    nested = '{"instances": [' + ",".join('{"age": 1, "city": "x"}' for _ in range(3_000)) + "]}"
    assert len(nested) > COUNTED_BODY_BYTES
    with pytest.raises(ServekitError):
        refuse_field_floods(nested, limit)
    refuse_field_floods("{" + ",".join(f'"k{i}": 0' for i in range(1_000)) + "}", limit)


def test_a_large_body_within_the_fields_limit_or_not_json_is_left_to_validation() -> None:
    long_texts = (
        '{"instances": [' + ",".join(f'{{"age": 1, "city": "{"x" * 20_000}"}}' for _ in range(4)) + "]}"
    )
    refuse_field_floods(long_texts, fields_limit(Row, max_batch_size=4))
    refuse_field_floods("{" * 100_000, 10)  # malformed: validation says where
