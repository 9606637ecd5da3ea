"""Sessions: a person's events split wherever they were inactive for longer than a timeout.

A session starts at a person's first event and at every event that comes *more than*
``timeout_minutes`` after the one before it (a gap of exactly the timeout continues the session,
as in Google Analytics). Events are ordered by ``timestamp`` and then ``message_id``, so events
with identical timestamps are ordered the same way on every run and every engine, and events that
arrived out of order are placed where their timestamp says.

Each session takes its channel (and campaign) from its landing event, classified by
:mod:`touchpoint.journeys.channels`.

Everything here is an Ibis expression: it runs in the warehouse (DuckDB by default).

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.journeys.people import person_events
>>> wh = Warehouse.open("duckdb://:memory:")
>>> sessions(sessionize(person_events(wh))).count().to_pyarrow().as_py()
0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput
from touchpoint.journeys.channels import ChannelRule, channel_expr

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

DEFAULT_TIMEOUT_MINUTES = 30.0
ACTIVITY_TYPES = ("page", "screen", "track")
BROWSING_TYPES = ("page", "screen")


def check_timeout(timeout_minutes: float) -> float:
    if not isinstance(timeout_minutes, int | float) or not 0 < timeout_minutes <= 7 * 24 * 60:
        raise InvalidInput(
            f"session timeout {timeout_minutes!r} minutes is out of range",
            hint="give a number of minutes between 1 and 10080 (one week); the default is 30",
        )
    return float(timeout_minutes)


def sessionize(
    events: ir.Table,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    types: Sequence[str] | None = ACTIVITY_TYPES,
) -> ir.Table:
    """Add ``session_start_flag`` (bool), ``session_index`` (1, 2, ... per person) and ``session_id``.

    ``events`` needs ``person``, ``timestamp`` and ``message_id`` columns (see
    :func:`touchpoint.journeys.people.person_events`). Only events whose ``type`` is in ``types``
    are kept (``None`` keeps all); by default identify/alias/group calls do not open sessions.
    """
    timeout = check_timeout(timeout_minutes)
    t = events if types is None else events.filter(events.type.isin(list(types)))
    order = [t.timestamp, t.message_id]
    w = ibis.window(group_by=t.person, order_by=order)
    prev = t.timestamp.lag().over(w)
    limit = prev + ibis.interval(milliseconds=round(timeout * 60_000))
    flagged = t.mutate(session_start_flag=prev.isnull() | (t.timestamp > limit))
    cw = ibis.cumulative_window(group_by=flagged.person, order_by=[flagged.timestamp, flagged.message_id])
    indexed = flagged.mutate(session_index=flagged.session_start_flag.cast("int64").sum().over(cw))
    return indexed.mutate(
        session_id=indexed.person.concat(ibis.literal("#"), indexed.session_index.cast("string"))
    )


def sessions(sessionized: ir.Table, *, rules: Sequence[ChannelRule] | None = None) -> ir.Table:
    """One row per session: person, session_id, start, end, events, channel, campaign, landing page.

    >>> import datetime as dt
    >>> from touchpoint.journeys.frames import events_table
    >>> t = events_table([
    ...     {"person": "p", "type": "page", "timestamp": dt.datetime(2026, 1, 1), "utm_medium": "email"},
    ...     {"person": "p", "type": "page", "timestamp": dt.datetime(2026, 1, 1, 1)}])
    >>> sessions(sessionize(t)).order_by("session_index").channel.to_pyarrow().to_pylist()
    ['email', 'direct']
    """
    s = sessionized
    landing = s.filter(s.session_start_flag).select(
        tp_person=s.person,
        tp_index=s.session_index,
        session_start=s.timestamp,
        channel=channel_expr(s, rules),
        campaign=s.utm_campaign,
        source=s.utm_source,
        medium=s.utm_medium,
        landing_path=s.path,
    )
    stats = s.group_by(person=s.person, session_index=s.session_index, session_id=s.session_id).agg(
        session_end=s.timestamp.max(), events=s.count(), pages=(s.type == "page").sum()
    )
    joined = stats.join(
        landing, (stats.person == landing.tp_person) & (stats.session_index == landing.tp_index)
    )
    return joined.select(
        "person",
        "session_id",
        "session_index",
        "session_start",
        "session_end",
        "events",
        "pages",
        "channel",
        "campaign",
        "source",
        "medium",
        "landing_path",
    )


def session_table(
    wh: Warehouse,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    rules: Sequence[ChannelRule] | None = None,
    types: Sequence[str] | None = ACTIVITY_TYPES,
    identity: str = "auto",
) -> ir.Table:
    """The sessions of every person in the warehouse, as an Ibis expression."""
    from touchpoint.journeys.people import person_events

    return sessions(
        sessionize(person_events(wh, identity=identity), timeout_minutes=timeout_minutes, types=types),  # type: ignore[arg-type]
        rules=rules,
    )


def build_sessions_table(wh: Warehouse, name: str = "sessions", **options: object) -> int:
    """Materialise :func:`session_table` as the derived table ``name``; returns its row count."""
    expr = session_table(wh, **options)  # type: ignore[arg-type]
    wh.ibis.create_table(name, expr, overwrite=True)
    return wh.count(name)
