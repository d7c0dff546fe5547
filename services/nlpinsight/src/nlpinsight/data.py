"""Financial-tweet sentiment data: loader of the real file and a synthetic generator.

Both produce the same validated frame: ``text`` (str) and ``label`` (int code
into :data:`LABELS`). The generator exists so that tests and demos run without
the real file, through exactly the checks the real file goes through.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import numpy.typing as npt
import pandas as pd

from nlpinsight.text import MAX_TEXT_CHARS, has_visible, read_length
from servekit.datasets import DatasetError, bad_lines, missing_columns, read_csv, refuse_lines

logger = logging.getLogger(__name__)

#: Class names; the position is the label code used in the real file.
LABELS: tuple[str, ...] = ("bearish", "bullish", "neutral")
TEXT = "text"
TARGET = "label"


def load_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a file with the real ``sent_train.csv`` schema.

    Every cell is read as a string with pandas' NA parsing switched off: a tweet
    that reads ``"NA"`` or ``"null"`` is text, not a missing value. Blank texts
    are dropped with a logged count (see :func:`validate_frame`); everything else
    that does not fit raises :class:`DatasetError`.
    """
    raw = read_csv(path, dtype=str, keep_default_na=False)
    return validate_frame(raw, path)


def validate_frame(raw: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return ``text`` + ``label`` with checked types; other columns are dropped.

    - a missing ``text`` or ``label`` column raises :class:`DatasetError`;
    - a ``label`` that is missing, not a whole number, or outside the codes of
      :data:`LABELS` raises (a wrong label silently trains a wrong model);
    - a ``text`` the service would refuse (:mod:`nlpinsight.text`) is no row to
      train on. One with nothing visible (missing, blank, or only zero-width or
      control characters) is DROPPED and the count logged at WARNING: it carries
      no signal, and one stray empty line should not block a whole training run.
      One over the length limit raises: in a file of tweets it is most often a
      quote left open, which swallowed the rows after it into one cell.
    A frame left without rows raises.

    An error names the first lines of the rows it refuses: those of the CSV file at ``path``
    that ``raw`` was read from (a quoted tweet may span lines), or without, row ``i`` as line
    ``i + 2``.
    """
    missing = [c for c in (TEXT, TARGET) if c not in raw.columns]
    if missing:
        raise DatasetError(missing_columns(missing, raw.columns))
    labels = _validate_labels(raw[TARGET], path)
    texts = raw[TEXT]
    present = texts.notna()
    texts = texts.where(present, "").astype(str)
    keep = present & texts.map(has_visible).astype(bool)
    dropped = int((~keep).sum())
    if dropped:
        logger.warning("dropped %d row(s) with an empty, missing or invisible %r", dropped, TEXT)
    # As the service counts a request's text (nlpinsight.text.text_problem): as the model reads it.
    lengths = texts.map(read_length)
    too_long = keep & (lengths > MAX_TEXT_CHARS)
    if too_long.any():
        raise DatasetError(
            f"column {TEXT!r} has texts over {MAX_TEXT_CHARS} characters, the most the service "
            f"classifies, at {bad_lines(too_long, path)}, e.g. {int(lengths[too_long].iloc[0])} characters "
            "(in Unicode compatibility form, NFKC, as the model reads them); "
            "a quote left open in the file reads the rows after it as one text"
        )
    frame = pd.DataFrame({TEXT: texts[keep].to_numpy(dtype=object), TARGET: labels[keep.to_numpy()]})
    frame[TEXT] = frame[TEXT].astype(str)
    if frame.empty:
        raise DatasetError(f"no rows with a non-empty {TEXT!r} left")
    return frame


def _validate_labels(column: pd.Series, path: str | os.PathLike[str] | None) -> npt.NDArray[np.int64]:
    """Label codes as int64, or a :class:`DatasetError` naming the column and bad lines."""
    # Strings (from the CSV) and numbers (from a frame) both go through to_numeric;
    # "1" and 1.0 are accepted, "1.5", "bullish" and blanks are not.
    as_text = column.astype(object).where(column.notna(), None)
    stripped = as_text.map(lambda v: v.strip() if isinstance(v, str) else v)
    numbers = pd.to_numeric(stripped.replace("", None), errors="coerce")
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad_type = ~np.isfinite(values) | (values != np.round(values))
    problem = "must hold whole numbers, not a missing or non-integer value"
    refuse_lines(TARGET, column, bad_type, problem, path)
    codes = values.astype(np.int64)
    outside = (codes < 0) | (codes >= len(LABELS))
    problem = f"value(s) outside 0..{len(LABELS) - 1} ({', '.join(LABELS)})"
    refuse_lines(TARGET, column, outside, problem, path)
    return codes


# ----------------------------------------------------------------- synthetic data

#: Class shares of the real file (bearish, bullish, neutral).
SHARES = (0.15, 0.20, 0.65)

_COMPANIES = (
    ("Apple", "AAPL"),
    ("Tesla", "TSLA"),
    ("Microsoft", "MSFT"),
    ("Amazon", "AMZN"),
    ("Netflix", "NFLX"),
    ("Nvidia", "NVDA"),
    ("Boeing", "BA"),
    ("Carnival", "CCL"),
    ("Ford", "F"),
    ("Pfizer", "PFE"),
    ("Intel", "INTC"),
    ("Walmart", "WMT"),
    ("Exxon Mobil", "XOM"),
    ("JPMorgan", "JPM"),
    ("Beyond Meat", "BYND"),
    ("Peloton", "PTON"),
    ("Alibaba", "BABA"),
    ("Starbucks", "SBUX"),
    ("Salesforce", "CRM"),
    ("AT&T", "T"),
)
_BROKERS = (
    "Goldman Sachs",
    "Morgan Stanley",
    "Credit Suisse",
    "Piper Sandler",
    "Wells Fargo",
    "Jefferies",
    "UBS",
    "Barclays",
)
_BULLISH = (
    "beats estimates",
    "surges {pct} after earnings",
    "jumps {pct} in premarket",
    "soars to a record high",
    "upgraded to Buy at {broker}",
    "raises guidance for the full year",
    "raises price target to ${price} at {broker}",
    "rallies on strong demand",
    "boosts dividend by {pct}",
    "tops revenue expectations",
    "shares climb {pct} on upbeat outlook",
    "gets an upgrade to Outperform",
)
_BEARISH = (
    "misses estimates",
    "plunges {pct} after earnings",
    "tumbles {pct} in premarket",
    "sinks to a 52-week low",
    "downgraded to Sell at {broker}",
    "cuts guidance for the full year",
    "cuts price target to ${price} at {broker}",
    "slides on weak demand",
    "slashes dividend by {pct}",
    "warns of lower revenue",
    "shares fall {pct} on gloomy outlook",
    "faces a probe over accounting",
)
_NEUTRAL = (
    "announces quarterly dividend of ${small}",
    "schedules Q{quarter} earnings call",
    "reports Q{quarter} results",
    "to present at the {broker} technology conference",
    "names a new chief financial officer",
    "files its annual report",
    "completes the acquisition of a software unit",
    "to hold annual shareholder meeting on May {day}",
    "price target maintained at {broker}",
    "launches a new product line",
    "CEO to speak at investor day",
    "reports trading volume of {volume} shares",
)
_PREFIXES = ("{cashtag} - {company}", "{company}", "{cashtag}: {company}", "{company} ({ticker})")
_SUFFIXES = ("", "", " {url}", " {url}", " #stocks", " - Reuters", "!", " {cashtag2}")
#: Share of rows whose text mixes a bullish and a bearish phrase (labelled neutral),
#: and share of rows given a random label: the noise that keeps the task non-trivial.
AMBIGUOUS_SHARE = 0.06
MISLABELLED_SHARE = 0.04


def generate(n_rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Deterministic synthetic headlines with the real schema and class shares.

    Each row is a template ``<prefix> <phrase><suffix>`` whose phrase comes from
    the vocabulary of its class, filled with company names, cashtags, brokers,
    percentages, prices and some URLs. A few rows are ambiguous (a bullish and a
    bearish phrase, labelled neutral) or mislabelled, so it is learnable but a
    model cannot reach 100 %. The same ``seed`` gives an identical frame.
    """
    if n_rows < 1:
        raise ValueError("n_rows must be positive")
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(LABELS), size=n_rows, p=SHARES)
    phrases = (_BEARISH, _BULLISH, _NEUTRAL)
    texts: list[str] = []
    ambiguous = rng.random(n_rows) < AMBIGUOUS_SHARE
    for label, mixed in zip(labels, ambiguous, strict=True):
        if mixed:
            pair = [str(rng.choice(_BULLISH)), str(rng.choice(_BEARISH))]
            phrase = " but ".join(pair if rng.random() < 0.5 else pair[::-1])
        else:
            phrase = str(rng.choice(phrases[label]))
        template = f"{rng.choice(_PREFIXES)} {phrase}{rng.choice(_SUFFIXES)}"
        texts.append(_fill(template, rng))
    labels = np.where(ambiguous, LABELS.index("neutral"), labels)
    flip = rng.random(n_rows) < MISLABELLED_SHARE
    labels = np.where(flip, rng.integers(0, len(LABELS), size=n_rows), labels)
    return validate_frame(pd.DataFrame({TEXT: texts, TARGET: labels.astype(np.int64)}))


def _fill(template: str, rng: np.random.Generator) -> str:
    """Fill the placeholders of one template with random but plausible values."""
    company, ticker = _COMPANIES[rng.integers(len(_COMPANIES))]
    other = _COMPANIES[rng.integers(len(_COMPANIES))][1]
    slug = "".join(rng.choice(list("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), 10))
    return template.format(
        company=company,
        ticker=ticker,
        cashtag=f"${ticker}",
        cashtag2=f"${other}",
        broker=rng.choice(_BROKERS),
        pct=f"{rng.uniform(0.5, 25):.1f}%",
        price=int(rng.integers(5, 900)),
        small=f"{rng.uniform(0.05, 2.5):.2f}",
        quarter=int(rng.integers(1, 5)),
        day=int(rng.integers(1, 29)),
        volume=f"{int(rng.integers(1, 90))},{int(rng.integers(0, 1000)):03d},000",
        url=f"https://t.co/{slug}",
    )
