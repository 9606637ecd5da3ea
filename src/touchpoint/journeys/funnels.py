"""Funnels: how many people go through ordered steps within a conversion window.

Counting rule (Mixpanel's "uniques"): a person enters the funnel at their *first* step-1 event in
the period. Step ``k+1`` is the earliest matching event that comes after the event that completed
step ``k`` (same timestamp counts as after, if it is a different event) and no later than the
conversion window after the entry. A person counts once per step reached. Identical timestamps
are ordered by ``message_id``, so results are deterministic; events arriving out of order are
placed by their ``timestamp``.

Each step costs one join of the step's events with one row per person, so profiles with
thousands of events cost linear, not quadratic, time. Everything runs in the warehouse.

A step is written as ``"Event Name"`` (a track event), ``"page"`` (any page view),
``"page:/path"`` (a page view whose path matches, ``%`` as wildcard) or ``"screen:Name"``.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.journeys.people import person_events
>>> wh = Warehouse.open("duckdb://:memory:")
>>> funnel(wh, ["page", "Order Completed"])["steps"][0]["people"]
0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput
from touchpoint.warehouse.jsonpath import check_json_key

if TYPE_CHECKING:
    from touchpoint.collect.channels import ChannelRule
    from touchpoint.warehouse import Warehouse

MAX_STEPS = 20


@dataclass(frozen=True)
class Step:
    """One funnel step: a track event name, or a page/screen view (optionally by path or name)."""

    label: str
    type: str
    value: str | None

    @classmethod
    def parse(cls, text: str) -> Step:
        """``"Signed Up"`` | ``"page"`` | ``"page:/pricing%"`` | ``"screen"`` | ``"screen:Home"``.

        >>> Step.parse("page:/cart").type
        'page'
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"funnel step {text!r} is empty", hint="name a track event, 'page' or 'page:/path'")
        text = text.strip()
        kind, sep, rest = text.partition(":")
        if kind in ("page", "screen"):
            return cls(text, kind, rest.strip() or None if sep else None)
        return cls(text, "track", text)

    def predicate(self, t: ir.Table) -> ir.BooleanValue:
        if self.type == "track":
            return (t.type == "track") & (t.event == self.value)
        cond = t.type == self.type
        if self.value is None:
            return cond
        column = t.path if self.type == "page" else t.name
        if "%" in self.value or "_" in self.value:
            return cond & column.like(self.value)
        return cond & (column == self.value)


def parse_steps(steps: Sequence[str | Step]) -> list[Step]:
    parsed = [s if isinstance(s, Step) else Step.parse(s) for s in steps]
    if not 2 <= len(parsed) <= MAX_STEPS:
        raise InvalidInput(
            f"a funnel needs 2 to {MAX_STEPS} steps, got {len(parsed)}",
            hint="pass the steps in order, e.g. 'page:/product%' 'Product Added' 'Order Completed'",
        )
    return parsed


def check_window(window_hours: float) -> float:
    if not isinstance(window_hours, int | float) or not 0 < window_hours <= 24 * 366:
        raise InvalidInput(
            f"conversion window {window_hours!r} hours is out of range",
            hint="give a number of hours between 0 and 8784 (one year)",
        )
    return float(window_hours)


def funnel_expr(
    events: ir.Table,
    steps: Sequence[str | Step],
    *,
    window_hours: float = 24.0 * 7,
    breakdown: str | None = None,
    breakdown_table: ir.Table | None = None,
) -> ir.Table:
    """One row per person who entered: ``t1 .. tN`` (null where not reached) and ``breakdown``.

    ``events`` must have ``person``, ``timestamp``, ``message_id`` and the event columns.
    ``breakdown`` is an event column (``utm_source``), ``properties.<key>`` (of the entry event),
    or ``channel`` (needs ``breakdown_table``: the sessionized events with a ``channel`` column
    per ``message_id``, see :func:`funnel`).
    """
    parsed = parse_steps(steps)
    window = ibis.interval(milliseconds=round(check_window(window_hours) * 3_600_000))
    t = events
    first = t.filter(parsed[0].predicate(t))
    entry_w = ibis.window(group_by=first.person, order_by=[first.timestamp, first.message_id])
    ranked = first.mutate(tp_rn=ibis.row_number().over(entry_w))
    entry = ranked.filter(ranked.tp_rn == 0)
    value: ir.Value
    if breakdown is None:
        value = ibis.literal(None, "string")
    elif breakdown.startswith("properties."):
        key = check_json_key(breakdown.removeprefix("properties."), "breakdown")
        value = entry.properties[key].str
    elif breakdown in entry.columns and breakdown not in ("properties", "traits", "context"):
        value = entry[breakdown].cast("string")
    elif breakdown != "channel":
        raise InvalidInput(
            f"cannot break a funnel down by {breakdown!r}",
            hint="use 'channel', an event column such as 'utm_source', or 'properties.<key>'",
        )
    else:
        value = ibis.literal(None, "string")
    cur = entry.select(
        person=entry.person,
        t1=entry.timestamp,
        tp_msg1=entry.message_id,
        tp_start=entry.timestamp,
        breakdown=value,
    )
    if breakdown == "channel":
        if breakdown_table is None:
            raise InvalidInput("breakdown 'channel' needs sessions", hint="call funnel(), which builds them")
        b = breakdown_table.select(tp_m=breakdown_table.message_id, tp_ch=breakdown_table.channel)
        keep = [c for c in cur.columns if c != "breakdown"]
        joined = cur.left_join(b, cur.tp_msg1 == b.tp_m)
        cur = joined.select(*keep, breakdown=joined.tp_ch)
    for k, step in enumerate(parsed[1:], start=2):
        prev_t, prev_m = f"t{k - 1}", f"tp_msg{k - 1}"
        cand = t.filter(step.predicate(t)).select(tp_p=t.person, tp_ts=t.timestamp, tp_m=t.message_id)
        j = cur.filter(cur[prev_t].notnull()).join(cand, cur.person == cand.tp_p)
        j = j.filter(
            ((j.tp_ts > j[prev_t]) | ((j.tp_ts == j[prev_t]) & (j.tp_m != j[prev_m])))
            & (j.tp_ts <= j.tp_start + window)
        )
        earliest = j.group_by(tp_q=j.person).agg(tp_t=j.tp_ts.min())
        firsts = j.join(earliest, (j.person == earliest.tp_q) & (j.tp_ts == earliest.tp_t))
        nxt = firsts.group_by(tp_r=firsts.person).agg(tp_tk=firsts.tp_ts.min(), tp_mk=firsts.tp_m.min())
        cur = cur.left_join(nxt, cur.person == nxt.tp_r).drop("tp_r")
        cur = cur.rename({f"t{k}": "tp_tk", f"tp_msg{k}": "tp_mk"})
    keep = ["person", "breakdown"] + [f"t{k}" for k in range(1, len(parsed) + 1)]
    return cur.select(*keep)


def funnel_summary_expr(per_person: ir.Table, n_steps: int) -> ir.Table:
    """Per breakdown value: people reaching each step and median seconds from the previous step."""
    p = per_person
    aggs: dict[str, Any] = {}
    for k in range(1, n_steps + 1):
        aggs[f"n{k}"] = p[f"t{k}"].notnull().sum()
        if k > 1:
            aggs[f"med{k}"] = p[f"t{k}"].delta(p[f"t{k - 1}"], unit="millisecond").median()
    return p.group_by("breakdown").agg(**aggs)


def funnel(
    wh: Warehouse,
    steps: Sequence[str | Step],
    *,
    window_hours: float = 24.0 * 7,
    breakdown: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    identity: str = "auto",
    timeout_minutes: float = 30.0,
    rules: Sequence[ChannelRule] | None = None,
    events: ir.Table | None = None,
) -> dict[str, Any]:
    """Run a funnel in the warehouse and return the step table (overall and per breakdown value).

    ``start``/``end`` bound the entry events (naive UTC); later steps may fall after ``end``
    while inside the window. Conversion is people at step k / people at step 1 (``overall``) and
    / people at step k-1 (``from_previous``); the 95% Wilson interval of each is given.
    """
    from touchpoint.journeys.people import person_events
    from touchpoint.journeys.sessions import sessionize, sessions

    parsed = parse_steps(steps)
    t = events if events is not None else person_events(wh, identity=identity)
    if start is not None:
        t = t.filter(t.timestamp >= start)
    if end is not None:
        t = t.filter(t.timestamp < end + ibis.interval(milliseconds=round(window_hours * 3_600_000)))
    breakdown_table = None
    if breakdown == "channel":
        sz = sessionize(t, timeout_minutes=timeout_minutes)
        ss = sessions(sz, rules=rules).select("session_id", "channel")
        breakdown_table = sz.join(ss, "session_id").select("message_id", "channel")
    per_person = funnel_expr(t, parsed, window_hours=window_hours, breakdown=breakdown, breakdown_table=breakdown_table)
    if end is not None:
        per_person = per_person.filter(per_person.t1 < end)
    summary = wh.to_arrow(funnel_summary_expr(per_person, len(parsed))).to_pylist()
    groups = [_group(row, parsed) for row in summary]
    overall = _combine(summary, parsed) if breakdown else (groups[0] if groups else _empty(parsed))
    groups.sort(key=lambda g: (-g["steps"][0]["people"], str(g["breakdown"])))  # ties by name: the same every run
    return {
        "steps": overall["steps"],
        "breakdown": breakdown,
        "groups": groups if breakdown else [],
        "window_hours": window_hours,
        "method": "people entering at their first step-1 event; later steps in order within the window; "
        "intervals: 95% Wilson score",
    }


def _empty(parsed: list[Step]) -> dict[str, Any]:
    row = {f"n{k}": 0 for k in range(1, len(parsed) + 1)} | {"breakdown": None}
    return _group(row, parsed)


def _combine(rows: list[dict[str, Any]], parsed: list[Step]) -> dict[str, Any]:
    total = {f"n{k}": sum(int(r[f"n{k}"] or 0) for r in rows) for k in range(1, len(parsed) + 1)}
    group = _group(total | {"breakdown": None}, parsed)
    for s in group["steps"][1:]:
        s["median_seconds_from_previous"] = None  # medians do not combine; see the groups
    return group


def _group(row: dict[str, Any], parsed: list[Step]) -> dict[str, Any]:
    from touchpoint.journeys.stats import wilson

    n1 = int(row.get("n1") or 0)
    out = []
    prev = n1
    for k, step in enumerate(parsed, start=1):
        n = int(row.get(f"n{k}") or 0)
        med = row.get(f"med{k}")
        out.append(
            {
                "step": k,
                "label": step.label,
                "people": n,
                "overall": n / n1 if n1 else None,
                "overall_ci": wilson(n, n1),
                "from_previous": n / prev if prev else None,
                "from_previous_ci": wilson(n, prev),
                "median_seconds_from_previous": (float(med) / 1000.0 if med is not None else None),
            }
        )
        prev = n
    return {"breakdown": row.get("breakdown"), "steps": out}
