"""Schedule triggers: a recurring send to an audience, ``{"schedule": {"every": "7d", "audience": NAME}}`` or
``{"schedule": {"cron": "0 9 * * 1", "audience": NAME}}`` (five fields, UTC; day of week 0 = Sunday).

Each run enters the audience's members at the run's instant, keyed by the run (``schedule:<instant>``): a
member gets each run's message once, and the next run is a new occurrence. ``every`` counts from the
automation's creation. When evaluations were missed (the server was down), only the latest missed run is
sent: a weekly newsletter after a month away goes out once, not four times.

>>> from datetime import datetime
>>> from touchpoint.automations.definition import Schedule
>>> latest_run(Schedule(cron="0 9 * * 1"), datetime(2026, 1, 1), datetime(2026, 1, 1), datetime(2026, 1, 20))
datetime.datetime(2026, 1, 19, 9, 0)
>>> latest_run(Schedule(every=7 * 86400.0), datetime(2026, 1, 1, 12), datetime(2026, 1, 1), datetime(2026, 1, 16))
datetime.datetime(2026, 1, 15, 12, 0)
>>> latest_run(Schedule(every=7 * 86400.0), datetime(2026, 1, 1, 12), datetime(2026, 1, 15, 13), datetime(2026, 1, 16))
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from touchpoint.automations.definition import CRON_FIELDS, Schedule, cron_field
from touchpoint.warehouse import Warehouse, schema

MAX_LOOKBACK_DAYS = 400  # a cron run older than this is not looked for


def _cron_latest(cron: str, since: datetime, until: datetime) -> datetime | None:
    minute, hour, dom, month, dow = (
        cron_field("$", text, lo, hi, what) for text, (what, lo, hi) in zip(cron.split(), CRON_FIELDS, strict=True)
    )
    dom_any, dow_any = len(dom) == 31, len(dow) == 7
    day = until.replace(hour=0, minute=0, second=0, microsecond=0)
    stop = max(since, until - timedelta(days=MAX_LOOKBACK_DAYS))
    while day + timedelta(days=1) > stop:
        weekday = (day.weekday() + 1) % 7  # cron: 0 = Sunday
        both = not (dom_any or dow_any)  # both restricted: either matches (cron's rule)
        day_ok = (day.day in dom or weekday in dow) if both else (day.day in dom and weekday in dow)
        if day.month in month and day_ok:
            for h in sorted(hour, reverse=True):
                for m in sorted(minute, reverse=True):
                    t = day.replace(hour=h, minute=m)
                    if t <= until:
                        return t if t > since else None
        day -= timedelta(days=1)
    return None


def latest_run(schedule: Schedule, anchor: datetime, since: datetime, until: datetime) -> datetime | None:
    """The latest scheduled instant in ``(since, until]``, or None."""
    if schedule.cron is not None:
        return _cron_latest(schedule.cron, since, until)
    assert schedule.every is not None
    if until < anchor:
        return None
    period = timedelta(seconds=schedule.every)
    run = anchor + period * int((until - anchor) / period)
    return run if since < run <= until and run > anchor else None


def members_at(wh: Warehouse, audience: str, run: datetime | None) -> ir.Table:
    """The audience's members at ``run`` as triggers (none when there is no run)."""
    m = wh.table(schema.AUDIENCE_MEMBERSHIPS.name)
    if run is None:
        m = m.filter(ibis.literal(False))
        run = datetime(1970, 1, 1)
    lit = ibis.literal(run, "timestamp")
    m = m.filter((m.audience == audience) & (m.entered_at <= lit) & (m.exited_at.isnull() | (m.exited_at > lit)))
    return m.select(
        "profile_id",
        trigger=ibis.literal(f"schedule:{run.isoformat()}"),
        at=lit,
        properties=ibis.null("string"),
    ).distinct()
