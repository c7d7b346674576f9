"""huey's ETAs (naive UTC datetimes) and the jobs table's epoch seconds."""

from __future__ import annotations

import datetime


def to_timestamp(eta: datetime.datetime) -> float:
    """huey keeps ETAs as naive UTC datetimes; the jobs table keeps epoch seconds."""
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=datetime.UTC)
    return eta.timestamp()


def to_eta(timestamp: float) -> datetime.datetime:
    """Epoch seconds as huey's naive UTC datetime."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).replace(tzinfo=None)
