"""Production's figures from Prometheus: the PromQL built from the metric names, and the arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from servekit.bench import observed
from servekit.local import free_port
from servekit.metrics import MetricNames

N = MetricNames("bankchurn")


@pytest.mark.parametrize(
    ("window", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), ("2w", 1209600)]
)
def test_a_window_is_a_prometheus_duration_of_one_unit(window: str, seconds: int) -> None:
    assert observed.window_seconds(window) == seconds


@pytest.mark.parametrize("window", ["0d", "1h30m", "1y", "day", ""])
def test_a_window_it_cannot_read_is_named(window: str) -> None:
    with pytest.raises(ValueError, match=f"--window {window!r}: a number and one of s, m, h, d, w"):
        observed.window_seconds(window)


def test_every_selector_gets_the_matcher_and_the_canary_is_counted_once() -> None:
    q = observed.Queries("bankchurn", "1d", 'namespace="ml-platform"')
    assert q.answered == (
        f'sum(increase({N.predictions_total}{{namespace="ml-platform"}}[1d])) + '
        f'(sum(increase({N.variant_predictions_total}{{namespace="ml-platform",variant="canary"}}[1d])) '
        "or vector(0))"
    )
    assert 'process_cpu_seconds_total{namespace="ml-platform"}[1d]' in q.cpu_seconds
    assert f'last_over_time({N.model_ready}{{namespace="ml-platform"}}[1d])' in q.cpu_seconds
    assert q.replicas.endswith("[1d:360s])")  # about 240 points of the subquery
    assert q.log_bytes == f'sum by (logger) (increase({N.log_bytes_total}{{namespace="ml-platform"}}[1d]))'
    # The profile: each point's rate over its 360 s step, both variants, at 240 points of the day.
    assert q.rate_profile == (
        f'(sum(rate({N.predictions_total}{{namespace="ml-platform"}}[360s])) + '
        f'(sum(rate({N.variant_predictions_total}{{namespace="ml-platform",variant="canary"}}[360s])) '
        "or vector(0)))[1d:360s]"
    )
    # A short window's points still rate over a minute (two samples at a 30 s scrape interval),
    # and a window of fewer seconds than 240 points rounds its step up.
    assert observed.Queries("bankchurn", "1h").rate_range == "60s"
    assert observed.Queries("bankchurn", "6m").step == "2s"
    assert observed.Queries("bankchurn", "1d").selector(N.model_ready) == N.model_ready


class FakeSource:
    """Answers each query from ``values``, the log bytes from ``logged``, the profile from ``profile``."""

    def __init__(
        self,
        values: dict[str, float | None],
        logged: dict[str, float],
        profile: list[tuple[float, float]] | None = None,
    ) -> None:
        self.values, self.logged, self.profile = values, logged, profile or []

    def value(self, expr: str) -> float | None:
        return self.values[expr]

    def by(self, expr: str, label: str) -> dict[str, float]:
        assert (expr, label) == (observed.Queries("bankchurn", "1d").log_bytes, "logger")
        return self.logged

    def series(self, expr: str) -> list[tuple[float, float]]:
        assert expr == observed.Queries("bankchurn", "1d").rate_profile
        return self.profile


def answers(
    answered: float, *, captured: float = 0.0, seconds_observed: float | None = 43200.0
) -> dict[str, float | None]:
    """A day's window of which half was observed: 2 replicas, 1,728 CPU seconds."""
    q = observed.Queries("bankchurn", "1d")
    return {
        q.answered: answered,
        q.cpu_seconds: 1728.0,
        q.replicas: 2.0,
        q.captured: captured,
        q.seconds_observed: seconds_observed,
    }


def test_figures_are_over_the_part_of_the_window_the_service_was_there() -> None:
    logged = {"servekit.capture": 2_400_000.0, "servekit.access": 90_000.0, "other": 30_000.0}
    profile = [(1796256000.0, 20.0), (1796256360.0, 41.6667)]
    figures = observed.observe(
        "bankchurn", "1d", FakeSource(answers(1_200_000, captured=3000), logged, profile)
    )
    assert figures == {
        "window": "1d",
        "seconds_observed": 43200.0,
        "predictions": 1_200_000,
        "predictions_per_second": pytest.approx(1_200_000 / 43200, abs=0.001),
        "replicas": 2.0,
        "cpu_seconds": 1728.0,
        "cores": 0.02,  # 1,728 s over 12 h on 2 replicas
        "cpu_ms_per_prediction": 1.44,
        "captured_share": 0.0025,
        "capture_bytes_per_prediction": 800,  # the capture's bytes over the lines it wrote
        "operational_log_bytes_per_prediction": 0.1,  # 120,000 bytes over 1.2 million
        "rate_profile": [[1796256000, 20.0], [1796256360, 41.667]],
    }
    # Without history to say otherwise, the whole window.
    whole = observed.observe("bankchurn", "1d", FakeSource(answers(86400, seconds_observed=None), {}))
    assert whole is not None
    assert whole["predictions_per_second"] == 1.0


def test_the_reported_rates_are_the_reported_counts_divided() -> None:
    # A few seconds observed and increase()'s extrapolated count: rounding each figure on its own
    # gave 9.982 predictions/s beside 50 predictions in 5.0 s.
    figures = observed.observe("bankchurn", "1d", FakeSource(answers(50.4, seconds_observed=5.049), {}))
    assert figures is not None
    assert (figures["predictions"], figures["seconds_observed"]) == (50, 5.0)
    assert figures["predictions_per_second"] == 10.0
    assert figures["cpu_ms_per_prediction"] == round(1000 * figures["cpu_seconds"] / 50, 4)
    assert figures["cores"] == round(figures["cpu_seconds"] / 5.0 / figures["replicas"], 3)


def test_no_capture_no_capture_figure_and_no_prediction_no_figures() -> None:
    figures = observed.observe("bankchurn", "1d", FakeSource(answers(1000), {"servekit.access": 50_000.0}))
    assert figures is not None
    assert "capture_bytes_per_prediction" not in figures
    assert figures["operational_log_bytes_per_prediction"] == 50
    assert "50 bytes of access and service log lines each" in observed.describe("bankchurn", figures)
    assert observed.observe("bankchurn", "1d", FakeSource(answers(0.4), {})) is None


def test_an_unreachable_prometheus_or_a_bad_window_is_said_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "observed.json"
    url = f"http://127.0.0.1:{free_port()}"
    assert observed.main(["--prometheus", url, "--output", str(output)]) == 1
    assert f"observed: Prometheus at {url}: " in capsys.readouterr().err
    assert not output.exists()
    with pytest.raises(SystemExit):
        observed.main(["--prometheus", url, "--window", "1h30m"])
    assert "--window '1h30m'" in capsys.readouterr().err
