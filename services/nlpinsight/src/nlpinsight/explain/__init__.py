"""Exact, fast token attributions for the linear text pipeline of :mod:`nlpinsight.model`.

What is explained: the chosen class's CENTERED logit ``z_k - mean_j z_j`` with
``z = W @ x + b`` (the log-odds of class k against the geometric mean of all
classes). It is linear in the TF-IDF vector ``x``, so it splits exactly:

    output = (b_k - mean b) + sum_j (W_kj - mean_i W_ij) * x_j

Feature j's term is shared equally among the occurrences of its n-gram in the
text, and each occurrence's share goes to the original tokens its characters
cover, in proportion to the characters covered. Nothing is sampled or
approximated, so ``base_value + sum(contributions) == output_value`` up to
floating-point rounding (no SHAP KernelExplainer, no background data).

To know where each n-gram occurs, the vectorizers' analyzers are re-implemented
WITH character offsets (``word`` and ``char_wb`` analyzers, exactly as sklearn's
``_word_ngrams`` / ``_char_wb_ngrams`` enumerate them), on the normalised text
whose offsets map back into the original (the ``with_offsets`` of the normalisation the
vectorizers hold, :class:`~nlpinsight.model.Normalizer`, so offsets follow the model's own).
``x`` is recomputed from those counts the way ``TfidfTransformer`` does it, which
avoids sklearn's per-call validation overhead (~1 ms) and keeps one text well
under 2 ms. Tests prove the enumeration equals the vectorizer's nonzero features.

The package holds no code; import from the module where a name lives, each
importing only those listed before it:

- :mod:`~nlpinsight.explain.arrays`: the array types the modules share;
- :mod:`~nlpinsight.explain.results`: ``TextExplanation``, ``TokenContribution``,
  ``UnsupportedPipelineError``;
- :mod:`~nlpinsight.explain.vectorizers`: the pipeline's vectorizers, checked and
  read into blocks;
- :mod:`~nlpinsight.explain.ngrams`: the n-gram occurrences of a text, with offsets;
- :mod:`~nlpinsight.explain.tfidf`: their TF-IDF values;
- :mod:`~nlpinsight.explain.tokens`: the original text's tokens, and spreading
  shares over them;
- :mod:`~nlpinsight.explain.explainer`: ``LinearTextExplainer``;
- :mod:`~nlpinsight.explain.cached`: ``explainer_for``, ``explain_text``,
  ``explain_batch``, ``enumerate_features``.
"""
