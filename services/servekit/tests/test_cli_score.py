"""``mlp score`` as a command: what it refuses before the registry is asked or a row is scored,
where it writes (standard output, a device, a link), and Ctrl-C."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from toy import TOY, ToyModel

from servekit import cli, registry
from servekit.model import ModelArtifact
from servekit.scoring import pool, score_file
from servekit.scoring.files import writable_problem
from servekit.training.splitting import Split

#: No registry answers here: a command that asked it would exit 1, not 2.
NO_REGISTRY = ["--tracking-uri", "http://127.0.0.1:9"]
ROWS = "id,x,color,note\n007,3,red,\n008,2.5,blue,hello\n"


def score(source: Path, output: Path | str, *more: str) -> list[str]:
    return ["score", "bankchurn", str(source), "--output", str(output), *more, *NO_REGISTRY]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(ROWS)
    return path


@pytest.fixture
def toy_command(toy_trained: tuple[ModelArtifact, Split], monkeypatch: pytest.MonkeyPatch) -> None:
    """``mlp score toy ...`` answered by the toy model, without a registry."""
    artifact = toy_trained[0]
    monkeypatch.setattr(registry, "get_service", lambda name: TOY)
    monkeypatch.setattr("servekit.mlflow_registry.registry_client", lambda uri: None)
    monkeypatch.setattr("servekit.loading.load_artifact", lambda *args: artifact)


def test_an_output_that_is_a_directory_is_refused_before_the_registry(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found after the whole file was scored, it was an IsADirectoryError traceback and exit 1.
    directory = tmp_path / "scores"
    directory.mkdir()
    assert cli.main(score(source, directory)) == 2
    refused = "is a directory; name the file to write"
    assert capsys.readouterr().err == f"mlp: score: --output {directory}: {refused}\n"
    assert cli.main([*score(source, tmp_path / "scores.csv"), "--summary", str(directory)]) == 2
    assert f"mlp: score: --summary {directory}: {refused}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "scores"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("scores.json", ".json names a format mlp score does not write; name the output .csv, .csv.gz, "),
        ("scores.xlsx", ".xlsx names a format mlp score does not write"),
        ("scores.parquet.gz", "Parquet is not gzip-compressed whole (it compresses its own pages); name it "),
    ],
)
def test_an_output_named_for_another_format_is_refused(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, problem: str
) -> None:
    # The input's CSV was written under each of these names (gzip-compressed for .parquet.gz).
    assert cli.main(score(source, tmp_path / name)) == 2
    assert f"mlp: score: --output {tmp_path / name}: {problem}" in capsys.readouterr().err


def test_standard_input_or_a_pipe_is_refused_as_train_and_evaluate_refuse_it(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read twice, a pipe's header came as a row ("names the column '1' twice"), and '-' was
    # "no such file or directory" though replay and evaluate read it.
    assert cli.main(score(Path("-"), tmp_path / "scores.csv")) == 2
    assert "standard input is not a regular file; save it to a file and name that" in capsys.readouterr().err
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert cli.main(score(pipe, tmp_path / "scores.csv")) == 2
    assert (
        capsys.readouterr().err
        == f"mlp: score: {pipe}: not a regular file (a pipe?); save it to a file and name that\n"
    )


def test_a_version_of_another_service_is_refused_before_the_registry(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Loaded, it was "UntrustedModelError" and exit 1, as package-sagemaker refuses it.
    argv = [*score(source, tmp_path / "scores.csv"), "--model-uri", "models:/chicagotaxi/1"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith(
        "mlp: models:/chicagotaxi/1 is a version of chicagotaxi, not of bankchurn"
    )


@pytest.mark.usefixtures("toy_command")
def test_scores_to_standard_output_leave_the_report_to_standard_error(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--output -`` wrote a file named "-".
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "stdout").open("w") as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        assert cli.main(["score", "toy", str(source), "--output", "-"]) == 0
    assert not (tmp_path / "-").exists()
    scores = list(csv.DictReader(io.StringIO((tmp_path / "stdout").read_text())))
    assert [row["id"] for row in scores] == ["007", "008"]
    assert all(row["value"] for row in scores)
    assert "toy vtest: scored 2 of 2 rows" in capsys.readouterr().err


def test_a_device_or_a_pipe_is_written_straight_through_and_never_replaced(
    toy_trained: tuple[ModelArtifact, Split], source: Path, tmp_path: Path
) -> None:
    # Written beside it and renamed, a device node (/dev/stdout, as root) became a regular file.
    model = ToyModel(toy_trained[0])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the run's open does not wait
    read, write = os.pipe()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write}")  # as ``ln -s /proc/self/fd/1 mystdout``
    try:
        score_file(TOY, model, source, fifo)
        score_file(TOY, model, source, link)
        os.set_blocking(read, False)
        through_fifo, through_link = written(reader), written(read)
    finally:
        for fd in (reader, read, write):
            os.close(fd)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert link.is_symlink()
    assert through_fifo == through_link
    assert through_fifo.decode().splitlines()[1].startswith("007,3,red,,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "fifo", "stdout"]


def written(fd: int) -> bytes:
    """What is in a pipe now (nothing, rather than a wait, if the run wrote elsewhere)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_a_link_to_a_file_keeps_the_link_and_replaces_the_file(
    toy_trained: tuple[ModelArtifact, Split], source: Path, tmp_path: Path
) -> None:
    (tmp_path / "kept").mkdir()
    target = tmp_path / "kept" / "scores.csv"
    target.write_text("last month's\n")
    link = tmp_path / "scores.csv"
    link.symlink_to(target)
    score_file(TOY, ToyModel(toy_trained[0]), source, link)
    assert link.is_symlink()
    assert target.read_text().startswith("id,x,color,note,value,")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["scores.csv"]


def test_ctrl_c_is_one_line_and_exit_130(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(name: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "get_service", interrupted)
    assert cli.main(score(source, tmp_path / "scores.csv")) == 130
    assert capsys.readouterr().err == "mlp: interrupted\n"


def test_a_worker_leaves_ctrl_c_to_the_command() -> None:
    # Ctrl-C reaches the process group: each worker printed its own KeyboardInterrupt traceback.
    before = signal.getsignal(signal.SIGINT)
    try:
        pool._start_worker(lambda chunk, first_row: None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        pool._job = None


def test_the_scores_and_the_summary_both_on_standard_output_are_refused(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*score(source, "-"), "--summary", "-"]) == 2
    assert "--summary -: the scores are written to standard output; name a file" in capsys.readouterr().err


@pytest.mark.usefixtures("toy_command")
def test_a_reader_gone_first_ends_the_run_as_sigpipe_would_without_a_word(
    source: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--output - | head`` exited 1 with "mlp: score: -: Broken pipe".
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        assert cli.main(["score", "toy", str(source), "--output", "-"]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("toy_command")
def test_parquet_streamed_into_a_file_that_holds_bytes_already_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--output - >> last.parquet`` wrote a file no reader could open.
    source = tmp_path / "customers.parquet"
    pd.read_csv(io.StringIO(ROWS), dtype={"id": str}).to_parquet(source)
    appended = tmp_path / "last.parquet"
    appended.write_bytes(b"PAR1 last month's")
    with appended.open("ab") as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        assert cli.main(["score", "toy", str(source), "--output", "-"]) == 2
    assert "--output -: is a file that holds 17 bytes already (>> or 1<>)" in capsys.readouterr().err
    assert appended.read_bytes() == b"PAR1 last month's"


@pytest.mark.usefixtures("toy_command")
def test_a_file_of_a_header_alone_is_named_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It was named twice: "score: header.csv: header.csv has no rows to score"."""
    source = tmp_path / "header.csv"
    source.write_text("id,x,color,note\n")
    assert cli.main(["score", "toy", str(source), "--output", str(tmp_path / "scores.csv")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"mlp: score: {source} has no rows to score"


@pytest.mark.usefixtures("toy_command")
def test_scores_streamed_into_a_regular_file_have_its_size_and_hash_in_the_summary(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``--output /dev/stdout > scores.csv`` had "output_file": null.
    scores, summary = tmp_path / "scores.csv", tmp_path / "summary.json"
    with scores.open("wb") as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        assert cli.main(["score", "toy", str(source), "--output", "-", "--summary", str(summary)]) == 0
    written = scores.read_bytes()
    assert json.loads(summary.read_text())["output_file"] == {
        "path": "scores.csv",
        "bytes": len(written),
        "sha256": hashlib.sha256(written).hexdigest(),
    }


def test_a_read_only_output_is_refused_before_the_registry(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Replaced without a word (the directory was writable), though README says no permission: 2.
    # Refused as root too, whom no mode stops: the Job that runs it is not root.
    kept = tmp_path / "scores.csv"
    kept.write_text("last month's\n")
    kept.chmod(0o444)
    assert cli.main(score(source, kept)) == 2
    assert capsys.readouterr().err == (
        f"mlp: score: --output {kept}: read-only (mode 0444); make it writable (chmod u+w) to replace it, "
        "or name another output\n"
    )
    assert kept.read_text() == "last month's\n"


def test_another_users_output_in_a_sticky_directory_is_refused(tmp_path: Path) -> None:
    # /tmp: the partial file was written and every row scored, then the rename failed with EPERM.
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / "scores.csv"
    theirs.write_text("theirs\n")
    theirs.chmod(0o666)
    os.chown(theirs, 4242, 4242)
    problem = writable_problem(theirs, euid=5151)
    assert problem is not None
    assert problem.startswith(f"owned by another user (uid 4242) in {sticky}, a sticky directory")
    assert writable_problem(theirs, euid=4242) is None  # its owner may
    assert writable_problem(theirs, euid=0) is None  # root may
    assert writable_problem(sticky / "new.csv", euid=5151) is None
    sticky.chmod(0o777)
    assert writable_problem(theirs, euid=5151) is None  # not sticky: the directory's rights do


@pytest.mark.usefixtures("toy_command")
def test_a_chunk_out_of_memory_is_one_line_naming_its_rows_and_exit_2(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # numpy's MemoryError was a 55-line traceback and exit 1, which the batch-scoring Job retried:
    # the same --chunk-rows runs out of memory the same way.
    import servekit.scoring.run

    answer = servekit.scoring.run.run_model

    def out_of_memory(model: Any, records: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        if len(records) > 1:  # the model's example, answered before the run, is one row
            raise MemoryError("Unable to allocate 68.8 MiB for an array with shape (100000, 90)")
        return answer(model, records, *args, **kwargs)

    monkeypatch.setattr(servekit.scoring.run, "run_model", out_of_memory)
    output = tmp_path / "scores.csv"
    assert cli.main(["score", "toy", str(source), "--output", str(output)]) == 2
    assert capsys.readouterr().err == (
        "mlp: score: toy: out of memory scoring rows 1 to 2 (a chunk of 2 rows); run with a smaller "
        "--chunk-rows (or fewer --workers)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]  # no partial output left
    # Reading or writing, not a chunk's scoring: no rows to name.
    monkeypatch.setattr(servekit.scoring.run, "run_model", answer)

    def no_memory(*args: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(servekit.scoring.run.Progress, "__init__", no_memory)
    assert cli.main(["score", "toy", str(source), "--output", str(output)]) == 2
    assert capsys.readouterr().err == (
        "mlp: score: toy: out of memory; run with a smaller --chunk-rows (or fewer --workers)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


@pytest.mark.usefixtures("toy_command")
def test_a_worker_killed_is_one_line_and_exit_2_not_retried(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A worker the OOM killer ended was a BrokenProcessPool traceback and exit 1 ("worth retrying").
    def killed(*args: Any, **kwargs: Any) -> Any:
        raise pool.WorkerDiedError(4435, -signal.SIGKILL, (20_001, 60_000))

    monkeypatch.setattr("servekit.scoring.score_file", killed)
    assert cli.main(["score", "toy", str(source), "--output", str(tmp_path / "scores.csv")]) == 2
    assert capsys.readouterr().err == (
        "mlp: score: toy: worker process 4435 was killed by SIGKILL while rows 20,001 to 60,000 were "
        "scored; most likely out of memory (the kernel's OOM killer, a container's memory limit): run "
        "with fewer --workers or a smaller --chunk-rows\n"
    )


def test_a_summary_inside_the_input_directory_or_over_an_input_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --summary parts/part-0.csv replaced the part with the run's JSON, exit 0; a new name in the
    # directory was read as a part by the next run. --output is refused there already.
    export = tmp_path / "parts"
    (export / "dt=1").mkdir(parents=True)
    part, nested = export / "part-0.csv", export / "dt=1" / "part-1.csv"
    part.write_text(ROWS)
    nested.write_text(ROWS)
    before = {path: path.read_bytes() for path in (part, nested)}
    output = tmp_path / "scores.csv"
    inside = "inside the input directory, where the next run would read it as a part; write it elsewhere"
    for summary, problem in [
        (part, "a part of the input; name another file"),
        (nested, "a part of the input; name another file"),
        (export / "summary.json", inside),
        (export / "dt=1" / "summary.json", inside),
        (export / "new" / "summary.json", inside),  # not there yet: refused for where it is, not for that
        (export / "_summary.json", inside),  # not read as a part, but still the export's
    ]:
        assert cli.main([*score(export, output), "--summary", str(summary)]) == 2
        assert capsys.readouterr().err == f"mlp: score: --summary {summary}: {problem}\n"
    # A part that is a link to a file elsewhere (a mounted volume's): the file it names is an input.
    elsewhere = tmp_path / "volume" / "part-2.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text(ROWS)
    (export / "part-2.csv").symlink_to(elsewhere)
    assert cli.main([*score(export, output), "--summary", str(elsewhere)]) == 2
    assert (
        capsys.readouterr().err
        == f"mlp: score: --summary {elsewhere}: a part of the input; name another file\n"
    )
    assert {path: path.read_bytes() for path in (part, nested)} == before
    assert elsewhere.read_text() == ROWS
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "parts",
        "parts/dt=1",
        "parts/dt=1/part-1.csv",
        "parts/part-0.csv",
        "parts/part-2.csv",
        "volume",
        "volume/part-2.csv",
    ]


def test_a_summary_that_is_the_input_file_or_the_output_is_refused(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.csv"
    output.write_text("last month's\n")
    beside = tmp_path / "summary.json"
    for summary in (source, output, tmp_path / "." / "scores.csv"):
        assert cli.main([*score(source, output), "--summary", str(summary)]) == 2
        assert capsys.readouterr().err == (
            f"mlp: score: --summary {summary}: the input or the output; name another file\n"
        )
    assert (source.read_text(), output.read_text()) == (ROWS, "last month's\n")
    # Beside the input file is not inside a directory scored: only that file is read.
    assert cli.main([*score(source, output), "--summary", str(beside)]) == 1  # the registry: unreachable
    assert "mlp: score: --summary" not in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "scores.csv"]


@pytest.mark.usefixtures("toy_command")
def test_one_rejected_row_is_said_as_one_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # "1 rows rejected" and "1 rejected rows are within --max-rejected 1 rows".
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "one.csv"
    source.write_text("x,color\n3,red\n4,green\n")
    argv = ["score", "toy", str(source), "--output", "scores.csv"]
    assert cli.main([*argv, "--max-rejected", "1"]) == 0
    said = capsys.readouterr().out
    assert "\n1 row rejected, each with its problem in the error column:\n" in said
    assert said.endswith("\n1 rejected row is within --max-rejected 1 row (1)\n")
    source.write_text("x,color\n4,green\n")
    assert cli.main(argv) == 3
    assert capsys.readouterr().err == (
        "mlp: score: toy: 1 of 1 row rejected, over --max-rejected 0 rows (0); the output is written, with "
        "each row's problem\n"
    )
    source.write_text("x,color\n3,red\n4,green\n5,green\n")
    assert cli.main([*argv, "--max-rejected", "2"]) == 0
    assert capsys.readouterr().out.endswith("\n2 rejected rows are within --max-rejected 2 rows (2)\n")
