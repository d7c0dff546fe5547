"""Benchmark (not a test): fit time, held-out metrics and explanation latency on the real file.

Run: ``.venv/bin/python services/nlpinsight/tests/bench_explain.py``. Timings
live here rather than in unit tests, which must not depend on machine load.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from nlpinsight import data, model
from nlpinsight.explain.cached import explain_text, explainer_for
from nlpinsight.serving import SentimentModel, SentimentRecipe
from servekit.model import ModelArtifact

REAL_CSV = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "nlpinsight" / "sent_train.csv"
)


def main(n_texts: int = 500) -> None:
    frame = data.load_csv(REAL_CSV)
    train, test = train_test_split(frame, test_size=0.2, stratify=frame[data.TARGET], random_state=42)
    started = time.perf_counter()
    pipeline = model.fit(train)
    print(f"fit: {time.perf_counter() - started:.1f} s on {len(train)} rows")
    print("held-out:", {k: round(v, 4) for k, v in model.evaluate(pipeline, test).items()})

    started = time.perf_counter()
    explainer_for(pipeline)
    print(f"explainer build (once per model): {(time.perf_counter() - started) * 1e3:.0f} ms")
    texts = test[data.TEXT].tolist()[:n_texts]
    for text in texts[:100]:  # warm-up
        explain_text(pipeline, text)
    timings = []
    for text in texts:
        begin = time.perf_counter()
        explain_text(pipeline, text)
        timings.append(time.perf_counter() - begin)
    ms = np.array(timings) * 1e3
    print(
        f"explain_text over {len(texts)} real texts: p50 {np.percentile(ms, 50):.3f} ms, "
        f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms"
    )
    # The served model, one record per call as a single /predict request makes it.
    metadata = SentimentRecipe().tune(pipeline, train.drop(columns=[data.TARGET]), train[data.TARGET])
    served = SentimentModel(ModelArtifact("nlpinsight", pipeline, metadata))
    records = [{data.TEXT: text} for text in texts]
    for name, call in (("predict", served.predict), ("explain", served.explain)):
        for record in records[:100]:  # warm-up
            call([record])
        timings = []
        for record in records:
            begin = time.perf_counter()
            call([record])
            timings.append(time.perf_counter() - begin)
        ms = np.array(timings) * 1e3
        print(
            f"SentimentModel.{name} of one record: p50 {np.percentile(ms, 50):.3f} ms, "
            f"p99 {np.percentile(ms, 99):.3f} ms"
        )


if __name__ == "__main__":
    main()
