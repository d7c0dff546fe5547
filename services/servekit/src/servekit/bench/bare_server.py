"""The reference the HTTP figures are measured against in the same run: a bare uvicorn app.

One worker on 127.0.0.1, the same event loop (uvloop) and HTTP parser (httptools) as ``mlp
serve``, no access log; every request, whatever its path or body, is read whole and answered 200
with a fixed small JSON: no routing, no validation, no model, no middleware. What the host and
the load generator cost per request, then; a service's figure divided by it is what the service
adds, more or less independent of how fast or how loaded the machine was.

``python -m servekit.bench.bare_server --port PORT`` serves it in the foreground.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from servekit.cli.common import documented_parser
from servekit.local import Server, free_port, start

ANSWER = b'{"prediction":0.5}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]

Message = MutableMapping[str, Any]


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Reads the request's body whole, answers ``ANSWER``."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def command(port: int) -> list[str]:
    return [sys.executable, "-m", "servekit.bench.bare_server", "--port", str(port)]


def start_bare(log_dir: Path) -> Server:
    """The bare app on a free port of 127.0.0.1, answering; stop it with ``.stop()``."""
    port = free_port()
    server = start("bare-uvicorn", command(port), port, log_dir)
    try:
        server.wait_for("/", seconds=60)
    except BaseException:
        server.stop()
        raise
    return server


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    p = documented_parser("python -m servekit.bench.bare_server", __doc__)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
