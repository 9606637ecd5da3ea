"""Keeping memberships current: a full evaluation, or an incremental one after new events.

A refresh evaluates the definition at ``now`` and records the difference with the open memberships:
each profile that joined gets a row ``entered_at = now``; each one that left has its row closed,
``exited_at = now``. Those rows are the facts other features trigger on
(:func:`touchpoint.audiences.membership.changes`).

**Incremental.** Between two refreshes at ``t0`` and ``t1`` a profile's membership can change only if

1. it has a new event (``received_at`` after the last refresh's watermark) of a kind the definition
   names (or, when events are stitched without resolved identities, any event carrying both ids);
2. one of its events of those kinds crosses a window boundary: a timestamp in
   ``[t0 - N, t1 - N]`` for a window or date offset of N days (N = 0: events that became visible);
3. one of its date traits crosses a boundary the same way;
4. (a definition with a consent condition) it has consent recorded since the last refresh, or a
   stated consent of that purpose starts or ends between the two;
5. it was rebuilt by the profiles job since the last refresh (``built_at`` after the last refresh's
   ``max(built_at)``: new events, identity changes, traits), a merge or split since then names it, or
   it is an open member that is no longer a profile (:func:`rebuilt`).

Predictions change only when they are rerun; a new prediction run (``run_at``), a changed
definition (or of an audience it names), a clock that went back, or a new day for a definition on
forward-looking dates (``next_purchase_at``, replenishment) makes the next refresh a full one.
Incremental and full refreshes give the same memberships (a property test proves it).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.audiences import definition as d
from touchpoint.audiences import store
from touchpoint.audiences.compile import (
    IDS,
    Instant,
    _Plan,
    ago,
    carried,
    compile_members,
    fallback_owner,
    lit,
    of_kinds,
    owners,
    plan_of,
    unresolved,
)
from touchpoint.warehouse import Warehouse, schema

MEMBERSHIPS = schema.AUDIENCE_MEMBERSHIPS.name
STATE = schema.AUDIENCE_STATE.name


def _scalar(wh: Warehouse, expr: ir.Scalar) -> Any:
    return wh.to_arrow(expr).as_py()


def sources(wh: Warehouse) -> dict[str, Any]:
    """What a refresh depends on, in one query: when profiles and predictions were last rebuilt, and
    the latest event received."""
    p = wh.table("profiles")
    pr = wh.table("predictions")
    ps = wh.table("propensity_scores")
    r = wh.table("replenishment")
    e = wh.table("events")
    parts = [
        p.agg(built=p.built_at.max()),
        pr.agg(clv_run=pr.run_at.max()),
        ps.agg(propensity_run=ps.run_at.max()),
        r.agg(replenish_rows=r.count(), replenish_due=r.due_at.max()),
        e.agg(watermark=e.received_at.max()),
    ]
    row = parts[0]
    for part in parts[1:]:
        row = row.cross_join(part)
    got = wh.to_arrow(row).to_pylist()[0]
    stamp = f"{got['clv_run']}|{got['propensity_run']}|{got['replenish_rows']}|{got['replenish_due']}"
    return {"profiles_built_at": got["built"], "predictions": stamp, "watermark": got["watermark"]}


def _state(wh: Warehouse, name: str) -> dict[str, Any] | None:
    t = wh.table(STATE)
    rows = wh.to_arrow(t.filter(t.audience == name)).to_pylist()
    return rows[0] if rows else None


def candidates(
    wh: Warehouse, plan: _Plan, state: dict[str, Any], now: Instant, ident: dict[str, Any] | None = None
) -> ir.Table | None:
    """The profiles whose membership may have changed since ``state`` (see the module docstring), as
    an expression with one column ``profile_id``; None when nothing can have changed.

    The instants (``now``, the state's ``evaluated_at`` and ``events_watermark``) may be Ibis values
    (bound parameters), and ``ident`` the identity state :func:`carried` reads (its watermark too)."""
    from touchpoint.identity.people import rule_for

    t0: Instant = state["evaluated_at"]
    parts: list[ir.Table] = []
    e = wh.table("events")
    ident = (carried(wh) if ident is None else ident) if plan.event_names else None
    if ident is not None:
        parts.extend(_touched(wh, plan, state, now, ident))
    elif plan.event_names:
        kinds = of_kinds(e, plan.event_names)
        watermark = state["events_watermark"]
        # new events, and events crossing a window's edge: one simple range each (the scan skips whole
        # row groups by their min/max), then all met with their profiles in one pass
        ranges = [ibis.literal(True) if watermark is None else e.received_at > lit(watermark)]
        for n in sorted(plan.offsets):
            for offset in sorted({n, -n}):
                lo, hi = ago(t0, offset), ago(now, offset)
                ranges.append(e.timestamp.between(lit(lo), lit(hi)))
        touched = ibis.union(*[e.filter(kinds & r).select(*IDS) for r in ranges], distinct=False)
        parts.append(owners(wh, touched))
        if watermark is not None and rule_for(wh) != "profiles":  # a new link re-stitches older anonymous events
            both = e.filter((e.received_at > lit(watermark)) & e.user_id.notnull() & e.anonymous_id.notnull())
            parts.append(owners(wh, both.select(*IDS)))
            parts.append(both.select(profile_id=both.anonymous_id))
    for trait, is_column, n in sorted(plan.trait_dates):
        if is_column:
            src = wh.table("profiles")
            value, ids = src[trait], src
        else:
            ids = wh.table("profile_traits")
            ids = ids.filter(ids.trait == trait)
            value = ids.value.cast("json").str.try_cast("timestamp")
        spans = [(value >= lit(ago(t0, o))) & (value <= lit(ago(now, o))) for o in sorted({n, -n, 0})]
        cond = spans[0]
        for s in spans[1:]:
            cond = cond | s
        parts.append(ids.filter(cond).select("profile_id"))
    if plan.consents:  # consent recorded since, or a stated consent starting or ending in between
        from touchpoint.privacy.consent import history

        h = history(wh)
        lo, hi = ibis.literal(t0), ibis.literal(now)
        h = h.filter(
            h.purpose.isin(sorted(plan.consents))
            & (
                (h.recorded_at > lo)
                | h.valid_from.between(lo, hi)
                | (h.valid_until.notnull() & h.valid_until.between(lo, hi))
            )
        )
        parts.append(h.select("profile_id"))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out.filter(out.profile_id.notnull()).distinct()


def _touched(wh: Warehouse, plan: _Plan, state: dict[str, Any], now: Instant, ident: dict[str, Any]) -> list[ir.Table]:
    """Candidates 1 and 2 of the module docstring when ``event_identities`` carries the events
    (``ident``: the identity state): the resolved events come from there with their node, each range one
    simple filter the scan prunes by row-group min/max (new rows are at its end; a rebuild writes it in
    timestamp order), and the events not resolved yet from the log's tail, by their user or anonymous id."""
    from touchpoint.identity import tables as T

    t0: Instant = state["evaluated_at"]
    watermark = state["events_watermark"]

    def ranges(t: ir.Table) -> list[ir.BooleanValue]:
        out = [ibis.literal(True) if watermark is None else t.received_at > lit(watermark)]
        for n in sorted(plan.offsets):
            for offset in sorted({n, -n}):
                lo, hi = ago(t0, offset), ago(now, offset)
                out.append(t.timestamp.between(lit(lo), lit(hi)))
        return out

    ix = wh.table(T.EVENTS)
    kinds = of_kinds(ix, plan.event_names)
    nodes = wh.table(T.NODES)
    hit = ibis.union(*[ix.filter(kinds & r).select("node_id") for r in ranges(ix)], distinct=True)
    resolved = hit.join(nodes, hit.node_id == nodes.node_id).select(nodes.profile_id)
    tails = []
    for i in range(len(ranges(ix))):  # the log's tail, one range at a time

        def where(t: ir.Table, i: int = i) -> ir.BooleanValue:
            return of_kinds(t, plan.event_names) & ranges(t)[i]

        tails.append(unresolved(wh, ident, where).select("user_id", "anonymous_id"))
    owned = fallback_owner(wh, ibis.union(*tails, distinct=True).view())  # met with their profiles once
    return [resolved, owned.select("profile_id")]


def _rebuilt_ids(wh: Warehouse, name: str, since: str) -> ir.Table:
    p = wh.table("profiles")
    at = ibis.literal(since, "string").cast("timestamp")
    out = p.filter(p.built_at > at).select("profile_id")
    m = wh.table(MEMBERSHIPS)
    m = m.filter((m.audience == name) & m.exited_at.isnull())
    gone = m.anti_join(p, m.profile_id == p.profile_id).select("profile_id")
    return out.union(gone, distinct=True)


def _merged_since(wh: Warehouse, since: str) -> ir.Table:
    from touchpoint.identity import tables as T

    log = wh.table(T.MERGE_LOG)
    at = ibis.literal(since, "string").cast("timestamp")
    return log.filter(log.logged_at >= at).select("profile_id", "merged_profile_ids")


def rebuilt(wh: Warehouse, name: str, since: datetime) -> pa.Array:
    """The profiles whose membership of audience ``name`` a profiles run since ``since`` (the last
    refresh's ``max(profiles.built_at)``) can have changed: those rebuilt (``built_at`` after it: new
    events, identity changes, traits), those a merge or split logged since then names, and open
    members that are no longer profiles (their stays close). Prepared reads: compiled once."""
    text = since.isoformat(sep=" ", timespec="microseconds")
    ids = set(wh.prepared(_rebuilt_ids, name, text).column("profile_id").to_pylist())
    for row in wh.prepared(_merged_since, text).to_pylist():
        ids.update(x for x in [row["profile_id"], *(row["merged_profile_ids"] or "").split(",")] if x)
    ids.discard(None)
    return pa.array(sorted(ids), pa.string())


def _write(
    wh: Warehouse, name: str, now: datetime, members: pa.Array, scope: pa.Array | None, state_row: dict[str, Any]
) -> dict[str, int]:
    """Record entries and exits against the open memberships (within ``scope`` when given)."""
    t = wh.table(MEMBERSHIPS)
    with wh.write() as tx:
        open_rows = t.filter((t.audience == name) & t.exited_at.isnull()).select("profile_id", "entered_at")
        current = wh.to_arrow(open_rows)
        if scope is not None:
            current = current.filter(pc.is_in(current.column("profile_id"), value_set=scope))
        ids = current.column("profile_id")
        entered = members.filter(pc.invert(pc.is_in(members, value_set=ids))) if len(ids) else members
        exited = current.filter(pc.invert(pc.is_in(ids, value_set=members))) if len(members) else current
        n = len(entered)
        ts = pa.scalar(now, pa.timestamp("us"))
        if n:  # upsert: leaving and re-entering at one instant (two refreshes at one `now`) reopens that stay
            tx.upsert(
                MEMBERSHIPS,
                pa.table(
                    {
                        "audience": pa.array([name] * n, pa.string()),
                        "profile_id": entered.cast(pa.string()),
                        "entered_at": pa.array([now] * n, pa.timestamp("us")),
                        "exited_at": pa.nulls(n, pa.timestamp("us")),
                    }
                ),
                key=["audience", "profile_id", "entered_at"],
            )
        if exited.num_rows:
            m = exited.num_rows
            tx.upsert(
                MEMBERSHIPS,
                pa.table(
                    {
                        "audience": pa.array([name] * m, pa.string()),
                        "profile_id": exited.column("profile_id"),
                        "entered_at": exited.column("entered_at").cast(pa.timestamp("us")),
                        "exited_at": pa.array([ts.as_py()] * m, pa.timestamp("us")),
                    }
                ),
                key=["audience", "profile_id", "entered_at"],
            )
        size = len(members) if scope is None else int(state_row["previous"]) + n - exited.num_rows
        state = {k: v for k, v in state_row.items() if k != "previous"}
        state["members"] = size
        tx.upsert(
            STATE,
            pa.Table.from_pylist([state], schema=schema.AUDIENCE_STATE.schema.to_pyarrow()),
            key=["audience"],
        )
    return {"entered": n, "exited": exited.num_rows, "members": size}


def members_count(wh: Warehouse, name: str) -> ir.Scalar:
    t = wh.table(MEMBERSHIPS)
    return t.filter((t.audience == name) & t.exited_at.isnull()).count()


def refresh_one(wh: Warehouse, name: str, *, now: datetime | None = None, full: bool = False) -> dict[str, Any]:
    """Bring one audience's memberships up to ``now`` (default: the clock); incremental when it can.

    Returns ``{"audience", "mode", "members", "entered", "exited", "candidates", "seconds", "evaluated_at"}``.
    """
    started = time.perf_counter()
    at = now or store.now()
    with wh.exclusive(f"audience:{name}"):
        saved = store.get(wh, name)
        node = d.parse(saved["definition"])
        if isinstance(node, d.Manual):  # its members change only when added or removed (automations.manual)
            size = int(wh.to_arrow(members_count(wh, name)).as_py())
            return {"audience": name, "mode": "manual", "members": size, "entered": 0, "exited": 0,
                    "candidates": None, "seconds": round(time.perf_counter() - started, 3),
                    "evaluated_at": at.isoformat()}  # fmt: skip
        seen = sources(wh)
        fp = store.fingerprint(wh, name, node)
        state = _state(wh, name)
        plan = plan_of(wh, node, now=at, lookup=store.lookup(wh), name=name)
        stamp = fp + "|" + seen["predictions"]
        incremental = (
            not full
            and state is not None
            and state["fingerprint"] == stamp
            and (state["profiles_built_at"] is not None or seen["profiles_built_at"] is None)
            and at >= state["evaluated_at"]
            and not (plan.forward_dates and state["evaluated_at"].date() != at.date())
        )
        scope: pa.Array | None = None
        n_candidates = None
        if incremental and state is not None:
            cand = candidates(wh, plan, state, at)
            scope = (
                pa.array([], pa.string()) if cand is None else wh.to_arrow(cand).column("profile_id").combine_chunks()
            )
            if state["profiles_built_at"] is not None:  # profiles rebuilt, merged or gone since: re-check them
                more = rebuilt(wh, name, state["profiles_built_at"])
                scope = pa.array(sorted(set(scope.to_pylist()) | set(more.to_pylist())), pa.string())
            n_candidates = len(scope)
            if n_candidates:
                restrict = ibis.memtable(pa.table({"profile_id": scope}))
                expr, _ = compile_members(wh, node, now=at, lookup=store.lookup(wh), restrict=restrict, name=name)
                members = wh.to_arrow(expr).column("profile_id").combine_chunks()
            else:
                members = pa.array([], pa.string())
        else:
            expr, _ = compile_members(wh, node, now=at, lookup=store.lookup(wh), name=name)
            members = wh.to_arrow(expr).column("profile_id").combine_chunks()
        mode = "incremental" if incremental else "full"
        row = {
            "audience": name,
            "evaluated_at": at,
            "events_watermark": seen["watermark"],
            "profiles_built_at": seen["profiles_built_at"],
            "fingerprint": stamp,
            "members": 0,
            "previous": (state or {}).get("members") or 0,
            "mode": mode,
            "candidates": n_candidates,
            "seconds": round(time.perf_counter() - started, 3),
        }
        changed = _write(wh, name, at, members, scope, row)
        size = changed["members"]
        seconds = round(time.perf_counter() - started, 3)
    return {
        "audience": name,
        "mode": row["mode"],
        "members": size,
        "entered": changed["entered"],
        "exited": changed["exited"],
        "candidates": n_candidates,
        "seconds": seconds,
        "evaluated_at": at.isoformat(),
    }
