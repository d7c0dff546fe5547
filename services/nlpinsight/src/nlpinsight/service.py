"""The NLPInsight service as servekit sees it (the ``servekit.services`` entry point)."""

from nlpinsight.schema import FinancialText, SentimentPrediction
from nlpinsight.serving import SentimentModel, SentimentRecipe
from servekit.spec import ServiceSpec

SERVICE = ServiceSpec(
    name="nlpinsight",
    title="NLPInsight",
    description=(
        "Sentiment of a short financial text (bearish, bullish or neutral) with label "
        "probabilities, and exact per-token explanations (`?explain=true`) of the predicted "
        "label's centered logit, log p(label) - mean over the labels of log p."
    ),
    request=FinancialText,
    response=SentimentPrediction,
    model=SentimentModel,
    recipe=SentimentRecipe(),
    local_port=8002,
    # An explained batch of 64 texts takes about 60 ms, four times a tabular model's: 16 of them
    # sharing the CPU would answer after about a second, past most clients' deadline.
    max_concurrent_requests=8,
    # The same 512 explained texts, in batches of any size: two full batches of 256.
    max_concurrent_instances=512,
)
