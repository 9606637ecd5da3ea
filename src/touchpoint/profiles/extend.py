"""Extending profiles with new events, without reading their old events again.

A profile whose identifiers did not change and whose new events all come after its last event
(``timestamp > last_seen``), none an order, changes only by what those events add: more events, a
later ``last_seen``, the sessions they start (the first one measured from the old ``last_seen``),
the channels of those sessions, and traits they set (later than every stored one, so they win).
Its row is the stored row plus that, exactly what :func:`~touchpoint.profiles.build.build` would
compute from all its events. Any other profile (a late event, an order, whose deduplication by order
id needs the old orders) is recomputed from its events as before.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint import identity
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.identity import store
from touchpoint.identity.components import Scratch
from touchpoint.warehouse import Warehouse, schema

PROFILES = schema.PROFILES.name
TRAITS = schema.PROFILE_TRAITS.name


@dataclass
class Extension:
    """``rows``: the extended profiles' new rows (base columns); ``profiles``: their ids; ``fallback``:
    touched profiles that must be recomputed from their events instead."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)


def _additions(events: ir.Table, new_events: ir.Table, stored: ir.Table, gap_seconds: int) -> ir.Table:
    """Per profile of ``new_events``: how many new events, their first and last instant, the stored
    ``last_seen`` (``o_last``), orders among them, the sessions they start and those sessions' channels."""
    from touchpoint.profiles.build import _channel

    last = stored.select("profile_id", o_last=stored.last_seen)
    ev = events.join(new_events, "message_id").left_join(last, "profile_id")
    w = ibis.window(group_by=ev.profile_id, order_by=[ev.timestamp, ev.message_id])
    prev = ibis.coalesce(ev.timestamp.lag().over(w), ev.o_last)
    gap = ibis.literal(gap_seconds, "int64")
    start = prev.isnull() | ((ev.timestamp.epoch_seconds() - prev.epoch_seconds()) >= gap)
    marked = ev.mutate(
        start=start,
        is_order=ibis.coalesce((ev.type == "track") & (ev.event == ORDER_COMPLETED), False),
    )
    agg = marked.group_by("profile_id").agg(
        n=marked.count(),
        lo=marked.timestamp.min(),
        hi=marked.timestamp.max(),
        o_last=marked.o_last.max(),
        # counts, not sums of 0/1: PostgreSQL sums a bigint into a numeric, which is read back as a float
        orders=marked.count(where=marked.is_order),
        starts=marked.count(where=marked.start),
    )
    starts = marked.filter(marked.start)
    starts = starts.mutate(channel=_channel(starts))
    per = starts.group_by("profile_id").agg(channels=starts.channel.collect(distinct=True))
    return agg.left_join(per, "profile_id").select(agg, per.channels)


def _people(nodes: ir.Table, keep: ir.Table) -> ir.Table:
    """``profile_id, identifiers, user_id, email`` of the profiles ``keep`` (as :func:`build._rows` has them)."""
    n = nodes.semi_join(keep, "profile_id")
    users = n.filter(n.id_type == "user_id")
    users = users.group_by("profile_id").agg(user_id=users.id_value.argmin(users.first_seen))
    emails = n.filter(n.id_type == "email")
    emails = emails.group_by("profile_id").agg(email=emails.id_value.argmax(emails.last_seen))
    ident = n.group_by("profile_id").agg(identifiers=n.count())
    who = ident.left_join(users, "profile_id").select(ident.profile_id, ident.identifiers, users.user_id)
    return who.left_join(emails, "profile_id").select(who, emails.email)


def extend(
    wh: Warehouse, names: list[str], new_events: ir.Table, gap_seconds: int, scratch: Scratch | None = None
) -> Extension:
    """The new rows of the touched profiles (``names``) that their new events (among ``new_events``:
    ``message_id, profile_id``, staged) only extend; the others are listed in ``fallback`` (among them a
    profile none of whose new events it holds: one of its identifiers was seen on another's event).
    With ``scratch``, its queries are compiled once per process (:meth:`Scratch.save_query`)."""
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = stack.enter_context(Scratch(wh))
        return _extend(wh, scratch, names, new_events, gap_seconds)


def _extend(wh: Warehouse, scratch: Scratch, names: list[str], new_events: ir.Table, gap_seconds: int) -> Extension:
    from touchpoint.profiles.build import BASE_COLUMNS

    events = wh.table("events")
    stored = wh.table(PROFILES)
    agg = scratch.save_query(
        "extend_additions",
        (gap_seconds,),
        lambda e, n, s: _additions(e, n, s, gap_seconds),
        e=events,
        n=new_events,
        s=stored,
    )
    wanted = set(names)
    got = [r for r in wh.to_arrow(agg).to_pylist() if r["profile_id"] in wanted]
    out = Extension(fallback=sorted(set(names) - {r["profile_id"] for r in got}))
    ok: dict[str, dict[str, Any]] = {}
    for r in got:
        if r["o_last"] is not None and r["lo"] > r["o_last"] and not r["orders"]:
            ok[r["profile_id"]] = r
        else:
            out.fallback.append(r["profile_id"])
    if not ok:
        return out
    ids = ibis.memtable(pa.table({"profile_id": pa.array(sorted(ok), pa.string())}))
    nodes = wh.table(identity.tables.NODES)
    with wh.staged(ids) as keep:
        assert isinstance(keep, ir.Table)
        old = scratch.save_query(
            "extend_old_rows", (), lambda s, k: s.semi_join(k, "profile_id").select(*BASE_COLUMNS), s=stored, k=keep
        )
        old_rows = wh.to_arrow(old).to_pylist()
        who = scratch.save_query("extend_people", (), _people, nodes=nodes, keep=keep)
        people = {r["profile_id"]: r for r in wh.to_arrow(who).to_pylist()}
    for row in old_rows:
        add = ok[row["profile_id"]]
        channels = set(row["channels"].split(",")) if row["channels"] else set()
        channels.update(add["channels"] or [])
        person = people.get(row["profile_id"], {})
        row.update(
            identifiers=person.get("identifiers", row["identifiers"]),
            user_id=person.get("user_id"),
            email=person.get("email"),
            events=(row["events"] or 0) + add["n"],
            first_seen=row["first_seen"] or add["lo"],
            last_seen=add["hi"],
            sessions=(row["sessions"] or 0) + add["starts"],
            channels=",".join(sorted(channels)) if channels else None,
            channels_touched=len(channels),
        )
        out.rows.append(row)
        out.profiles.append(row["profile_id"])
    missing = set(ok) - set(out.profiles)
    out.fallback.extend(sorted(missing))
    return out


def new_traits(wh: Warehouse, extended: ir.Table, new_events: ir.Table) -> ir.Table:
    """The trait rows of the ``extended`` profiles: the stored ones, overwritten by what their new events
    (among ``new_events``) set: those are later than every stored value, so they win."""
    from touchpoint.profiles.build import latest_traits

    events = wh.table("events")
    ep = new_events.semi_join(extended, "profile_id")
    fresh = latest_traits(events.semi_join(ep, "message_id"), ep)
    old = wh.table(TRAITS).semi_join(extended, "profile_id")
    kept = old.anti_join(fresh, ["profile_id", "trait"])
    shape = schema.PROFILE_TRAITS.schema
    return ibis.union(store.typed(kept, shape), store.typed(fresh, shape), distinct=False)
