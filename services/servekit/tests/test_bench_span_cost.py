from __future__ import annotations

from servekit.bench import span_cost


def test_the_request_path_is_timed_without_spans_with_a_sampled_span_and_with_an_unsampled_one() -> None:
    measured = span_cost.request_path(0.2, rounds=2)
    assert set(measured) == {"no spans", "a sampled span (+3 phases)", "a span not sampled"}
    assert all(latency.n > 10 for latency in measured.values())
    # What the figures are for: the SDK's work is there to see against the bare middleware.
    assert measured["a sampled span (+3 phases)"].p50_ms > measured["no spans"].p50_ms


def test_the_exporters_cpu_is_counted_per_sampled_request() -> None:
    assert span_cost.export_cpu(requests=200) > 0
