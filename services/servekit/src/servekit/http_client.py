"""The HTTP requests a process of ours sends (to a server it waits for, a Prometheus it queries,
a service it drives), with one TLS context per process.

httpx builds a new ``ssl.SSLContext`` for every client, loading the whole CA bundle each time
(28 ms of CPU here), and ``httpx.get`` is a client per call, even for an ``http://`` URL that never
uses TLS. ``Server.wait_for`` polling every 0.2 s spent 14 % of a core on it; py-spy found the
test suite's workers in it for 231 of their 1,070 sampled seconds, and passing one context took
the suite from 1,428 to 1,324 CPU-seconds (2026-12-06). These are httpx's own functions with the
process's context passed as ``verify`` (a caller's own ``verify`` wins); each call still opens its
own connection, as ``httpx.get`` does.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default context (certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once.

    An ``SSLContext`` is meant to be shared by every connection and thread of a process."""
    return httpx.create_ssl_context()


def request(method: str, url: str, **options: Any) -> httpx.Response:
    """``httpx.request`` with the process's TLS context."""
    return httpx.request(method, url, **verified(options))


def get(url: str, **options: Any) -> httpx.Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    return request("POST", url, **options)


def client(**options: Any) -> httpx.Client:
    """``httpx.Client`` with the process's TLS context: for many requests over kept-alive connections."""
    return httpx.Client(**verified(options))


def verified(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the process's context as ``verify``, unless they name their own."""
    # Not setdefault: it would build the process's context even for a caller's own.
    return options if "verify" in options else {**options, "verify": tls_context()}
