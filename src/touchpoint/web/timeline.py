"""A customer's timeline for the profile page, answered in milliseconds.

Since identities keep ``event_identities`` (each resolved event's identity node), the library's
:func:`touchpoint.profiles.timeline.timeline` answers a page by joins on it and this module only relays
to it; :func:`owners` then builds no index. For identity tables built before it (until the next
identity update rebuilds them), the cached owner index below is used.

The library's :func:`touchpoint.profiles.timeline.timeline` decides, for every candidate event, which
profile it belongs to (the profile of its most trusted identifier, :func:`touchpoint.identity.event_profiles`)
at request time; that query takes seconds. The dashboard runs the same library call once over all events
in the background (:func:`owners`, a section of the snapshot) and keeps ``message_id -> profile_id`` as an
Arrow table sorted by profile. A page then reads the profile's own events by message id. Events received
after the index was built are added when they carry one of the profile's identifiers (the index catches
up at its next refresh); with no index yet, the page falls back to the library's timeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.warehouse import Warehouse

MAX_IDS = 20_000  # beyond this many events the library's own query is used


def owners(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """``message_id -> profile_id`` for every resolved event, sorted by profile, and the time it covers."""
    from touchpoint import identity
    from touchpoint.identity import people

    events = wh.table("events")
    as_of = wh.execute(events.received_at.max())
    if not people.resolved(wh):
        return {"index": None, "as_of": None, "why": "identities were never resolved"}
    if identity.store.events_indexed(wh):
        return {"index": None, "as_of": None, "why": "event_identities answers each page", "rows": 0, "tables": {}}
    mapping = wh.to_arrow(identity.event_profiles(wh, events.filter(events.received_at <= as_of)))
    index = mapping.sort_by("profile_id")
    return {"index": index, "as_of": as_of, "rows": index.num_rows, "tables": {}}


def _mine(index: pa.Table, profile_id: str) -> list[str]:
    col = index.column("profile_id")
    lo = int(pc.index(col, profile_id).as_py())  # sorted: the first match, then contiguous rows
    if lo < 0:
        return []
    hits = index.slice(lo, MAX_IDS + 1)
    keep = pc.equal(hits.column("profile_id"), profile_id)
    return [str(m) for m in hits.filter(keep).column("message_id").to_pylist()]


def timeline(wh: Warehouse, profile_id: str, cached: dict[str, Any] | None, *, limit: int = 50) -> dict[str, Any]:
    """The profile's latest ``limit`` events, newest first, as the library's timeline returns them."""
    from touchpoint.identity import store, tables
    from touchpoint.profiles.timeline import COLUMN_OF, COLUMNS
    from touchpoint.profiles.timeline import timeline as library_timeline

    if store.resolved(wh) and store.events_indexed(wh):
        return library_timeline(wh, profile_id, limit=limit)
    index = (cached or {}).get("index")
    ids = _mine(index, profile_id) if index is not None else None
    if ids is None or len(ids) > MAX_IDS:
        return library_timeline(wh, profile_id, limit=limit)
    events = wh.table("events")
    mine = events.message_id.isin(ids) if ids else ibis.literal(False)
    nodes = wh.table(tables.NODES)
    known = nodes.filter(nodes.profile_id == profile_id)
    recent = events.received_at > ibis.literal(cached["as_of"]) if cached and cached.get("as_of") else None
    if recent is not None:  # arrived since the index was built: theirs if it carries their identifier
        carries = ibis.or_(
            *[
                events[column].isin(known.filter(known.id_type == id_type).id_value)
                for id_type, column in COLUMN_OF.items()
            ]
        )
        mine = mine | (recent & carries)
    ev = events.filter(mine)
    total = int(wh.to_arrow(ev.count()).as_py())
    page = ev.order_by([ev.timestamp.desc(), ev.message_id.desc()]).select(*COLUMNS).limit(limit)
    rows = wh.to_arrow(page).to_pylist()
    for row in rows:
        for key in ("properties", "traits", "context"):
            if row[key] is not None:
                row[key] = json.loads(row[key])
    return {"profile_id": profile_id, "total": total, "limit": limit, "offset": 0, "events": rows}
