"""The caller's trace, from whichever tracing header names it; a header that does not parse is ignored."""

from __future__ import annotations

import pytest

from servekit.tracing import MAX_HEADER_LENGTH, TraceContext, from_headers

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"},
            TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=True),
            id="traceparent-sampled",
        ),
        pytest.param(
            {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-02"},
            TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=False),
            id="traceparent-flags-without-the-sampled-bit",
        ),
        pytest.param(
            # A future version may append fields; this one does not, so it is read as version 00.
            {"traceparent": f"01-{W3C_TRACE}-00f067aa0ba902b7-01"},
            TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=True),
            id="traceparent-version-01",
        ),
        pytest.param(
            # Google writes the span id in decimal; logs and Cloud Trace show it in hex.
            {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/2222222222222222222;o=1"},
            TraceContext("105445aa7843bc8bf206b12000100000", "1ed6eb565788e38e", sampled=True),
            id="cloud-trace-full",
        ),
        pytest.param(
            {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1;o=0"},
            TraceContext("105445aa7843bc8bf206b12000100000", "0000000000000001", sampled=False),
            id="cloud-trace-not-sampled",
        ),
        pytest.param(
            {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000"},
            TraceContext("105445aa7843bc8bf206b12000100000"),
            id="cloud-trace-id-only",
        ),
        pytest.param(
            {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/18446744073709551616;o=1"},
            TraceContext("105445aa7843bc8bf206b12000100000", "", sampled=True),
            id="cloud-trace-span-beyond-64-bits-dropped",
        ),
        pytest.param(
            {"x-amzn-trace-id": f"Root={XRAY_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"},
            TraceContext(XRAY_ROOT, "53995c3f42cd8ad8", sampled=True),
            id="xray-full",
        ),
        pytest.param(
            {"x-amzn-trace-id": f"Self=1-67891234-12456789abcdef012345678a;Root={XRAY_ROOT};Sampled=?"},
            TraceContext(XRAY_ROOT),
            id="xray-alb-with-self-and-undecided-sampling",
        ),
        pytest.param(
            {"x-amzn-trace-id": f"Root={XRAY_ROOT};Parent=not-hex;Sampled=0"},
            TraceContext(XRAY_ROOT, "", sampled=False),
            id="xray-bad-parent-dropped",
        ),
        pytest.param(
            {
                "x-amzn-trace-id": f"Root={XRAY_ROOT}",
                "x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1",
                "traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01",
            },
            TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=True),
            id="w3c-wins",
        ),
        pytest.param(
            {"traceparent": "garbage", "x-amzn-trace-id": f"Root={XRAY_ROOT}"},
            TraceContext(XRAY_ROOT),
            id="a-bad-header-gives-way-to-the-next",
        ),
    ],
)
def test_the_trace_is_read_from_its_header(headers: dict[str, str], expected: TraceContext) -> None:
    assert from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}, id="traceparent-zero-trace"),
        pytest.param({"traceparent": f"00-{W3C_TRACE}-{'0' * 16}-01"}, id="traceparent-zero-span"),
        pytest.param({"traceparent": f"ff-{W3C_TRACE}-00f067aa0ba902b7-01"}, id="traceparent-version-ff"),
        pytest.param(
            {"traceparent": f"00-{W3C_TRACE.upper()}-00f067aa0ba902b7-01"}, id="traceparent-upper-case"
        ),
        pytest.param({"x-cloud-trace-context": "not-a-trace"}, id="cloud-trace-garbage"),
        pytest.param({"x-cloud-trace-context": f"{'0' * 32}/1;o=1"}, id="cloud-trace-zero-trace"),
        pytest.param({"x-amzn-trace-id": "Sampled=1"}, id="xray-without-root"),
        pytest.param({"x-amzn-trace-id": "Root=1-5759e988-bd86"}, id="xray-short-root"),
        pytest.param(
            {"x-amzn-trace-id": f"Root={XRAY_ROOT};" + "x" * MAX_HEADER_LENGTH},
            id="xray-over-the-length-limit",
        ),
    ],
)
def test_no_trace_without_a_header_that_parses(headers: dict[str, str]) -> None:
    assert from_headers(headers) is None
