"""A pipeline explained in one call, through the explainer cached for it.

The cache holds one :class:`LinearTextExplainer` per pipeline object, rebuilt
when that pipeline has been refitted since.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from nlpinsight.explain.explainer import LinearTextExplainer
from nlpinsight.explain.ngrams import enumerate_ngrams
from nlpinsight.explain.results import TextExplanation

_CACHE: weakref.WeakKeyDictionary[Any, LinearTextExplainer] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def explainer_for(pipeline: Any) -> LinearTextExplainer:
    """The cached explainer of ``pipeline``, rebuilt if the pipeline was refitted.

    Building copies the centered coefficients and the vocabularies (tens of ms);
    the cache makes :func:`explain_text` cheap in a loop. Weak keys: the cache
    never keeps a discarded model alive.
    """
    with _CACHE_LOCK:
        cached = _CACHE.get(pipeline)
    if cached is not None and cached.is_for(pipeline):
        return cached
    built = LinearTextExplainer(pipeline)
    with _CACHE_LOCK:
        _CACHE[pipeline] = built
    return built


def explain_text(pipeline: Any, text: str, class_index: int | None = None) -> TextExplanation:
    """Exact token attributions of the centered logit of ``class_index`` (default: predicted)."""
    return explainer_for(pipeline).explain(text, class_index)


def explain_batch(
    pipeline: Any, texts: Iterable[str], class_index: int | None = None
) -> list[TextExplanation]:
    """:func:`explain_text` for many texts (one explainer lookup)."""
    return explainer_for(pipeline).explain_batch(texts, class_index)


def enumerate_features(pipeline: Any, text: str) -> dict[int, int]:
    """Global feature column -> occurrence count, as the explainer sees ``text``.

    Exists so that tests can prove it equals the vectorizers' nonzero features.
    """
    explainer = explainer_for(pipeline)
    normalized = explainer.normalizer.text(text)
    counts: dict[int, int] = {}
    for block in explainer._blocks:
        for column in enumerate_ngrams(block, normalized).columns:
            counts[column] = counts.get(column, 0) + 1
    return counts
