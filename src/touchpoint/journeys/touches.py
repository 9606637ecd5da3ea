"""Journeys from the warehouse: each conversion with the sessions (touches) that led to it.

A touch is a browsing session (page or screen views; see :mod:`~touchpoint.journeys.sessions`)
with the channel of its landing page. A conversion is a track event named ``conversion_event``
(default ``Order Completed``; one per ``order_id``) with its ``revenue`` as value. A person's
touches are split into journeys at each conversion: a converting journey is the touches that
started after the previous conversion and no more than ``lookback_days`` before this one (a
session that starts at the very time of the order counts). The touches after a person's last
conversion, within ``lookback_days`` before their last touch, form one non-converting journey (a
"null" path). With ``first_only`` only each person's first conversion counts (acquisition), and
only people who had not converted yet contribute null paths. Conversions without any touch in
the lookback get the path ``(none)``.

The whole split runs in the warehouse; only one row per journey (its channels and their ages in
days) comes back, so the cost in Python grows with journeys, not events.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> journeys(wh).n_paths
0
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput
from touchpoint.journeys.pathdata import PathData

if TYPE_CHECKING:
    from touchpoint.collect.channels import ChannelRule
    from touchpoint.warehouse import Warehouse

NO_TOUCH = "(none)"
CONVERSION_EVENT = ORDER_COMPLETED


def journeys_expr(
    events: ir.Table,
    *,
    lookback_days: float = 30.0,
    conversion_event: str = CONVERSION_EVENT,
    timeout_minutes: float = 30.0,
    rules: Sequence[ChannelRule] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    first_only: bool = False,
) -> ir.Table:
    """One row per journey: ``person, converted, value, conv_ts, channels (array), ages (array, days)``."""
    from touchpoint.journeys.sessions import BROWSING_TYPES, sessions_from_events

    if not isinstance(lookback_days, int | float) or not 0 < lookback_days <= 3650:
        raise InvalidInput(
            f"lookback window {lookback_days!r} days is out of range", hint="give 1 to 3650 days (default 30)"
        )
    lookback = ibis.interval(milliseconds=round(lookback_days * 86_400_000))
    ev = events
    if end is not None:
        ev = ev.filter(ev.timestamp < end)
    if start is not None:
        ev = ev.filter(ev.timestamp >= ibis.literal(start, "timestamp") - lookback)
    s = sessions_from_events(ev, timeout_minutes=timeout_minutes, types=BROWSING_TYPES, rules=rules)
    touch = s.select(
        person=s.person,
        ts=s.session_start,
        tp_kind=ibis.literal(0),
        tp_key=s.session_id,
        channel=s.channel,
        value=ibis.literal(None, "float64"),
    )
    c = ev.filter((ev.type == "track") & (ev.event == conversion_event))
    ow = ibis.window(group_by=[c.person, c.order_id], order_by=[c.timestamp, c.message_id])
    c = c.mutate(tp_dup=ibis.row_number().over(ow))
    c = c.filter(c.order_id.isnull() | (c.tp_dup == 0))
    if first_only:
        fw = ibis.window(group_by=c.person, order_by=[c.timestamp, c.message_id])
        c = c.mutate(tp_first=ibis.row_number().over(fw))
        c = c.filter(c.tp_first == 0)
    conv = c.select(
        person=c.person,
        ts=c.timestamp,
        tp_kind=ibis.literal(1),
        tp_key=c.message_id,
        channel=ibis.literal(None, "string"),
        value=c.revenue.fill_null(0.0).cast("float64"),
    )
    u = touch.union(conv)
    cw = ibis.cumulative_window(group_by=u.person, order_by=[u.ts, u.tp_kind, u.tp_key])
    is_conv = (u.tp_kind == 1).cast("int64")
    u = u.mutate(journey=is_conv.sum().over(cw) - is_conv)
    convs = u.filter(u.tp_kind == 1).select(c_person=u.person, c_journey=u.journey, conv_ts=u.ts, c_value=u.value)
    touches = u.filter(u.tp_kind == 0)
    j = touches.left_join(convs, (touches.person == convs.c_person) & (touches.journey == convs.c_journey))
    last = j.ts.max().over(ibis.window(group_by=[j.person, j.journey]))
    j = j.mutate(tp_end=ibis.coalesce(j.conv_ts, last))
    j = j.filter(j.ts >= j.tp_end - lookback)
    j = j.mutate(age=j.tp_end.delta(j.ts, unit="second").cast("float64") / 86_400.0)
    order = [j.ts, j.tp_key]
    conv_journeys = j.filter(j.conv_ts.notnull())
    null_journeys = j.filter(j.conv_ts.isnull())
    if first_only:  # sessions after a customer's first order are not part of any acquisition journey
        null_journeys = null_journeys.filter(null_journeys.journey == 0)
    agg_conv = conv_journeys.group_by(["person", "journey"]).agg(
        channels=conv_journeys.channel.collect(order_by=order),
        ages=conv_journeys.age.collect(order_by=order),
        conv_ts=conv_journeys.conv_ts.max(),
    )
    agg_null = null_journeys.group_by(["person", "journey"]).agg(
        channels=null_journeys.channel.collect(order_by=order),
        ages=null_journeys.age.collect(order_by=order),
        tp_end=null_journeys.tp_end.max(),
    )
    all_conv = convs.left_join(
        agg_conv, (convs.c_person == agg_conv.person) & (convs.c_journey == agg_conv.journey)
    ).select(
        person=convs.c_person,
        converted=ibis.literal(True),
        value=convs.c_value,
        when=convs.conv_ts,
        channels=agg_conv.channels,
        ages=agg_conv.ages,
    )
    nulls = agg_null.select(
        person=agg_null.person,
        converted=ibis.literal(False),
        value=ibis.literal(0.0, "float64"),
        when=agg_null.tp_end,
        channels=agg_null.channels,
        ages=agg_null.ages,
    )
    out = all_conv.union(nulls)
    if start is not None:
        out = out.filter(out.when >= start)
    return out


def journeys(
    wh: Warehouse,
    *,
    lookback_days: float = 30.0,
    conversion_event: str = CONVERSION_EVENT,
    timeout_minutes: float = 30.0,
    rules: Sequence[ChannelRule] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    identity: str = "auto",
    events: ir.Table | None = None,
    first_only: bool = False,
) -> PathData:
    """The warehouse's journeys as :class:`PathData` (one path per journey, with touch ages in days)."""
    from touchpoint.journeys.people import person_events

    ev = events if events is not None else person_events(wh, identity=identity)
    expr = journeys_expr(
        ev,
        lookback_days=lookback_days,
        conversion_event=conversion_event,
        timeout_minutes=timeout_minutes,
        rules=rules,
        start=start,
        end=end,
        first_only=first_only,
    )
    table = wh.to_arrow(expr.select("converted", "value", "channels", "ages"))
    return from_journey_table(table, source=f"warehouse ({lookback_days:g}-day lookback, {conversion_event!r})")


def from_journey_table(table: pa.Table, *, source: str = "warehouse") -> PathData:
    """Build :class:`PathData` from rows of ``converted, value, channels (list), ages (list)``."""
    n = table.num_rows
    if n == 0:
        return PathData(
            [],
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            source,
        )
    channels = table.column("channels").combine_chunks()
    ages = table.column("ages").combine_chunks()
    empty = pc.fill_null(pc.equal(pc.list_value_length(channels), 0), True)
    if pc.any(empty).as_py():
        filler_c = pa.array([[NO_TOUCH]] * n, pa.list_(pa.string()))
        filler_a = pa.array([[0.0]] * n, pa.list_(pa.float64()))
        channels = pc.if_else(empty, filler_c, channels)
        ages = pc.if_else(empty, filler_a, ages)
    flat = channels.flatten()
    offsets = channels.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = offsets - offsets[0]
    age_flat = ages.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    converted = table.column("converted").to_numpy(zero_copy_only=False).astype(bool)
    value = np.nan_to_num(table.column("value").to_numpy(zero_copy_only=False).astype(np.float64))
    conv = converted.astype(np.float64)
    return PathData._build(flat, offsets, conv, np.where(converted, value, 0.0), 1.0 - conv, age_flat, source)
