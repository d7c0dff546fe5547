from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nlpinsight import data


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8", newline="")
    return path


@pytest.mark.realdata
def test_real_file_loads_every_row_with_the_real_class_shares(real_csv: Path) -> None:
    frame = data.load_csv(real_csv)
    # The real file has no blank texts, so nothing is dropped.
    assert len(frame) == 9543
    assert list(frame.columns) == [data.TEXT, data.TARGET]
    assert frame[data.TARGET].dtype == np.int64
    assert all(isinstance(t, str) for t in frame[data.TEXT])
    shares = frame[data.TARGET].value_counts(normalize=True).sort_index()
    assert shares.to_numpy() == pytest.approx([0.1511, 0.2015, 0.6474], abs=0.0005)
    # CRLF line ends are gone; quoted newlines inside a tweet are kept.
    assert not frame[data.TEXT].str.contains("\r").any()
    assert frame[data.TEXT].str.contains("\n").sum() > 100


def test_a_good_file_round_trips_with_crlf_and_quoted_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'text,label\r\n$TSLA beats https://t.co/x,1\r\n"two\r\nlines, quoted",2\r\nNA,0\r\n',
    )
    frame = data.load_csv(path)
    assert frame[data.TEXT].tolist() == ["$TSLA beats https://t.co/x", "two\r\nlines, quoted", "NA"]
    assert frame[data.TARGET].tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    ("body", "column", "words"),
    [
        ("label\n1\n", "text", "missing column"),
        ("text\nhello\n", "label", "missing column"),
        ("tweet,sentiment\nhello,1\n", "text, label", "missing column"),
        ("text,label\nfine,1\nbad,bullish\n", "label", "whole numbers"),
        ("text,label\nfine,1\nbad,1.5\n", "label", "whole numbers"),
        ("text,label\nfine,1\nbad,\n", "label", "whole numbers"),
        ("text,label\nfine,1\nbad,3\n", "label", "outside"),
        ("text,label\nfine,1\nbad,-1\n", "label", "outside"),
        ("text,label\n  ,1\n\t,2\n", "text", "no rows"),
    ],
)
def test_bad_files_name_the_column(tmp_path: Path, body: str, column: str, words: str) -> None:
    with pytest.raises(data.DatasetError, match=column) as error:
        data.load_csv(write(tmp_path, body))
    assert words in str(error.value)


def test_bad_label_message_points_at_the_line(tmp_path: Path) -> None:
    """It named pandas' 0-based index (``row(s) [2]``), where ``mlp score`` and ``mlp evaluate``
    name the file's line."""
    with pytest.raises(data.DatasetError) as error:
        data.load_csv(write(tmp_path, "text,label\na,0\nb,1\nc,x\n"))
    assert str(error.value) == (
        "column 'label': must hold whole numbers, not a missing or non-integer value; line(s) 4, e.g. 'x'"
    )


def test_bad_labels_are_named_by_the_lines_their_rows_start_on(tmp_path: Path) -> None:
    """A quoted tweet may span lines, and a blank line is skipped: row i is then not line i + 2."""
    rows = "".join(f"fine {i},1\n" for i in range(4))
    body = f'text,label\r\n"two\r\nlines",0\r\n\r\nbad,7\r\n{rows}"three\nlines\nhere",9\n{rows}'
    body += "".join(f"worse {i},-{i + 1}\n" for i in range(5))
    with pytest.raises(data.DatasetError) as error:
        data.load_csv(write(tmp_path, body))
    assert str(error.value) == (
        "column 'label': value(s) outside 0..2 (bearish, bullish, neutral); "
        "line(s) 5, 10, 17, 18, 19 and 2 more, e.g. '7'"
    )
    # A frame not read from a file: row i as line i + 2.
    with pytest.raises(data.DatasetError, match=r"line\(s\) 3, e\.g\. 3$"):
        data.validate_frame(pd.DataFrame({"text": ["a", "b"], "label": [1, 3]}))


def test_blank_and_invisible_texts_are_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, 'text,label\nup,1\n,2\n"   ",0\n\u200b\ufeff,1\ndown,0\n')
    with caplog.at_level(logging.WARNING, logger="nlpinsight.data"):
        frame = data.load_csv(path)
    assert frame[data.TEXT].tolist() == ["up", "down"]
    assert frame[data.TARGET].tolist() == [1, 0]
    assert "dropped 3 row(s)" in caplog.text


def test_a_quote_left_open_fails_the_file_instead_of_swallowing_the_rows_after_it(tmp_path: Path) -> None:
    # The quote opened on row 1 closes only at `"big"`: pandas reads the 400 rows between as one
    # text of row 1, and the file parses as 3 rows. Training on them would lose the 400 silently.
    rows = "".join(f"stock {i} moves up,1\n" for i in range(400))
    path = write(tmp_path, f'text,label\nup,1\n"oops $TSLA,0\n{rows}down "big",0\nlast,1\n')
    with pytest.raises(data.DatasetError) as error:
        data.load_csv(path)
    message = str(error.value)
    assert "'text' has texts over 5000 characters" in message
    assert "at line(s) 3, e.g. " in message
    assert "a quote left open" in message


def test_validate_frame_accepts_numbers_and_rejects_nan_labels() -> None:
    good = data.validate_frame(pd.DataFrame({"text": ["a", None], "label": [1.0, 2.0], "x": [0, 0]}))
    assert list(good.columns) == [data.TEXT, data.TARGET]
    assert good[data.TARGET].tolist() == [1]
    with pytest.raises(data.DatasetError, match="label"):
        data.validate_frame(pd.DataFrame({"text": ["a"], "label": [np.nan]}))


def test_generator_is_deterministic() -> None:
    frame = data.generate(500, seed=3)
    assert frame.equals(data.generate(500, seed=3))
    assert not frame.equals(data.generate(500, seed=4))


def test_generator_matches_the_real_schema_and_class_shares() -> None:
    frame = data.generate(6000, seed=0)
    assert len(frame) == 6000
    assert list(frame.columns) == [data.TEXT, data.TARGET]
    assert frame[data.TARGET].dtype == np.int64
    # The same checks as the real file; a validated frame validates to itself.
    assert data.validate_frame(frame).equals(frame)
    shares = frame[data.TARGET].value_counts(normalize=True).sort_index().to_numpy()
    assert shares == pytest.approx([0.15, 0.20, 0.65], abs=0.03)


def test_generator_has_tweet_features_and_noise() -> None:
    frame = data.generate(3000, seed=1)
    text = frame[data.TEXT]
    assert text.str.contains(r"\$[A-Z]{1,5}\b").mean() > 0.3
    assert text.str.contains("https://t.co/").mean() > 0.1
    assert text.str.contains(r"\d+\.\d%").mean() > 0.05
    # Bullish vocabulary is mostly, but not only, labelled bullish: noise exists.
    beats = frame[text.str.contains("beats estimates") & ~text.str.contains(" but ")]
    share_bullish = (beats[data.TARGET] == data.LABELS.index("bullish")).mean()
    assert 0.85 < share_bullish < 1.0
    assert text.str.contains(" but ").mean() > 0.02
