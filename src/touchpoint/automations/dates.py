"""Date triggers: ``{"before": DATE, "days": N}`` and ``{"after": DATE, "days": N}``.

``DATE`` is a prediction (``next_purchase_at`` from the latest CLV run, ``replenishment_due_at`` from the
replenishment table, optionally of one ``product``), a timestamp column of ``profiles`` (``last_order_at``,
``first_seen``) or a stored trait holding an ISO date. The trigger fires at 00:00 UTC of the day ``days``
before (or after) the date: the replenishment reminder is ``{"before": "next_purchase_at", "days": 5}``.

What is due, at each evaluation (``now``), for every profile whose date is known:

* the firing instant has come (``<= now``) and falls after the automation's creation (its floor);
* ``before``: the date itself has not passed yet, so a prediction that arrived late (it moved the firing
  instant into the past) still reminds before the day, and one whose day has gone does not;
* ``after``: the firing instant is less than a day old (a date learned later than that is passed over).

The trigger's key is the direction, the date's name, the days and the date's value: the same date fires
once (whatever the re-entry policy), and a new prediction with another date is a new occurrence under
``every_time`` or ``once_per_days``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from touchpoint.automations.definition import Trigger
from touchpoint.warehouse import Warehouse, schema

PREDICTED_DATES = ("next_purchase_at", "replenishment_due_at")
LATE_AFTER = timedelta(days=1)  # an `after` trigger found later than this past its instant is passed over


def _dates(wh: Warehouse, trigger: Trigger) -> ir.Table:
    """``profile_id, tp_date (date), tp_key`` for every profile whose date is known."""
    name = trigger.date
    assert name is not None
    if name == "next_purchase_at":
        p = wh.table("predictions")
        g = p.group_by(profile_id=p.customer_id).agg(tp_date=p.next_purchase_at.max())
        return g.mutate(tp_key=ibis.literal(""))
    if name == "replenishment_due_at":
        r = wh.table(schema.REPLENISHMENT.name)
        if trigger.product is not None:
            r = r.filter(r.product == trigger.product)
        return r.select(profile_id=r.customer_id, tp_date=r.due_at.cast("date"), tp_key=r.product.fill_null("") + ":")
    profiles = schema.PROFILES.schema
    if name in profiles.names and (profiles[name].is_timestamp() or profiles[name].is_date()):
        p = wh.table("profiles")
        return p.select("profile_id", tp_date=p[name].cast("date"), tp_key=ibis.literal(""))
    t = wh.table("profile_traits")
    t = t.filter(t.trait == name)
    g = t.group_by("profile_id").agg(tp_value=t.value.max().cast("json"))
    return g.select("profile_id", tp_date=g.tp_value.str.try_cast("timestamp").cast("date"), tp_key=ibis.literal(""))


def selected(wh: Warehouse, trigger: Trigger, *, floor: datetime, now: datetime) -> ir.Table:
    """The date triggers due at ``now``: ``profile_id, trigger, at, properties``."""
    d = _dates(wh, trigger)
    d = d.filter(d.tp_date.notnull() & d.profile_id.notnull())
    shift = -trigger.days if trigger.direction == "before" else trigger.days
    fire = (d.tp_date + ibis.interval(days=shift)).cast("timestamp")
    d = d.mutate(tp_fire=fire)
    cond = (d.tp_fire > ibis.literal(floor, "timestamp")) & (d.tp_fire <= ibis.literal(now, "timestamp"))
    if trigger.direction == "before":
        cond = cond & (d.tp_date >= ibis.literal(now.date()))
    else:
        cond = cond & (d.tp_fire > ibis.literal(now - LATE_AFTER, "timestamp"))
    d = d.filter(cond)
    prefix = f"{trigger.direction}:{trigger.date}:{trigger.days}:"
    return d.select(
        "profile_id",
        trigger=ibis.literal(prefix) + d.tp_key + d.tp_date.cast("string"),
        at=d.tp_fire,
        properties=ibis.null("string"),
    )
