"""Cohort retention: of the people who started in a week (or month), how many came back later.

A person's cohort is the calendar week (ISO, Monday) or month of their first order
(``cohort="first_order"``) or first event of any kind (``cohort="first_seen"``). They are
retained in period ``k`` if they did the ``returning`` activity (``"any"`` event or an
``"order"``) in the k-th period after their cohort's. Period 0 is the cohort period itself
(100% by construction for ``first_order`` with ``returning="order"``).

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> retention(wh)["cohorts"]
[]
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput
from touchpoint.journeys.stats import wilson

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse


def _period_index(ts: ir.TimestampValue, period: str) -> ir.IntegerValue:
    """An integer that grows by one per period: weeks since 1970-01-05 (a Monday), or months."""
    if period == "week":
        base = ibis.date(1970, 1, 5)
        days = ts.date().delta(base, unit="day")
        return (days / 7).floor().cast("int64")
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


def retention_expr(
    events: ir.Table,
    *,
    period: Literal["week", "month"] = "week",
    cohort: Literal["first_order", "first_seen"] = "first_seen",
    returning: Literal["any", "order"] = "any",
    order_event: str = ORDER_COMPLETED,
) -> ir.Table:
    """Rows (cohort_index, k, people) plus cohort sizes at k = 0 as ``size`` on every row."""
    if period not in ("week", "month"):
        raise InvalidInput(f"retention period {period!r} is not known", hint="use 'week' or 'month'")
    if cohort not in ("first_order", "first_seen"):
        raise InvalidInput(f"cohort {cohort!r} is not known", hint="use 'first_order' or 'first_seen'")
    if returning not in ("any", "order"):
        raise InvalidInput(f"returning {returning!r} is not known", hint="use 'any' or 'order'")
    t = events.filter(events.type.isin(["page", "screen", "track"]))
    orders = t.filter((t.type == "track") & (t.event == order_event))
    start_src = orders if cohort == "first_order" else t
    starts = start_src.group_by(c_person=start_src.person).agg(c_ts=start_src.timestamp.min())
    starts = starts.mutate(cohort_index=_period_index(starts.c_ts, period))
    act = orders if returning == "order" else t
    act = act.select(a_person=act.person, a_idx=_period_index(act.timestamp, period)).distinct()
    j = act.join(starts, act.a_person == starts.c_person)
    j = j.mutate(k=(j.a_idx - j.cohort_index).cast("int64"))
    j = j.filter(j.k >= 0)
    counts = j.group_by(["cohort_index", "k"]).agg(people=j.a_person.nunique())
    sizes = starts.group_by(s_idx=starts.cohort_index).agg(size=starts.c_person.count())
    out = counts.join(sizes, counts.cohort_index == sizes.s_idx).drop("s_idx")
    return out


def _label(index: int, period: str) -> str:
    if period == "month":
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    from datetime import date, timedelta

    monday = date(1970, 1, 5) + timedelta(days=7 * index)
    return monday.isoformat()


def retention(
    wh: Warehouse,
    *,
    period: Literal["week", "month"] = "week",
    cohort: Literal["first_order", "first_seen"] = "first_seen",
    returning: Literal["any", "order"] = "any",
    start: datetime | None = None,
    end: datetime | None = None,
    max_periods: int = 12,
    identity: str = "auto",
    order_event: str = ORDER_COMPLETED,
) -> dict[str, Any]:
    """The retention matrix: per cohort its size and the share retained k periods later (with CIs).

    A cell is ``None`` when the period has not fully happened yet (it lies after the last event).
    """
    from touchpoint.journeys.people import person_events

    ev = person_events(wh, identity=identity)
    if start is not None:
        ev = ev.filter(ev.timestamp >= start)
    if end is not None:
        ev = ev.filter(ev.timestamp < end)
    rows = wh.to_arrow(
        retention_expr(ev, period=period, cohort=cohort, returning=returning, order_event=order_event)
    ).to_pylist()
    last = wh.to_arrow(ev.timestamp.max()).as_py()
    last_idx = None
    if last is not None and not (isinstance(last, float)):
        last_ts = last.to_pydatetime() if hasattr(last, "to_pydatetime") else last
        last_idx = int(wh.to_arrow(_period_index(ibis.literal(last_ts, "timestamp"), period)).as_py())
    by_cohort: dict[int, dict[str, Any]] = {}
    for r in rows:
        c = by_cohort.setdefault(int(r["cohort_index"]), {"size": int(r["size"]), "cells": {}})
        c["cells"][int(r["k"])] = int(r["people"])
    cohorts = []
    for idx in sorted(by_cohort):
        c = by_cohort[idx]
        size = c["size"]
        cells = []
        for k in range(max_periods + 1):
            complete = last_idx is None or idx + k <= last_idx
            n = c["cells"].get(k, 0)
            cells.append(
                {
                    "k": k,
                    "people": n if complete else None,
                    "share": (n / size if size else None) if complete else None,
                    "ci": wilson(n, size) if complete else None,
                }
            )
        cohorts.append({"cohort": _label(idx, period), "size": size, "periods": cells})
    return {
        "period": period,
        "cohort": cohort,
        "returning": returning,
        "cohorts": cohorts,
        "method": f"cohort by {cohort.replace('_', ' ')} {period}; retained = did '{returning}' in period k; "
        "95% Wilson intervals; the current, incomplete period is shown as it stands",
    }
