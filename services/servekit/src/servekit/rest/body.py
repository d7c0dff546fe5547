"""Reading a request body within a size limit (413 beyond it, never an unbounded read)."""

from __future__ import annotations

from starlette.requests import Request

from servekit.errors import FieldProblem, ServekitError


def too_large(limit: int) -> ServekitError:
    return ServekitError(
        413,
        "payload_too_large",
        f"request body exceeds {limit} bytes",
        (FieldProblem("body", f"larger than the limit of {limit} bytes"),),
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
