"""A headless Chromium driven over the DevTools protocol, for the pages a person opens.

Only what the documentation test needs: open a page, wait for something on it, run a script in
it, and keep every request the page made and everything it reported (console errors, policy
violations, uncaught exceptions). No host but 127.0.0.1 resolves, so a page that reached for the
internet shows it in ``requests`` (and fails), as it would on a machine without access.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from servekit import http_client

#: ``make browser`` installs it; ``CHROMIUM`` names another build.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The browser's path: ``$CHROMIUM``, else the first of ``BROWSERS`` on PATH."""
    named = os.environ.get("CHROMIUM")
    found = named or next((path for b in BROWSERS if (path := shutil.which(b))), None)
    if not found:
        pytest.fail("no Chromium on PATH and CHROMIUM is not set: run `make browser` (make test runs it)")
    return found


@dataclass
class Page:
    """One tab, and what it has done since it was opened."""

    socket: ClientConnection
    requests: list[str] = field(default_factory=list)
    #: Console errors, policy violations and uncaught exceptions, as the browser worded them.
    problems: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A protocol command's result; the events that come before it are recorded."""
        sent = next(self._ids)
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.problems.append(f"{params['entry']['source']}: {params['entry']['text']}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            described = details.get("exception", {}).get("description", details["text"])
            self.problems.append(f"exception: {described}")
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            logged = (str(a.get("value", a.get("description"))) for a in params["args"])
            self.problems.append("console: " + " ".join(logged))

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The expression's value in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 20.0) -> Any:
        """The expression's value once it is truthy; a failure naming it after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        pytest.fail(f"not true after {seconds:.0f} s in the browser: {expression}; problems: {self.problems}")


@contextmanager
def browser(profile: Path) -> Iterator[Page]:
    """A headless Chromium with one blank tab, stopped on exit."""
    # --no-sandbox: the tests run as root on CI machines, where Chromium's sandbox refuses to
    # start; the browser only opens pages of the service under test.
    process = subprocess.Popen(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit status {process.poll()})")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = http_client.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        tab = next(t for t in targets if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None) as socket:
            page = Page(socket)
            for domain in ("Page", "Network", "Log", "Runtime"):
                page.send(f"{domain}.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
