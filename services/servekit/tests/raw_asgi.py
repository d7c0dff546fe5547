"""A request sent to an app as ASGI messages one at a time: what TestClient cannot send (a body
that stops halfway, a client that leaves mid-upload). Run it on the app's loop (``client.portal``)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message


class RawRequest:
    """One POST whose body the test sends chunk by chunk; ``waiting`` is set while the app waits for more."""

    def __init__(self, path: str, content_length: int) -> None:
        self.path = path
        self.content_length = content_length
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.waiting = asyncio.Event()
        self.sent: list[Message] = []

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"content-length", str(self.content_length).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "extensions": {},
        }

    def body(self, chunk: bytes, *, more: bool) -> None:
        self.messages.put_nowait({"type": "http.request", "body": chunk, "more_body": more})

    def disconnect(self) -> None:
        self.messages.put_nowait({"type": "http.disconnect"})

    async def receive(self) -> Message:
        if self.messages.empty():
            self.waiting.set()
        message = await self.messages.get()
        self.waiting.clear()
        return message

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def start(self, app: ASGIApp) -> asyncio.Task[None]:
        return asyncio.create_task(app(self.scope(), self.receive, self.send))

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {name.decode(): value.decode() for name, value in start["headers"]}

    @property
    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body").decode()
