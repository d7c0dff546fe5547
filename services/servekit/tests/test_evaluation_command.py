"""``mlp evaluate`` as a command: its report, its refusals before the registry is asked, its runs'
links and a run stopped before its figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from evaluation_logs import (
    capture_line,
)
from toy import TOY

from servekit import cli, evaluation
from servekit.evaluation import (
    Grouper,
    assess,
    join,
    render,
)
from servekit.replay.capture_lines import read_lines
from servekit.training.uncertainty import Interval


def test_the_report_gives_each_version_its_figure_verdict_groups_and_what_did_not_meet(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    lines = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    lines += [capture_line("late", 0, rows[0], answers[0], version="2")]
    lines += [capture_line("twice", 0, rows[1], answers[1])] * 2
    table = {(f"r{i}", 0): float(y + 1.0) for i, y in enumerate(truth)} | {
        ("late", 0): 1.0,
        ("gone", 0): 2.0,
        ("twice", 0): 3.0,
    }
    joined = join(read_lines(lines), "toy", Grouper(TOY.recipe), table)
    held_out = Interval(0.5, 0.45, 0.55)
    qualities = [
        # A note beside a figure says which rows it is over (recomputed ones); without one, why none.
        assess(a, Grouper(TOY.recipe), None, held_out_note="x")
        if a.version != "1"
        else assess(a, Grouper(TOY.recipe), held_out)
        for a in joined.versions
    ]
    text = render(joined, qualities, "truth.csv").splitlines()
    assert text[0].startswith("toy v1: 300 answers with their truth: mae ")
    assert "against 0.5000 held out (95% CI 0.4500-0.5500): +" in text[0]
    assert text[0].endswith(", worse (the two intervals combined: its run kept no held-out answers)")
    assert (
        text[1]
        == "toy v2: 1 answer with its truth: no figure: fewer than 100 answers with their truth (--min-rows)"
    )
    # The figures are over 301: the count says so, not only the line explaining the two.
    assert (
        text[2]
        == "toy: 303 of 303 captured answers have a truth row in truth.csv, 2 of them left out (below)"
    )
    # A request refused with a 4xx got no answer, so no capture: a third of real ChicagoTaxi
    # trips, at 100 % capture, were blamed on the sample.
    assert text[3] == (
        "toy: 1 truth row without a captured answer (requests refused with a 4xx, which got no answer "
        "to capture; requests the capture did not sample, see TOY_CAPTURE_PERCENT; or answers captured "
        "in another file)"
    )
    assert text[4] == (
        "toy: 1 truth row left out, for answers captured more than once under one request id and "
        "instance: which answer the truth is of is unknown"
    )


def test_the_command_refuses_a_missing_or_bad_file_before_it_asks_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    captures = tmp_path / "captures.log"
    captures.write_text("")
    truth = tmp_path / "truth.csv"
    truth.write_text("request_id,Exited\nr,2\n")
    unreachable = ["--tracking-uri", "http://127.0.0.1:9"]
    # A Job named for runs that are not logged, or a Job with no name (a label the pod lacks).
    argv = ["evaluate", "bankchurn", str(captures), "--truth", str(truth), *unreachable]
    assert cli.main([*argv, "--job", "bankchurn-live-evaluation-2900"]) == 2
    assert (
        "evaluate: --job bankchurn-live-evaluation-2900: names the Job on the runs --log records; add --log"
        in capsys.readouterr().err
    )
    assert cli.main([*argv, "--log", "--job", ""]) == 2
    assert "evaluate: --job: empty; name the Kubernetes Job running the evaluation" in capsys.readouterr().err
    assert (
        cli.main(["evaluate", "bankchurn", str(tmp_path / "none.log"), "--truth", str(truth), *unreachable])
        == 2
    )
    assert (
        "evaluate: " + str(tmp_path / "none.log") + ": no such file or directory" in capsys.readouterr().err
    )
    (tmp_path / "empty" / "2026").mkdir(parents=True)
    assert (
        cli.main(["evaluate", "bankchurn", str(tmp_path / "empty"), "--truth", str(truth), *unreachable]) == 2
    )
    assert (
        "evaluate: " + str(tmp_path / "empty") + ": a directory without a file to read"
        in capsys.readouterr().err
    )
    assert (
        cli.main(
            ["evaluate", "bankchurn", str(captures), "--truth", str(tmp_path / "none.csv"), *unreachable]
        )
        == 2
    )
    assert "--truth " + str(tmp_path / "none.csv") + ": no such file" in capsys.readouterr().err
    assert cli.main(["evaluate", "bankchurn", str(captures), "--truth", str(truth), *unreachable]) == 2
    err = capsys.readouterr().err
    assert "column 'Exited': every value must be 0 or 1; line(s) 2, e.g. '2'" in err


@pytest.mark.parametrize("before", [None, "false"])
def test_mlflow_run_links_are_unprinted_only_while_a_run_is_logged(
    before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before is None:
        monkeypatch.delenv(evaluation.SUPPRESS_RUN_LINKS, raising=False)
    else:
        monkeypatch.setenv(evaluation.SUPPRESS_RUN_LINKS, before)
    with evaluation.run_links_unprinted():
        assert os.environ[evaluation.SUPPRESS_RUN_LINKS] == "true"
    assert os.environ.get(evaluation.SUPPRESS_RUN_LINKS) == before


def test_a_run_stopped_before_its_figures_are_in_is_marked_failed_not_left_running(
    mlflow_client: Any,
) -> None:
    """SIGTERM (``Terminated``) or a registry error between the run's creation and its figures."""
    from servekit.evaluation import recording
    from servekit.termination import Terminated

    class StoppedWhileLogging:
        def __getattr__(self, name: str) -> Any:
            return getattr(mlflow_client, name)

        def log_batch(self, *args: Any, **kwargs: Any) -> None:
            raise Terminated()

    with pytest.raises(Terminated):
        recording._logged(StoppedWhileLogging(), "stopped", "stopped-v1-live", {}, {"mae": 0.2})
    experiment = mlflow_client.get_experiment_by_name("stopped")
    (run,) = mlflow_client.search_runs([experiment.experiment_id])
    assert (run.info.status, run.data.metrics) == ("FAILED", {})
    run_id = recording._logged(mlflow_client, "stopped", "stopped-v1-live", {}, {"mae": 0.2})
    finished = mlflow_client.get_run(run_id)
    assert (finished.info.status, finished.data.metrics) == ("FINISHED", {"mae": 0.2})


def bankchurn_log(tmp_path: Path, lines: list[str], registry: Any) -> list[str]:
    """``mlp evaluate bankchurn`` over ``lines`` against a truth row for r0 to r2."""
    captures, truth = tmp_path / "captures.log", tmp_path / "truth.csv"
    captures.write_text("".join(f"{line}\n" for line in lines))
    truth.write_text("request_id,Exited\nr0,1\nr1,0\nr2,0\n")
    return [
        "evaluate",
        "bankchurn",
        str(captures),
        "--truth",
        str(truth),
        "--tracking-uri",
        registry.tracking_uri,
    ]


def churn_capture(request_id: str, **change: Any) -> str:
    from bankchurn.schema import EXAMPLE

    answer = {"churn_probability": 0.2, "label": "stay", "threshold": 0.3} | change.pop("answer", {})
    row = {**EXAMPLE, **change}
    return capture_line(request_id, 0, row, answer, name="bankchurn")


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        # The same log copied twice into the directory read: each answer is there twice.
        (
            [churn_capture(f"r{i}") for i in range(3)] * 2,
            "was captured more than once (3 of them: the same log",
        ),
        (
            [capture_line("r0", 0, {}, {"value": 1.0})],
            "no captured answer of bankchurn; its 1 captures are another",
        ),
        (
            [line.replace('"request_id": "r0", ', "") for line in [churn_capture("r0")]],
            "has a request id to meet the truth by (capture objects without the log line",
        ),
        ([], "no capture lines of bankchurn (logger servekit.capture) in it"),
        # Not what the service captures: an edited line, named rather than a traceback from pandas.
        ([churn_capture("r0", Age="42")], "line 1: a bankchurn input that cannot be grouped (TypeError"),
        (
            [churn_capture("r0", answer={"churn_probability": None})],
            "line 1: a bankchurn answer whose output None is not a number",
        ),
        (
            [churn_capture("r0", answer={"churn_probability": "0.5"})],
            "line 1: a bankchurn answer whose output '0.5' is not a number",
        ),
    ],
)
def test_when_no_answer_meets_its_truth_the_command_says_why(
    lines: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mlflow_client: Any
) -> None:
    assert cli.main(bankchurn_log(tmp_path, lines, mlflow_client)) == 2
    assert problem in capsys.readouterr().err


def test_a_truth_file_given_as_a_pipe_is_refused_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mlflow_client: Any
) -> None:
    argv = bankchurn_log(tmp_path, [churn_capture("r0")], mlflow_client)
    pipe = tmp_path / "truth-pipe"
    os.mkfifo(pipe)
    argv[argv.index("--truth") + 1] = str(pipe)
    assert cli.main(argv) == 2
    assert (
        f"--truth {pipe}: not a regular file (a pipe?); save it to a file and name that"
        in capsys.readouterr().err
    )
