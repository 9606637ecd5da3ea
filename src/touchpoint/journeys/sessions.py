"""Sessions: a person's events split wherever they were inactive for longer than a timeout.

A session starts at a person's first event and at every event that comes *more than*
``timeout_minutes`` after the one before it (a gap of exactly the timeout continues the session,
as in Google Analytics). Events are ordered by ``timestamp`` and then ``message_id``, so events
with identical timestamps are ordered the same way on every run and every engine, and events that
arrived out of order are placed where their timestamp says.

Each session takes its channel (and campaign) from its landing event, classified by
:mod:`touchpoint.collect.channels`.

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

from touchpoint.collect.channels import ChannelRule, channel_expr, with_channel
from touchpoint.errors import InvalidInput

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

DEFAULT_TIMEOUT_MINUTES = 30.0
ACTIVITY_TYPES = ("page", "screen", "track")
BROWSING_TYPES = ("page", "screen")
SESSION_COLUMNS = (
    "person",
    "message_id",
    "type",
    "event",
    "name",
    "timestamp",
    "url",
    "path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)


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
    columns: Sequence[str] | None = (),
) -> ir.Table:
    """Add ``session_start_flag`` (bool), ``session_index`` (1, 2, ... per person) and ``session_id``.

    ``events`` needs ``person``, ``timestamp`` and ``message_id`` columns (see
    :func:`touchpoint.journeys.people.person_events`). Only events whose ``type`` is in ``types``
    are kept (``None`` keeps all); by default identify/alias/group calls do not open sessions.
    Only the columns sessions need (:data:`SESSION_COLUMNS`) and ``columns`` are kept; pass
    ``columns=None`` to keep every column.
    """
    timeout = check_timeout(timeout_minutes)
    t = events if types is None else events.filter(events.type.isin(list(types)))
    if columns is not None:  # carry only what is needed through the sorts (JSON columns are wide)
        wanted = list(dict.fromkeys([*SESSION_COLUMNS, *columns]))
        t = t.select(*[c for c in wanted if c in t.columns])
    order = [t.timestamp, t.message_id]
    w = ibis.window(group_by=t.person, order_by=order)
    prev = t.timestamp.lag().over(w)
    limit = prev + ibis.interval(milliseconds=round(timeout * 60_000))
    flagged = t.mutate(session_start_flag=prev.isnull() | (t.timestamp > limit))
    cw = ibis.cumulative_window(group_by=flagged.person, order_by=[flagged.timestamp, flagged.message_id])
    indexed = flagged.mutate(session_index=flagged.session_start_flag.cast("int64").sum().over(cw))
    return indexed.mutate(session_id=session_id_expr(indexed.person, indexed.session_index))


def session_id_expr(person: ir.StringValue, index: ir.IntegerValue) -> ir.StringValue:
    """``<person>#<n>``: the id of a person's n-th session."""
    return person.concat(ibis.literal("#"), index.cast("string"))


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
    stats = s.group_by(person=s.person, session_index=s.session_index).agg(
        session_end=s.timestamp.max(), events=s.count(), pages=(s.type == "page").sum()
    )
    stats = stats.mutate(session_id=session_id_expr(stats.person, stats.session_index))
    joined = stats.join(landing, (stats.person == landing.tp_person) & (stats.session_index == landing.tp_index))
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


def sessions_from_events(
    events: ir.Table,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    types: Sequence[str] | None = ACTIVITY_TYPES,
    rules: Sequence[ChannelRule] | None = None,
) -> ir.Table:
    """The same rows as ``sessions(sessionize(events))``, computed with one sort of the events.

    Every per-event quantity (previous timestamp, position, running page count, the person's
    totals) comes from one window pass with a single partitioning and order; session boundaries
    are then the few rows that start a session, and each session's size and end come from the
    next start. This is what :func:`session_table` and the attribution journeys use.
    """
    timeout = check_timeout(timeout_minutes)
    full = events if types is None else events.filter(events.type.isin(list(types)))
    # Three narrow columns go through one sort, by timestamp only (a string tie-break would double
    # its cost). Session boundaries never split equal timestamps, so counts do not depend on how
    # ties are ordered; the landing event is then chosen among the ties by message_id, as in
    # sessions(sessionize(...)), and its fields are looked up only for session starts.
    t = full.select("person", "timestamp", "type")
    order = [t.timestamp]
    w = ibis.window(group_by=t.person, order_by=order)
    upto = ibis.cumulative_window(group_by=t.person, order_by=order)
    whole = ibis.window(group_by=t.person, order_by=order, rows=(None, None))
    is_page = (t.type == "page").cast("int64")
    x = t.mutate(
        tp_prev=t.timestamp.lag().over(w),
        tp_rn=ibis.row_number().over(w),
        tp_pages_before=is_page.sum().over(upto) - is_page,
        tp_n=t.timestamp.count().over(whole),
        tp_pages=is_page.sum().over(whole),
        tp_last=t.timestamp.max().over(whole),
    )
    limit = x.tp_prev + ibis.interval(milliseconds=round(timeout * 60_000))
    f = x.filter(x.tp_prev.isnull() | (x.timestamp > limit))
    fw = ibis.window(group_by=f.person, order_by=[f.timestamp])
    f = f.mutate(
        session_index=(ibis.row_number().over(fw) + 1).cast("int64"),
        tp_next_rn=f.tp_rn.lead().over(fw),
        tp_next_prev=f.tp_prev.lead().over(fw),
        tp_next_pages=f.tp_pages_before.lead().over(fw),
    )
    landing = full.select(
        full.person.name("tp_lp"),
        full.timestamp.name("tp_lts"),
        full.message_id.name("tp_mid"),
        *[full[c] for c in SESSION_COLUMNS[6:] if c in full.columns],
    )
    j = f.join(landing, (f.person == landing.tp_lp) & (f.timestamp == landing.tp_lts))
    first = ibis.window(group_by=[j.person, j.session_index], order_by=[j.tp_mid])
    j = j.mutate(tp_pick=ibis.row_number().over(first))
    f = with_channel(j.filter(j.tp_pick == 0), rules)
    return f.select(
        person=f.person,
        session_id=session_id_expr(f.person, f.session_index),
        session_index=f.session_index,
        session_start=f.timestamp,
        session_end=ibis.coalesce(f.tp_next_prev, f.tp_last),
        events=(ibis.coalesce(f.tp_next_rn, f.tp_n) - f.tp_rn).cast("int64"),
        pages=(ibis.coalesce(f.tp_next_pages, f.tp_pages) - f.tp_pages_before).cast("int64"),
        channel=f.channel,
        campaign=f.utm_campaign,
        source=f.utm_source,
        medium=f.utm_medium,
        landing_path=f.path,
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

    ev = person_events(wh, identity=identity)
    return sessions_from_events(ev, timeout_minutes=timeout_minutes, types=types, rules=rules)


def build_sessions_table(wh: Warehouse, **options: object) -> int:
    """Materialise :func:`session_table` as the derived table ``sessions``; returns its row count."""
    expr = session_table(wh, **options)  # type: ignore[arg-type]
    return wh.replace("sessions", expr)
