"""The order test files are handed out in, and the record of what each file took."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduling import DurationRecorder, file_of, longest_first, recorded_seconds

pytest_plugins = ["pytester"]

IDS = [
    "a/test_quick.py::test_one",
    "a/test_quick.py::test_two",
    "b/test_slow.py::test_one",
    "b/test_slow.py::Suite::test_two[x]",
    "c/test_new.py::test_one",
    "d/test_middle.py::test_one",
    "e/test_also_middle.py::test_one",
]
SECONDS = {
    "a/test_quick.py": 1.0,
    "b/test_slow.py": 90.0,
    "d/test_middle.py": 5.0,
    "e/test_also_middle.py": 5.0,
}


def test_the_file_is_the_test_id_up_to_its_first_separator() -> None:
    assert file_of("b/test_slow.py::Suite::test_two[x::y]") == "b/test_slow.py"


def test_files_go_longest_first_with_an_unrecorded_one_before_them_all() -> None:
    assert longest_first(IDS, SECONDS) == [
        "c/test_new.py::test_one",
        "b/test_slow.py::test_one",
        "b/test_slow.py::Suite::test_two[x]",
        "d/test_middle.py::test_one",
        "e/test_also_middle.py::test_one",
        "a/test_quick.py::test_one",
        "a/test_quick.py::test_two",
    ]


def test_files_of_equal_weight_keep_the_collection_order() -> None:
    reordered = [IDS[6], *IDS[:6]]
    assert longest_first(reordered, SECONDS)[3:5] == [
        "e/test_also_middle.py::test_one",
        "d/test_middle.py::test_one",
    ]


def test_nothing_recorded_reads_as_no_seconds(tmp_path: Path) -> None:
    assert recorded_seconds(tmp_path / "durations.json") == {}


def test_the_committed_record_names_files_that_exist() -> None:
    recorded = recorded_seconds()
    root = Path(__file__).parents[1]
    assert recorded, "tests/durations.json is empty: run make test-durations"
    assert [path for path in recorded if not (root / path).is_file()] == []


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    """Two test files, one of which takes 0.3 s between its set-up and its call, and a record."""
    pytester.makepyfile(
        test_slow="""
            import time
            import pytest

            @pytest.fixture
            def slow_start():
                time.sleep(0.2)

            def test_slow(slow_start):
                time.sleep(0.1)
        """,
        test_quick="def test_quick():\n    assert True\n",
    )
    record = pytester.path / "durations.json"
    record.write_text(json.dumps({"test_gone_elsewhere.py": 7.0}))
    return record


def run_recording(pytester: pytest.Pytester, record: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args, plugins=[DurationRecorder(record)])


def test_a_passing_run_records_each_file_and_keeps_the_files_it_did_not_run(
    pytester: pytest.Pytester, suite: Path
) -> None:
    run_recording(pytester, suite).assert_outcomes(passed=2)
    recorded = json.loads(suite.read_text())
    assert list(recorded) == ["test_gone_elsewhere.py", "test_slow.py", "test_quick.py"]
    assert recorded["test_slow.py"] >= 0.3
    assert recorded["test_quick.py"] < 0.3


@pytest.mark.parametrize("args", [["-k", "slow"], ["-m", "not slow"]])
def test_a_run_that_chose_tests_within_files_records_nothing(
    pytester: pytest.Pytester, suite: Path, args: list[str]
) -> None:
    run_recording(pytester, suite, *args)
    assert json.loads(suite.read_text()) == {"test_gone_elsewhere.py": 7.0}


def test_a_failed_run_records_nothing(pytester: pytest.Pytester, suite: Path) -> None:
    pytester.makepyfile(test_failing="def test_failing():\n    assert False\n")
    run_recording(pytester, suite).assert_outcomes(passed=2, failed=1)
    assert json.loads(suite.read_text()) == {"test_gone_elsewhere.py": 7.0}
