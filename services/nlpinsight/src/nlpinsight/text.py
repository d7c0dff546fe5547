"""What the service takes for a text, one rule for training rows and for requests.

A row the service would refuse to classify is no row to train on either: the loader
(:mod:`nlpinsight.data`) and the request schema (:mod:`nlpinsight.schema`) both ask
:func:`text_problem`, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import unicodedata

#: Longest accepted text, in characters as sent (the real tweets have at most ~300).
MAX_TEXT_CHARS = 5000

#: What a text with nothing visible is told; the loader drops such rows rather than refuse a file.
NOTHING_VISIBLE = (
    "has no visible characters: it is empty or only whitespace, control or format characters "
    "(such as zero-width spaces); send the text to classify"
)

# Default-ignorable code points (Unicode's DerivedCoreProperties) outside the control and format
# categories: fillers and selectors that show nothing, e.g. U+3164 HANGUL FILLER, U+FE0F.
_IGNORABLE = frozenset(
    (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810))
).union(range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))


def is_invisible(char: str) -> bool:
    """Whether ``char`` shows nothing: whitespace, a control or format character (a zero-width
    space, a byte order mark, a soft hyphen) or another default-ignorable one (U+FE0F)."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf") or ord(char) in _IGNORABLE


def has_visible(text: str) -> bool:
    """Whether ``text`` has a character that is not :func:`is_invisible`."""
    return not all(map(is_invisible, text))


def read_length(text: str, limit: int | None = None) -> int:
    """How many characters of ``text`` the model reads: each character in Unicode compatibility
    form (NFKC, :func:`nlpinsight.model.normalize_with_offsets_v2`), which can be much longer than
    the text sent (U+FDFA is 18 characters). Past ``limit`` it stops counting, and returns a
    number over it.

    Counted a character at a time, which composing the whole text can only shorten: normalising
    5,000 U+FDFA whole took 4.8 ms, a request's validation 80 ms for 16 such texts, on the event
    loop; counted, the refusal costs microseconds.
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return len(text)
    count = 0
    for char in text:
        count += _compatible_length(char)
        if limit is not None and count > limit:
            break
    return count


@functools.lru_cache(maxsize=4096)
def _compatible_length(char: str) -> int:
    return len(unicodedata.normalize("NFKC", char))


def text_problem(text: str) -> str | None:
    """Why the service refuses ``text``, or None when it classifies it. The length is counted as
    sent, whitespace included: the model reads (and explains) every character, and a limit on the
    stripped text let a megabyte of spaces around three words through. It holds for the text as
    the model reads it too: 5,000 characters that each expand eighteenfold held a replica's event
    loop for seconds."""
    if not has_visible(text):
        return NOTHING_VISIBLE
    if len(text) > MAX_TEXT_CHARS:
        return f"has {len(text)} characters; send at most {MAX_TEXT_CHARS} characters"
    if read_length(text, MAX_TEXT_CHARS) > MAX_TEXT_CHARS:
        return (
            f"has over {MAX_TEXT_CHARS} characters in Unicode compatibility form (NFKC), which the "
            f"model reads; send at most {MAX_TEXT_CHARS} characters in that form"
        )
    return None
