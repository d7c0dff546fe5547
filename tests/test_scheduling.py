"""The order test files are handed out in, and the record of what each file took."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scheduling import CpuMeter, DurationRecorder, Record, WaitingLane, file_of, longest_first, recorded

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

            def test_busy(mlflow_server):
                start = time.process_time()
                while time.process_time() - start < 0.3:
                    pass
        """,
    )
    # A stand-in for the session's MLflow server, under its name.
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef mlflow_server():\n    return 'up'\n")
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
    # Which used the session's servers: the lane may take a file that waits only if it did not.
    assert [records[f].session_servers for f in ("test_busy.py", "test_slow.py", "test_quick.py")] == [
        True,
        False,
        False,
    ]
    assert records["test_slow.py"].waits_alone
    assert not records["test_busy.py"].waits_alone


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


LANE_RECORDS = {
    "busy.py": Record(60.0, 58.0, session_servers=True),
    "waits_on_the_session.py": Record(50.0, 5.0, session_servers=True),
    "waits_alone.py": Record(40.0, 4.0, session_servers=False),
    "also_waits_alone.py": Record(30.0, 3.0, session_servers=False),
    "half_busy_alone.py": Record(20.0, 8.0, session_servers=False),
    "old_record.py": Record(10.0, 1.0),
}


def lane_scheduler(pytester: pytest.Pytester, files: list[str]) -> WaitingLane:
    config = pytester.parseconfig("--tx", "3*popen", "--dist", "loadfile")
    scheduler = WaitingLane(config, records=LANE_RECORDS)
    scheduler.workqueue.update((path, {f"{path}::test": False}) for path in files)
    return scheduler


class Worker:
    """What the scheduler reads of pytest-xdist's WorkerController: who it is, of how many."""

    def __init__(self, index: int, count: int) -> None:
        self.workerinput = {"workerid": f"gw{index}", "workercount": count}


def test_the_last_of_three_workers_takes_only_files_that_wait_without_the_session_servers(
    pytester: pytest.Pytester,
) -> None:
    scheduler = lane_scheduler(pytester, list(LANE_RECORDS))
    lane, first = Worker(2, 3), Worker(0, 3)
    assert scheduler.waits_alone("waits_alone.py")
    # Waiting on the session's servers would start them again; half a core is not waiting.
    assert not any(
        scheduler.waits_alone(f) for f in ("waits_on_the_session.py", "half_busy_alone.py", "old_record.py")
    )
    assert scheduler.next_file(lane) == "waits_alone.py"
    assert scheduler.next_file(first) == "busy.py"
    del scheduler.workqueue["busy.py"]
    assert scheduler.next_file(first) == "waits_on_the_session.py"


def test_the_other_workers_take_the_lanes_files_once_nothing_else_is_left(pytester: pytest.Pytester) -> None:
    scheduler = lane_scheduler(pytester, ["waits_alone.py", "also_waits_alone.py"])
    busy = Worker(1, 3)
    scheduler.assigned_work[busy] = {"busy.py": {"busy.py::test": False}}  # still running
    assert scheduler.next_file(busy) is None
    scheduler.assigned_work[busy]["busy.py"]["busy.py::test"] = True
    assert scheduler.next_file(busy) == "waits_alone.py"
    scheduler.workqueue.clear()
    assert scheduler.next_file(Worker(2, 3)) is None
    assert scheduler.next_file(Worker(1, 3)) is None


def test_with_two_workers_there_is_no_lane(pytester: pytest.Pytester) -> None:
    scheduler = lane_scheduler(pytester, ["waits_alone.py", "busy.py"])
    assert not scheduler.is_lane(Worker(1, 2))
    assert scheduler.next_file(Worker(1, 2)) == "busy.py"


def test_three_pytest_xdist_workers_keep_the_third_for_the_files_that_wait_alone(
    pytester: pytest.Pytester,
) -> None:
    """A run through pytest-xdist itself: the hook in the root conftest.py, in a conftest of its own."""
    names = ["busy_one", "busy_two", "busy_three", "waits_one", "waits_two"]
    for name in names:
        pytester.makepyfile(**{f"test_{name}": "import time\n\ndef test_it():\n    time.sleep(0.5)\n"})
    records = {
        f"test_{name}.py": {"seconds": 10.0, "cpu_seconds": 1.0 if "waits" in name else 9.0}
        | {"session_servers": False}
        for name in names
    }
    (pytester.path / "durations.json").write_text(json.dumps(records))
    pytester.makeconftest(
        f"""
        import sys
        from pathlib import Path
        import pytest
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from scheduling import WaitingLane, recorded

        @pytest.hookimpl(tryfirst=True)
        def pytest_xdist_make_scheduler(config, log):
            return WaitingLane(config, log, records=recorded(Path("durations.json")))
        """
    )
    result = pytester.runpytest_subprocess("-n", "3", "--dist", "loadfile", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    ran = {
        match.group(2): match.group(1)
        for match in re.finditer(r"\[(gw\d)\] .*PASSED (test_\w+)\.py", result.stdout.str())
    }
    assert {ran["test_waits_one"], ran["test_waits_two"]} == {"gw2"}, result.stdout.str()
    assert {ran[f"test_{name}"] for name in names[:3]} <= {"gw0", "gw1"}, result.stdout.str()
