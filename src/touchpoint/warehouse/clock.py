"""The present as the warehouse stores time: naive UTC.

>>> utcnow().tzinfo is None
True
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as naive UTC (how the warehouse stores every timestamp)."""
    return datetime.now(UTC).replace(tzinfo=None)
