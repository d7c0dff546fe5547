"""When a key stops working: the ``expires=`` field read and written, and each client's last expiry.

An expiry is an instant in UTC however it was written, so a key dies at the same moment for
every replica and every reader of the file; ``last_expiries`` is what the
``<svc>_api_key_expiry_timestamp_seconds`` gauge exports and ``ApiKeyExpiresSoon`` alerts on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from servekit.auth.scopes import Key

#: How an expiry is written: a date, or a date and a time (``datetime.fromisoformat`` reads the
#: rest). Python also reads 20270301 and 2027-W09-1, which nobody checking a file should decode.
EXPIRY_FORM = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ].+)?")
#: The first instant no key may outlive: far enough to mean "for good", and near enough that a
#: date's offset or its rounding up to midnight never runs past the calendar's end (year 9999).
LATEST_EXPIRY = datetime(9000, 1, 1, tzinfo=UTC)
#: The year 1's first midnight, moved by an offset, would be before the calendar's start.
EARLIEST_EXPIRY = datetime(1, 1, 2, tzinfo=UTC)


def expiry(text: str) -> datetime:
    """A key's expiry: an ISO 8601 date (its midnight, UTC) or date and time with its offset.

    A time without an offset is refused: a key must not live hours longer, or die hours
    sooner, depending on the zone of whoever wrote the line.
    """
    if not EXPIRY_FORM.fullmatch(text):
        raise ValueError(
            f"expires={text!r} is not a date we read: write 2027-03-01, or a date and time with its "
            "offset, 2027-03-01T12:00:00Z"
        )
    try:
        if len(text) == len("2027-03-01"):
            when = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expires={text!r} is not an ISO 8601 date (2027-03-01) or date and time") from None
    if when.tzinfo is None:
        raise ValueError(f"expires={text!r} has no UTC offset: add 'Z' or '+00:00', or give a date")
    # Compared before converting: a time near the calendar's ends converts to an OverflowError.
    if when >= LATEST_EXPIRY:
        raise ValueError(f"expires={text!r} is out of range: a key must expire before {LATEST_EXPIRY.date()}")
    if when < EARLIEST_EXPIRY:
        raise ValueError(f"expires={text!r} is out of range: before {EARLIEST_EXPIRY.date()} in UTC")
    return when.astimezone(UTC)


def expiry_text(when: datetime) -> str:
    """How a key line and a refusal write an expiry: the date alone when it is a UTC midnight."""
    when = when.astimezone(UTC)
    if when.time() == datetime.min.time():
        return when.date().isoformat()
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def expires_in(days: float, now: datetime | None = None) -> datetime:
    """``days`` from ``now``, rounded up to the next UTC midnight: a line that reads as a date.

    A ValueError when ``days`` is no number, or the date would not be before ``LATEST_EXPIRY``.
    """
    now = now or datetime.now(UTC)
    if math.isnan(days):
        raise ValueError("not a number of days")
    # Compared before adding (a day spared for the rounding up): a sum past the year 9999, or
    # an infinite one, is an OverflowError rather than a date.
    if days >= (LATEST_EXPIRY - now) / timedelta(days=1) - 1:
        raise ValueError(f"a key must expire before {LATEST_EXPIRY.date()}")
    when = now + timedelta(days=days)
    midnight = datetime.combine(when.date(), datetime.min.time(), tzinfo=UTC)
    return midnight if midnight == when else midnight + timedelta(days=1)


def last_expiries(keys: Mapping[str, Key]) -> dict[str, datetime]:
    """When each client whose keys all expire loses access: its last key's expiry.

    A client holding a key without an expiry is left out: it never loses access by date.
    """
    never = {key.client for key in keys.values() if key.expires is None}
    last: dict[str, datetime] = {}
    for key in keys.values():
        if key.expires is not None and key.client not in never:
            last[key.client] = max(key.expires, last.get(key.client, key.expires))
    return last
