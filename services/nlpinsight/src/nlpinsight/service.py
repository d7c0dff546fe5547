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
    intended_use=(
        "Labels the sentiment of short English texts about markets (tweets, headlines) as "
        "bearish, bullish or neutral, to sort and count a flow of them on a research dashboard, "
        "with the words that moved each label."
    ),
    not_for=(
        "trading on its own: a label is the tone of a text, not a forecast of prices",
        "long documents or other languages: `known_word_share` falls where the text is unlike its tweets",
        "judging a person's or a company's conduct from what was written about them",
    ),
    # An explained batch of 64 texts takes about 60 ms, four times a tabular model's: 16 of them
    # sharing the CPU would answer after about a second, past most clients' deadline.
    max_concurrent_requests=8,
    # The same 512 explained texts, in batches of any size: two full batches of 256.
    max_concurrent_instances=512,
)
