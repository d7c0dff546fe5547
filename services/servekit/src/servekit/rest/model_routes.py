"""The routes about the service rather than a prediction: probes, the model's metadata and card,
and Prometheus's scrape.

None of them takes an admission place: a replica at its limit still answers its probes (one
refusing its liveness probe would be restarted at the worst moment) and its scrapes.
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from servekit.card import render as render_card
from servekit.inference import model_ref
from servekit.metrics.names import CANARY, STABLE
from servekit.rest import schemas
from servekit.rest.openapi import error_response
from servekit.rest.parts import ServiceParts
from servekit.rest.query import QueryRule
from servekit.rest.responses import json_response
from servekit.routing import Route, no_canary

CARD_VARIANT_QUERY = Query(STABLE, description="The served model's card, or (during a rollout) the canary's")
#: ``/model?variant=canary`` or ``/model/card?varient=canary`` would answer about the stable model
#: without a word: a reviewer during a rollout would read the wrong version's figures. The probes and
#: ``/metrics`` take any query, as load balancers' and scrapers' own parameters may be added to them.
MODEL_RULE = QueryRule((), instead="it describes the served model and its canary, if any, in one answer")
CARD_RULE = QueryRule(("variant",))
NOT_LOADED_RESPONSE = {"model": schemas.ErrorBody, "description": "Model not loaded yet (Retry-After)"}


def add_model_routes(app: FastAPI, parts: ServiceParts) -> None:
    """Add ``/healthz``, ``/readyz`` (GET and HEAD), ``/model``, ``/model/card`` and ``/metrics``."""
    spec, runtime, metrics, live_quality = parts.spec, parts.runtime, parts.metrics, parts.live_quality
    shadow, shadow_quality, canary = parts.shadow, parts.shadow_quality, parts.canary
    capture, admission = parts.capture, parts.admission

    @app.get("/healthz", summary="Liveness: the process is up", response_model=schemas.Health)
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        summary="Readiness: the model is loaded and warmed up",
        response_model=schemas.Readiness,
        responses={503: {"model": schemas.Readiness, "description": "Model not loaded yet"}},
    )
    async def readyz() -> Response:
        if runtime.model is None:
            return json_response(
                {
                    "status": "loading",
                    "model": None,
                    "error": None if runtime.last_error is None else runtime.not_ready_reason,
                },
                status_code=503,
            )
        return json_response({"status": "ready", "model": model_ref(runtime.model), "error": None})

    # HEAD too, for uptime checkers and load balancers that probe without a body.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)

    @app.get(
        "/model",
        summary="Model metadata: version, run, metrics, feature schema",
        response_model=schemas.ModelInfo,
        responses={503: NOT_LOADED_RESPONSE, **MODEL_RULE.refusal()},
    )
    async def model_metadata(request: Request) -> Response:
        MODEL_RULE.check(request)
        return json_response(
            {
                **runtime.require().describe(),
                "load_seconds": runtime.load_seconds,
                "refresh": runtime.refresh_status(),
                "live_evaluation": live_quality.status(),
                "shadow": (
                    {
                        **shadow.status(),
                        "live_comparison": shadow_quality.status() if shadow_quality else None,
                    }
                    if shadow
                    else None
                ),
                "canary": canary.status(runtime.model) if canary else None,
                "capture": capture.status() if capture else None,
                "admission": admission.status(),
            }
        )

    @app.get(
        "/model/card",
        summary="Model card of the served version (Markdown): data, held-out figures per group, explanations",
        # Markdown, but refusals in JSON: each answer's media type is given below (Response has none).
        response_class=Response,
        responses={
            200: {"description": "The card", "content": {"text/markdown": {"schema": {"type": "string"}}}},
            404: error_response(schemas.ErrorBody, "variant=canary where no canary is served"),
            422: error_response(
                schemas.ErrorBody,
                "variant is neither stable nor canary; another parameter, or one given twice",
            ),
            503: error_response(
                schemas.ErrorBody, "The model (or the canary asked for) not loaded yet (Retry-After)"
            ),
        },
    )
    async def model_card(
        request: Request, variant: Literal["stable", "canary"] = CARD_VARIANT_QUERY
    ) -> Response:
        CARD_RULE.check(request)
        model = runtime.require()
        if variant == CANARY:
            if canary is None:
                raise no_canary("query.variant", spec.name)
            model = canary.choose(model, Route(CANARY)).model  # 503 until the canary has loaded
        card = render_card(spec, model.describe())
        return Response(card, media_type="text/markdown; charset=utf-8")

    @app.get("/metrics", summary="Prometheus exposition", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)
