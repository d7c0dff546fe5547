"""The tokens of the ORIGINAL text, and how the n-gram occurrences' shares are given to them."""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from nlpinsight.explain.arrays import FloatArray, IntArray
from nlpinsight.model import CASHTAG_PATTERN, URL_PATTERN

#: The words of the ORIGINAL text that receive attributions. Every non-space
#: character belongs to some token (the last alternative takes punctuation
#: runs), so every n-gram occurrence overlaps at least one token. A soft hyphen
#: or a zero-width character inside a word stays in it, as normalisation drops it.
TOKEN_PATTERN = re.compile(
    rf"(?P<url>{URL_PATTERN})"
    rf"|(?P<cashtag>{CASHTAG_PATTERN})"
    r"|[#@]\w+"  # hashtags, mentions
    r"|[$€£]?(?:(?<!\w)[+-])?\d+(?:[.,]\d+)*%?"  # $40, +3.5%, 49,000
    # words, Q4, don't (curly too), Tes<soft hyphen>la
    r"|\w+(?:(?:['\u2019]|[\u00ad\u200b-\u200d\u2060\ufeff]+)\w+)*"
    r"|(?P<punct>[^\w\s]+)"
)


def token_spans(text: str) -> tuple[list[tuple[int, int]], list[bool]]:
    """Token spans of the original text and whether each is punctuation."""
    spans: list[tuple[int, int]] = []
    is_punct: list[bool] = []
    for match in TOKEN_PATTERN.finditer(text):
        spans.append(match.span())
        is_punct.append(match.lastgroup == "punct")
    return spans, is_punct


def spread(
    length: int,
    spans: list[tuple[int, int]],
    starts: IntArray,
    ends: IntArray,
    share: FloatArray,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Give each occurrence's share to the tokens it overlaps, per character overlapped.

    Vectorised: every occurrence spreads ``share / token characters covered``
    uniformly over its span (a difference array + cumsum), and each token sums
    its characters. Returns per-token contribution and whether any occurrence
    touched the token.
    """
    owner = np.full(length, -1, dtype=np.int64)
    for index, (s, e) in enumerate(spans):
        owner[s:e] = index
    inside = owner >= 0
    covered = np.concatenate(([0], np.cumsum(inside)))
    chars = covered[ends] - covered[starts]
    orphans = np.flatnonzero(chars == 0)
    if len(orphans):
        # Only reachable with exotic analyzers: move such an occurrence onto the
        # nearest token so that the sum stays exact.
        if not spans:
            raise ValueError("text has features but no tokens")
        token_starts = np.array([s for s, _ in spans])
        token_ends = np.array([e for _, e in spans])
        for o in orphans:
            gap = np.maximum(token_starts - ends[o], starts[o] - token_ends)
            nearest = int(np.argmin(gap))
            starts[o], ends[o] = token_starts[nearest], token_ends[nearest]
        chars = covered[ends] - covered[starts]
    density = share / chars
    size = length + 1
    per_char = np.cumsum(
        np.bincount(starts, weights=density, minlength=size)
        - np.bincount(ends, weights=density, minlength=size)
    )[:length]
    hits = np.cumsum(np.bincount(starts, minlength=size) - np.bincount(ends, minlength=size))[:length]
    owned = owner[inside]
    contribution = np.bincount(owned, weights=per_char[inside], minlength=len(spans))
    touched = np.bincount(owned, weights=hits[inside], minlength=len(spans)) > 0
    return contribution.astype(np.float64), touched
