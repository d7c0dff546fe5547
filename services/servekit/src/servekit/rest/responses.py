"""JSON responses, encoded by the one encoder every transport uses."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from servekit.inference import encode_json


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(encode_json(content), status_code=status_code, media_type="application/json")
