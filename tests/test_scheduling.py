"""The order test files are handed out in, and the record of what each file took."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduling import CpuMeter, DurationRecorder, Record, file_of, longest_first, recorded

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
    "a/test_quick.py": Record(1.0, 0.9),
    "b/test_slow.py": Record(90.0),  # recorded before CPU seconds were
    "d/test_middle.py": Record(5.0, 5.0),
    "e/test_also_middle.py": Record(5.0, 4.0),
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


def test_a_file_that_waits_is_not_handed_out_after_another_while_a_busy_one_is_left() -> None:
    """The Alertmanager and Locust files, longest but two and three, ran side by side and left a
    core idle for a minute and a half."""
    records = {
        "bench.py": Record(120.0, 110.0),
        "alertmanager.py": Record(100.0, 20.0),
        "locust.py": Record(80.0, 30.0),
        "score.py": Record(79.0, 120.0),
        "gossip.py": Record(40.0, 10.0),
        "quick.py": Record(2.0, 1.9),
        "pair.py": Record(35.0, 5.0),
    }
    ids = [f"{path}::test" for path in records]
    order = [file_of(nodeid) for nodeid in longest_first(ids, records)]
    # Busy files wait their turn by length; the waiting ones go between them while they last.
    assert order == [
        "bench.py",
        "alertmanager.py",
        "score.py",
        "locust.py",
        "quick.py",
        "gossip.py",
        "pair.py",
    ]
    assert [records[path].waits for path in order] == [False, True, False, True, False, True, True]


def test_nothing_recorded_reads_as_no_records(tmp_path: Path) -> None:
    assert recorded(tmp_path / "durations.json") == {}


def test_a_record_of_seconds_alone_reads_as_a_busy_file(tmp_path: Path) -> None:
    record = tmp_path / "durations.json"
    record.write_text(json.dumps({"old.py": 7.0, "new.py": {"seconds": 7.0, "cpu_seconds": 1.0}}))
    assert recorded(record) == {"old.py": Record(7.0), "new.py": Record(7.0, 1.0)}
    assert [r.waits for r in recorded(record).values()] == [False, True]


def test_the_committed_record_names_files_that_exist_with_their_cpu_seconds() -> None:
    records = recorded()
    root = Path(__file__).parents[1]
    assert records, "tests/durations.json is empty: run make test-durations"
    assert [path for path in records if not (root / path).is_file()] == []
    assert [path for path, record in records.items() if record.cpu_seconds is None] == []


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    """Three test files: one waits 0.3 s between its set-up and its call, one spins for 0.3 s of
    CPU; and a record."""
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
        test_busy="""
            import time

            def test_busy():
                start = time.process_time()
                while time.process_time() - start < 0.3:
                    pass
        """,
    )
    record = pytester.path / "durations.json"
    record.write_text(json.dumps(GONE_ELSEWHERE))
    return record


GONE_ELSEWHERE = {"test_gone_elsewhere.py": {"seconds": 7.0, "cpu_seconds": 6.0}}


def run_recording(pytester: pytest.Pytester, record: Path, *args: str) -> pytest.RunResult:
    plugins = [CpuMeter(), DurationRecorder(record)]
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args, plugins=plugins)


def test_a_passing_run_records_each_file_and_keeps_the_files_it_did_not_run(
    pytester: pytest.Pytester, suite: Path
) -> None:
    run_recording(pytester, suite).assert_outcomes(passed=3)
    records = recorded(suite)
    first, *others = records
    assert first == "test_gone_elsewhere.py"
    assert records["test_gone_elsewhere.py"] == Record(7.0, 6.0)
    assert others in (
        ["test_busy.py", "test_slow.py", "test_quick.py"],
        ["test_slow.py", "test_busy.py", "test_quick.py"],
    )
    assert records["test_slow.py"].seconds >= 0.3
    assert records["test_quick.py"].seconds < 0.3
    # The one that slept waits; the one that spun does not.
    assert records["test_slow.py"].waits
    assert not records["test_busy.py"].waits
    assert (records["test_busy.py"].cpu_seconds or 0.0) >= 0.25


@pytest.mark.parametrize("args", [["-k", "slow"], ["-m", "not slow"]])
def test_a_run_that_chose_tests_within_files_records_nothing(
    pytester: pytest.Pytester, suite: Path, args: list[str]
) -> None:
    run_recording(pytester, suite, *args)
    assert json.loads(suite.read_text()) == GONE_ELSEWHERE


def test_a_failed_run_records_nothing(pytester: pytest.Pytester, suite: Path) -> None:
    pytester.makepyfile(test_failing="def test_failing():\n    assert False\n")
    run_recording(pytester, suite).assert_outcomes(passed=3, failed=1)
    assert json.loads(suite.read_text()) == GONE_ELSEWHERE
