"""A profile's timeline: its events across every identifier it holds, newest first, paged.

The events are the ones ``event_identities`` gives one of the profile's identity nodes (each resolved
event's most trusted identifier): joins in the warehouse, milliseconds whatever the log's size. Events
stored since the last identity update that carry one of its identifiers show too
(:mod:`touchpoint.profiles.pending`).

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint import identity
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "anonymousId": "a1", "timestamp": "2026-01-01T10:00:00Z"},
...                         {"type": "identify", "anonymousId": "a1", "userId": "u1",
...                          "timestamp": "2026-01-01T10:05:00Z"}])
>>> _ = identity.rebuild(wh)
>>> page = timeline(wh, "u1")
>>> page["total"], [e["type"] for e in page["events"]]
(2, ['identify', 'page'])
"""

from __future__ import annotations

import json
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint import identity
from touchpoint.errors import InvalidInput
from touchpoint.identity import tables
from touchpoint.identity.extract import json_ids
from touchpoint.identity.lookup import find_profile
from touchpoint.profiles import pending
from touchpoint.profiles.pending import COLUMN_OF
from touchpoint.warehouse import Warehouse

COLUMNS = (
    "message_id",
    "timestamp",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "email",
    "source",
    "properties",
    "traits",
    "context",
    "revenue",
    "currency",
    "order_id",
    "url",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


Shape = tuple[pending.Query | None, bool]  # the pending events' read (or none); one event type or all


def _events_of(wh: Warehouse, profile_id: str, state: dict[str, Any]) -> tuple[Shape, tuple[str, ...]] | None:
    """How to read the events whose most trusted identifier belongs to ``profile_id`` (a shape and
    values for :func:`_indexed`), or None for identity tables built before ``event_identities``; ``state``:
    the identity state, read before the events."""
    if int(state.get("version") or 0) < identity.store.STATE_VERSION:
        return None
    mark = pending.watermark(wh, state)  # before the resolved events: an event is in one part or both
    ids = [(r["id_type"], r["id_value"]) for r in wh.prepared(_identifiers, profile_id).to_pylist()]
    new = pending.query(ids, mark)
    return (new[0] if new else None, False), (profile_id, *(new[1] if new else ()))


def _identifiers(wh: Warehouse, profile_id: str) -> ir.Table:
    nodes = wh.table(tables.NODES)
    return nodes.filter(nodes.profile_id == profile_id).select("id_type", "id_value")


def _indexed(wh: Warehouse, shape: Shape, profile_id: str, *values: str) -> ir.Table:
    """The events ``event_identities`` gives one of the profile's nodes, and those stored since the last
    identity update that carry one of its identifiers in a column (:mod:`touchpoint.profiles.pending`);
    with an event type (the last value) only those of that type."""
    new_shape, typed = shape
    if typed:
        values, event_type = values[:-1], values[-1]
    events = wh.table("events")
    nodes = wh.table(tables.NODES)
    mine = wh.table(tables.EVENTS).semi_join(nodes.filter(nodes.profile_id == profile_id), "node_id")
    ev = events.semi_join(mine, "message_id")
    if new_shape is not None:
        ev = ev.union(pending.events(wh, new_shape, *values).anti_join(mine, "message_id"), distinct=False)
    return ev.filter(ev.type == event_type) if typed else ev


def _count(wh: Warehouse, shape: Shape, *values: str) -> ir.Scalar:
    return _indexed(wh, shape, *values).count()


def _page(wh: Warehouse, key: tuple[Shape, int, int], *values: str) -> ir.Table:
    shape, limit, offset = key
    ev = _indexed(wh, shape, *values)
    return ev.order_by([ev.timestamp.desc(), ev.message_id.desc()]).select(*COLUMNS).limit(limit, offset=offset)


def _events_by_identifiers(wh: Warehouse, profile_id: str) -> Any:
    """The profile's events for identity tables built before ``event_identities``: the events carrying
    one of the profile's identifiers, each resolved again."""
    nodes = wh.table(tables.NODES)
    mine = nodes.filter(nodes.profile_id == profile_id).select("id_type", "id_value").to_pyarrow().to_pylist()
    by_type: dict[str, list[str]] = {}
    for r in mine:
        by_type.setdefault(r["id_type"], []).append(r["id_value"])
    events = wh.table("events")
    conds = [events[COLUMN_OF[k]].isin(v) for k, v in by_type.items() if k in COLUMN_OF]
    if "anonymous_id" in by_type:
        conds.append((events.type == "alias") & events.previous_id.isin(by_type["anonymous_id"]))
    others = [k for k in by_type if k not in COLUMN_OF]
    if others:
        rules = identity._rules(wh)
        extra = json_ids(events, rules)
        hits = extra.filter(ibis.or_(*[(extra.id_type == k) & extra.id_value.isin(by_type[k]) for k in others])).select(
            "message_id"
        )
        conds.append(events.message_id.isin(hits.message_id))
    if not conds:
        return events.filter(ibis.literal(False))
    candidates = events.filter(ibis.or_(*conds))
    ep = identity.event_profiles(wh, candidates)
    return candidates.semi_join(ep.filter(ep.profile_id == profile_id), "message_id")


def timeline(
    wh: Warehouse, identifier: str, *, limit: int = 50, offset: int = 0, event_type: str | None = None
) -> dict[str, Any]:
    """``{"profile_id", "total", "limit", "offset", "events": [...]}``, newest first.

    ``identifier`` is any identifier of the profile or its id; ``event_type`` keeps one type
    (``track``, ``page``, ``identify``...). JSON columns come back parsed.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit {limit} is outside 1..1000", hint="page with --offset instead")
    if offset < 0:
        raise InvalidInput(f"offset {offset} is negative", hint="use 0 or more")
    state = identity.store.read_state(wh)
    profile_id = find_profile(wh, identifier, state=state)["profile_id"]
    read = _events_of(wh, profile_id, state)
    if read is not None:
        (new, _), values = read
        shape: Shape = (new, bool(event_type))
        values = (*values, event_type) if event_type else values
        total = int(wh.prepared(_count, *values, key=shape).as_py())
        rows = wh.prepared(_page, *values, key=(shape, limit, offset)).to_pylist()
    else:
        ev = _events_by_identifiers(wh, profile_id)
        if event_type:
            ev = ev.filter(ev.type == event_type)
        total = int(ev.count().to_pyarrow().as_py())
        page = ev.order_by([ev.timestamp.desc(), ev.message_id.desc()]).select(*COLUMNS).limit(limit, offset=offset)
        rows = wh.to_arrow(page).to_pylist()
    for row in rows:
        for key in ("properties", "traits", "context"):
            if row[key] is not None:
                row[key] = json.loads(row[key])
    return {"profile_id": profile_id, "total": total, "limit": limit, "offset": offset, "events": rows}
