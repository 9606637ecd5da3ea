"""Reading memberships: who is (or was, ``at``) a member, size over time, and entries/exits as facts.

Each row of ``audience_memberships`` is one stay: a profile entered at ``entered_at`` and left at
``exited_at`` (NULL while it is a member). So the members at any past instant are the rows with
``entered_at <= at < exited_at``, and the entries and exits since an instant are the rows whose
``entered_at`` or ``exited_at`` falls after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from touchpoint.identity.store import now as store_now
from touchpoint.warehouse import Warehouse, schema

MEMBERSHIPS = schema.AUDIENCE_MEMBERSHIPS.name


def _stays(wh: Warehouse, name: str, at: datetime | None) -> ir.Table:
    t = wh.table(MEMBERSHIPS)
    t = t.filter(t.audience == name)
    if at is None:
        return t.filter(t.exited_at.isnull())
    lit = ibis.literal(at, "timestamp")
    return t.filter((t.entered_at <= lit) & (t.exited_at.isnull() | (t.exited_at > lit)))


def members_expr(wh: Warehouse, name: str, at: datetime | None = None) -> ir.Table:
    """Members (now, or at ``at``) with ``profile_id, user_id, email, entered_at``."""
    s = _stays(wh, name, at)
    p = wh.table("profiles").select(tp_pid="profile_id", user_id="user_id", email="email")
    j = s.left_join(p, s.profile_id == p.tp_pid)
    return j.select("profile_id", "user_id", "email", "entered_at").order_by(["entered_at", "profile_id"])


def members(
    wh: Warehouse, name: str, *, at: datetime | None = None, limit: int | None = 100, offset: int = 0
) -> dict[str, Any]:
    """``{"audience", "count", "members": [{"profile_id", "user_id", "email", "entered_at"}]}``;
    ``count`` is the whole audience, ``members`` one page of it."""
    expr = members_expr(wh, name, at)
    count = int(wh.to_arrow(_stays(wh, name, at).count()).as_py())
    page = expr.limit(limit, offset=offset) if limit is not None else expr
    rows = wh.to_arrow(page).to_pylist()
    return {"audience": name, "count": count, "members": rows}


def of_profile(wh: Warehouse, profile_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """A profile's stays in audiences, current ones first, then the latest: ``audience, entered_at,
    exited_at`` (``exited_at`` None while it is a member)."""
    rows: list[dict[str, Any]] = wh.prepared(_stays_of, profile_id, key=limit).to_pylist()
    return rows


def _stays_of(wh: Warehouse, limit: int, profile_id: str) -> ir.Table:
    t = wh.table(MEMBERSHIPS)
    t = t.filter(t.profile_id == profile_id)
    order = [t.exited_at.isnull().desc(), t.entered_at.desc(), t.audience]
    return t.select("audience", "entered_at", "exited_at").order_by(order).limit(limit)


def changes(
    wh: Warehouse, since: datetime, *, audience: str | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Entries and exits after ``since`` (up to ``until``), oldest first:
    ``{"audience", "profile_id", "change": "entered"|"exited", "at"}``. A feature that acts on
    audience changes (an automation, a sync) keeps the last ``at`` it handled and asks again."""
    t = wh.table(MEMBERSHIPS)
    if audience is not None:
        t = t.filter(t.audience == audience)
    lo = ibis.literal(since, "timestamp")
    parts = []
    for column, kind in (("entered_at", "entered"), ("exited_at", "exited")):
        when = t[column]
        cond = when > lo
        if until is not None:
            cond = cond & (when <= ibis.literal(until, "timestamp"))
        sub = t.filter(cond)
        parts.append(
            sub.select(
                "audience", "profile_id", change=ibis.literal(kind), at=sub[column].cast(dt.Timestamp(nullable=True))
            )
        )
    u = parts[0].union(parts[1], distinct=False).order_by(["at", "audience", "change", "profile_id"])
    return wh.to_arrow(u).to_pylist()


def history(wh: Warehouse, name: str, *, days: int = 30, end: datetime | None = None) -> list[dict[str, Any]]:
    """Per day (UTC) for the last ``days`` days up to ``end``: entries, exits and the size at the day's end."""
    t = wh.table(MEMBERSHIPS)
    t = t.filter(t.audience == name)
    last = (end or store_now()).date()
    first = last - timedelta(days=days - 1)
    per_day: dict[Any, dict[str, int]] = {}
    for column, key in (("entered_at", "entered"), ("exited_at", "exited")):
        sub = t.filter(t[column].notnull())
        g = sub.group_by(day=sub[column].date()).agg(n=sub.count())
        for r in wh.to_arrow(g).to_pylist():
            per_day.setdefault(r["day"], {"entered": 0, "exited": 0})[key] = int(r["n"])
    before = sum(v["entered"] - v["exited"] for k, v in per_day.items() if k < first)
    out = []
    size = before
    for i in range(days):
        day = first + timedelta(days=i)
        row = per_day.get(day, {"entered": 0, "exited": 0})
        size += row["entered"] - row["exited"]
        out.append({"date": day, "entered": row["entered"], "exited": row["exited"], "size": size})
    return out
