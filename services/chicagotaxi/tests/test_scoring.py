"""``mlp score`` of a warehouse export whose ``trip_start_timestamp`` is a TIMESTAMP column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chicagotaxi.service import SERVICE
from servekit.model import ModelArtifact
from servekit.scoring import score_file
from servekit.training.splitting import Split


def fares(trained: tuple[ModelArtifact, Split], frame: pd.DataFrame, path: Path) -> pd.Series:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    scores = path.with_name(f"{path.stem}-scores.csv")
    summary = score_file(SERVICE, SERVICE.model(trained[0]), path, scores, keep=[], prefix="p_")
    NOTES[path.name] = summary.notes
    return pd.read_csv(scores)["p_fare"]


#: Each file's notes from its run, by name.
NOTES: dict[str, list[str]] = {}


def test_a_timestamp_column_scores_as_the_iso_8601_text_or_seconds_a_client_would_send(
    trained: tuple[ModelArtifact, Split], real_csv: Path, tmp_path: Path
) -> None:
    trips = pd.read_csv(real_csv, nrows=600)
    seconds = fares(trained, trips, tmp_path / "seconds.csv")
    # The rest the API refuses: miles or seconds not recorded, or contradicting each other or the
    # coordinates (the cleaning's rules 12 and 13).
    assert seconds.notna().sum() > 300
    # No zone: the wall-clock time the file's seconds stand for (they are Chicago's, read as UTC).
    times = pd.to_datetime(trips.trip_start_timestamp, unit="s")
    pd.testing.assert_series_equal(
        fares(trained, trips.assign(trip_start_timestamp=times), tmp_path / "naive.parquet"), seconds
    )
    # A zone: an instant, converted as the API converts an offset. Chicago's own zone gives the
    # same wall clock back, but for the hours a change of clocks leaves out or repeats.
    chicago = times.dt.tz_localize("America/Chicago", ambiguous="NaT", nonexistent="NaT")
    zoned = fares(trained, trips.assign(trip_start_timestamp=chicago), tmp_path / "chicago.parquet")
    pd.testing.assert_series_equal(zoned[chicago.notna()], seconds[chicago.notna()])
    # UTC is honoured too: the same instants as ISO 8601 text with their offset, not the seconds.
    utc = times.dt.tz_localize("UTC")
    as_utc = fares(trained, trips.assign(trip_start_timestamp=utc), tmp_path / "utc.parquet")
    iso = fares(
        trained, trips.assign(trip_start_timestamp=utc.map(pd.Timestamp.isoformat)), tmp_path / "iso.csv"
    )
    pd.testing.assert_series_equal(as_utc, iso)
    assert (as_utc.fillna(-1) != seconds.fillna(-1)).sum() > 100
    # The run says so of a zoned column: a table may hold local times labelled UTC.
    assert NOTES["naive.parquet"] == NOTES["seconds.csv"] == []
    (note,) = NOTES["utc.parquet"]
    assert note.startswith("trip_start_timestamp is a TIMESTAMP in UTC: each value was sent as the instant")
    assert "must send them without the zone (a DATETIME)" in NOTES["chicago.parquet"][0]
