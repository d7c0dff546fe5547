"""Where a block's known n-grams occur in a normalised text, counted exactly as sklearn counts them.

The ``word`` and ``char_wb`` analyzers (sklearn's ``_word_ngrams`` and
``_char_wb_ngrams``) re-implemented WITH character offsets, so that each
occurrence can be traced back to the characters it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from nlpinsight.explain.vectorizers import Block

#: Distinct words whose char n-grams are kept per vectorizer (a few MB at most).
WORD_CACHE_SIZE = 50_000


@dataclass(slots=True)
class Occurrences:
    """Known-feature occurrences of one block: global column and normalised span."""

    columns: list[int]
    begins: list[int]
    ends: list[int]


def enumerate_ngrams(block: Block, text: str) -> Occurrences:
    """Known n-grams of normalised ``text`` with their spans, as sklearn counts them."""
    if block.analyzer == "char_wb":
        return _char_wb(text, block)
    assert block.token_pattern is not None  # set for every word block
    return _words(text, block)


def _char_wb(text: str, block: Block) -> Occurrences:
    """sklearn ``_char_wb_ngrams`` with offsets.

    Each whitespace-separated word is padded with one space on each side; the
    n-grams slide over the padded word, and a word not longer than n (padded)
    is counted once. The pads sit outside the word, so a span is clipped to it.
    """
    found = Occurrences([], [], [])
    cache = block.word_ngrams
    position = 0
    for word in text.split():
        # str.split and the regex \s the vectorizer also applies agree on what is
        # whitespace, and the gap before `word` is whitespace: find is exact.
        begin = text.find(word, position)
        position = begin + len(word)
        ngrams = cache.get(word)
        if ngrams is None:
            ngrams = _word_char_ngrams(word, block.ngram_range, block.vocabulary)
            if len(cache) >= WORD_CACHE_SIZE:
                cache.clear()
            cache[word] = ngrams
        for column, lo, hi in ngrams:
            found.columns.append(column)
            found.begins.append(begin + lo)
            found.ends.append(begin + hi)
    return found


def _word_char_ngrams(
    word: str, ngram_range: tuple[int, int], vocabulary: dict[str, int]
) -> tuple[tuple[int, int, int], ...]:
    """Known char_wb n-grams of one word: (column, begin, end) relative to the word."""
    out = []
    min_n, max_n = ngram_range
    lookup = vocabulary.get
    padded = f" {word} "
    size = len(padded)
    last = len(word)
    for n in range(min_n, max_n + 1):
        for offset in range(max(1, size - n + 1)):
            column = lookup(padded[offset : offset + n])
            if column is not None:
                lo = min(max(offset - 1, 0), last - 1)
                hi = max(min(offset + n - 1, last), lo + 1)
                out.append((column, lo, hi))
        if size <= n:  # sklearn: "count a short word (w_len < n) only once"
            break
    return tuple(out)


def _words(text: str, block: Block) -> Occurrences:
    """sklearn ``token_pattern.findall`` + stop words + ``_word_ngrams``, with offsets."""
    pattern = block.token_pattern
    assert pattern is not None
    group = 1 if pattern.groups == 1 else 0  # findall returns group 1 if there is one
    words: list[str] = []
    begins: list[int] = []
    ends: list[int] = []
    for match in pattern.finditer(text):
        word = match.group(group) or ""
        if block.stop_words is not None and word in block.stop_words:
            continue
        begin, end = match.span(group) if match.start(group) >= 0 else match.span()
        words.append(word)
        begins.append(begin)
        ends.append(end)
    found = Occurrences([], [], [])
    lookup = block.vocabulary.get
    min_n, max_n = block.ngram_range
    for n in range(min_n, min(max_n, len(words)) + 1):
        for i in range(len(words) - n + 1):
            column = lookup(words[i] if n == 1 else " ".join(words[i : i + n]))
            if column is not None:
                found.columns.append(column)
                found.begins.append(begins[i])
                found.ends.append(ends[i + n - 1])
    return found
