"""The one error shape: what a client reads for each pydantic error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import servekit
from servekit.errors import ERROR_CODES, MAX_FIELD_LENGTH, FieldProblem, from_validation_errors, problem_text


class Trip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    miles: float = Field(gt=0)
    start: str

    @field_validator("start")
    @classmethod
    def _a_time(cls, value: str) -> str:
        if value == "yesterday":
            raise ValueError("not a time between 2000 and 2100")
        return value


def problems(payload: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Trip.model_validate(payload)
    error = from_validation_errors(caught.value.errors(include_url=False))
    assert error.status_code == 422
    return {problem.field: problem.problem for problem in error.fields}


def test_a_validators_own_message_reaches_the_client_without_the_exception_kind() -> None:
    assert problems({"miles": 1, "start": "yesterday"}) == {"start": "not a time between 2000 and 2100"}


def test_pydantics_own_messages_are_unchanged() -> None:
    assert problems({"miles": 0}) == {"miles": "Input should be greater than 0", "start": "Field required"}


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Value error, not a time", "not a time"),
        # What an ``assert`` in a validator gives (pytest rewrites asserts in test modules).
        ("Assertion failed, too long", "too long"),
        ("Input should be a valid number", "Input should be a valid number"),
        # Only the prefix pydantic adds goes; the same words later in a message are the message.
        ("expected 'Value error, x'", "expected 'Value error, x'"),
        ("Value error, Value error, twice", "Value error, twice"),
    ],
)
def test_problem_text(message: str, shown: str) -> None:
    assert problem_text(message) == shown


def test_the_summary_uses_the_same_text() -> None:
    with pytest.raises(ValidationError) as caught:
        Trip.model_validate({"miles": 1, "start": "yesterday"})
    assert from_validation_errors(caught.value.errors()).message == (
        "1 problem: start: not a time between 2000 and 2100"
    )


def test_a_field_name_thousands_of_characters_long_is_named_by_its_start_and_its_length() -> None:
    """A JSON key is the client's to choose; the answer need not echo 5,000 characters of it."""
    key = "k" * 5000
    assert problems({"miles": 1, "start": "9:00", key: 1}) == {
        f"{'k' * MAX_FIELD_LENGTH}... (5,000 characters)": "Extra inputs are not permitted"
    }


def test_a_field_name_up_to_the_limit_is_kept_whole() -> None:
    name = "instances[255]." + "x" * (MAX_FIELD_LENGTH - 15)
    assert FieldProblem(name, "Field required").field == name
    assert (
        FieldProblem(name + "y", "Field required").field == f"{name}... ({MAX_FIELD_LENGTH + 1:,} characters)"
    )


#: The modules whose errors reach a client of a service (over HTTP, or gRPC's same codes); the
#: others' (training, rollouts, the registry's) end a command, never an answer.
SERVING_MODULES = ("rest", "auth", "codecs", "rpc", "admission.py", "errors.py", "inference.py")
SERVING_MODULES += ("protocol.py", "routing.py", "runtime.py")


def raised_codes(paths: list[Path]) -> dict[str, str]:
    """Each code literal a ``ServekitError(status, code, ...)`` in ``paths`` is built with, and where."""
    codes = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name != "ServekitError":
                continue
            code = node.args[1] if len(node.args) > 1 else None
            code = code or next((k.value for k in node.keywords if k.arg == "error"), None)
            assert isinstance(code, ast.Constant), f"{path}:{node.lineno}: a code not written out"
            codes[code.value] = f"{path.name}:{node.lineno}"
    return codes


def test_every_error_code_the_service_raises_is_in_the_documented_set() -> None:
    """ERROR_CODES is the document's enum of ErrorBody.error: a code raised but not in it would be
    an answer a generated client cannot parse."""
    package = Path(servekit.__file__).parent
    paths = [
        path
        for module in SERVING_MODULES
        for path in ([package / module] if module.endswith(".py") else (package / module).rglob("*.py"))
    ]
    raised = raised_codes(paths)
    assert {code: where for code, where in raised.items() if code not in ERROR_CODES} == {}
    # Nor one in the set that nothing raises any more.
    assert set(ERROR_CODES) - set(raised) == set()
