"""Manual audiences, changed by automations: ``add_to_audience`` and ``remove_from_audience`` steps.

A manual audience is one whose definition is ``{"manual": true}`` (docs/audiences.md): its members are
the open stays in ``audience_memberships`` that these steps write, so its history, exports, audience
triggers and references from other audiences work as for any audience, and a refresh leaves it alone.
Adding a member opens a stay (nothing when one is open), removing one closes it (nothing when none is),
in the transaction that records the flow's step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from touchpoint.warehouse import Warehouse, schema

MEMBERSHIPS = schema.AUDIENCE_MEMBERSHIPS.name


def problem(wh: Warehouse, name: str) -> str | None:
    """Why the steps cannot change audience ``name`` (None when they can)."""
    from touchpoint.audiences import store

    t = wh.table(schema.AUDIENCES.name)
    rows = wh.to_arrow(t.filter(t.name == name).select("definition")).to_pylist()
    if not rows:
        return f"no audience named {name!r}"
    if store.get(wh, name)["definition"] != {"manual": True}:
        return f"audience {name!r} is not manual (its definition decides its members)"
    return None


def apply(wh: Warehouse, tx: Any, changes: list[tuple[str, str, str]], now: datetime) -> int:
    """Open (add) or close (remove) stays, inside the caller's transaction ``tx``; returns rows written."""
    if not changes:
        return 0
    t = wh.table(MEMBERSHIPS)
    names = sorted({a for a, _, _ in changes})
    ids = sorted({p for _, p, _ in changes})
    open_rows = t.filter(t.audience.isin(names) & t.profile_id.isin(ids) & t.exited_at.isnull())
    current = {(r["audience"], r["profile_id"]): r["entered_at"] for r in wh.to_arrow(open_rows).to_pylist()}
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for audience, pid, change in changes:  # in order: add then remove in one pass closes what it opened
        key = (audience, pid)
        if change == "add" and key not in current:
            current[key] = now
            out[(audience, pid, now)] = {"audience": audience, "profile_id": pid, "entered_at": now, "exited_at": None}
        elif change == "remove" and key in current:
            entered = current.pop(key)
            out[(audience, pid, entered)] = {
                "audience": audience,
                "profile_id": pid,
                "entered_at": entered,
                "exited_at": now,
            }
    if out:
        rows = pa.Table.from_pylist(list(out.values()), schema=schema.AUDIENCE_MEMBERSHIPS.schema.to_pyarrow())
        tx.upsert(MEMBERSHIPS, rows, key=["audience", "profile_id", "entered_at"])
    return len(out)
