"""What the event log holds for a profile that the profiles job has not caught up with yet.

The profiles job resolves identities and refreshes profiles every few seconds, but under a heavy load one
run takes longer than that, and the collector has acknowledged events since. A read of a profile adds
them (read-your-writes): the events stored after the identity watermark (the newest ``received_at`` the
last identity update took) that carry one of the profile's identifiers in a column (``user_id``,
``anonymous_id``, ``email``). Their traits are laid over the stored ones by the build's own rule
(:func:`touchpoint.profiles.build.latest_traits`: the later message wins; at the same instant identify
``traits`` win over ``context.traits``), and the profile says so under ``pending``.

What waits for the job: computed columns (orders, revenue, sessions, scores), identifiers that only a
trait carries (a phone), and merges the new events cause; ``pending.watermark`` says from when. An
identifier no profile holds yet but a pending event carries gets a provisional profile (``profile_id``
null, ``pending.provisional`` true) with those events' traits and identifiers.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint import identity, profiles
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"plan": "free"},
...                          "timestamp": "2026-01-01T10:00:00Z"}])
>>> _ = identity.rebuild(wh); _ = profiles.build(wh)
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"plan": "pro"},
...                          "timestamp": "2026-01-02T10:00:00Z"},
...                         {"type": "identify", "userId": "u2", "traits": {"plan": "team"}}])
>>> p = profiles.get_profile(wh, "u1")
>>> p["traits"]["plan"], p["pending"]["events"]
('pro', 1)
>>> q = profiles.get_profile(wh, "u2")
>>> q["profile_id"], q["pending"]["provisional"], q["traits"]["plan"]
(None, True, 'team')
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.identity import store
from touchpoint.warehouse import Warehouse

#: The identifier types an event carries in a column of its own, and that column.
COLUMN_OF = {"user_id": "user_id", "anonymous_id": "anonymous_id", "email": "email"}
#: At most this many pending events are read for one profile (a burst of one visitor's clicks).
LIMIT = 10_000


def watermark(wh: Warehouse, state: dict[str, Any] | None = None) -> datetime | None:
    """The newest ``received_at`` the last identity update took (None before the first); ``state``: the
    identity state when the caller has read it already."""
    mark = (store.read_state(wh) if state is None else state).get("watermark")
    return datetime.fromisoformat(mark) if mark else None


def events(wh: Warehouse, identifiers: list[tuple[str, str]], mark: datetime | None) -> ir.Table | None:
    """The events stored after ``mark`` that carry one of ``identifiers`` (``(type, value)``) in a column
    (an Ibis expression), or None when none of the types has a column."""
    by_column: dict[str, list[str]] = {}
    for id_type, value in identifiers:
        if id_type in COLUMN_OF:
            by_column.setdefault(COLUMN_OF[id_type], []).append(value)
    if not by_column:
        return None
    t = wh.table("events")
    if mark is not None:
        t = t.filter(t.received_at > ibis.literal(mark, "timestamp"))
    hit = ibis.or_(*(t[column].isin(sorted(set(values))) for column, values in by_column.items()))
    return t.filter(hit)


def overlay(wh: Warehouse, profile: dict[str, Any], mark: datetime | None) -> dict[str, Any]:
    """``profile`` (as :func:`touchpoint.profiles.lookup.get_profile` builds it) with the pending events'
    traits laid over its own and a ``pending`` summary; unchanged apart from that summary when none."""
    ids = [(i["type"], i["value"]) for i in profile["identifiers"]]
    expr = events(wh, ids, mark)
    rows = _read(wh, expr)
    profile["pending"] = _summary(rows, mark, provisional=False)
    if rows:
        for trait, value, source in _latest(wh, expr):
            held = profile["trait_sources"].get(trait)
            if held is None or _key(source) > _key(held):
                profile["traits"][trait] = value
                profile["trait_sources"][trait] = source
    return profile


def provisional(wh: Warehouse, forms: list[str], id_type: str | None, mark: datetime | None) -> dict[str, Any] | None:
    """A profile made of the pending events carrying ``forms`` of one identifier (of ``id_type``, else of
    any type with a column), or None when no pending event carries it."""
    types = [id_type] if id_type is not None else list(COLUMN_OF)
    expr = events(wh, [(t, f) for t in types for f in forms], mark)
    rows = _read(wh, expr)
    if not rows:
        return None
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["timestamp"], r["message_id"])):
        for id_type_, column in COLUMN_OF.items():
            value = r[column]
            if value is None:
                continue
            node = seen.setdefault(
                (id_type_, value),
                {
                    "type": id_type_,
                    "value": value,
                    "first_seen": r["timestamp"],
                    "last_seen": r["timestamp"],
                    "events": 0,
                },
            )
            node["last_seen"] = r["timestamp"]
            node["events"] += 1
    matched = next(((t, v) for (t, v) in seen if v in forms and t in types), None)
    traits, sources = {}, {}
    for trait, value, source in _latest(wh, expr):
        traits[trait], sources[trait] = value, source
    return {
        "profile_id": None,
        "matched": {
            "type": matched[0] if matched else None,
            "value": matched[1] if matched else None,
            "redirected_from": None,
        },
        "computed": None,
        "traits": dict(sorted(traits.items())),
        "trait_sources": sources,
        "identifiers": list(seen.values()),
        "merge_history": [],
        "pending": _summary(rows, mark, provisional=True),
    }


def _read(wh: Warehouse, expr: ir.Table | None) -> list[dict[str, Any]]:
    if expr is None:
        return []
    cols = ["message_id", "timestamp", "received_at", *COLUMN_OF.values()]
    return wh.to_arrow(expr.select(*cols).limit(LIMIT)).to_pylist()


def _latest(wh: Warehouse, expr: ir.Table | None) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(trait, value, source)`` of each trait the pending events set, by the build's rule."""
    from touchpoint.profiles.build import latest_traits

    if expr is None:
        return []
    ep = expr.select("message_id", profile_id=ibis.literal("pending"))
    rows = wh.to_arrow(latest_traits(expr, ep)).to_pylist()
    out = []
    for r in rows:
        source = {"source": r["source"], "timestamp": r["timestamp"], "message_id": r["message_id"]}
        out.append((r["trait"], json.loads(r["value"]), source))
    return out


def _key(source: dict[str, Any]) -> tuple[Any, ...]:
    """The build's order of trait values (:func:`~touchpoint.profiles.build.latest_traits`)."""
    via_traits = str(source.get("source") or "").endswith(":traits")
    return (source["timestamp"], via_traits, source["message_id"] or "")


def _summary(rows: list[dict[str, Any]], mark: datetime | None, *, provisional: bool) -> dict[str, Any]:
    return {
        "events": len(rows),
        "watermark": mark,
        "last_received_at": max((r["received_at"] for r in rows), default=None),
        "provisional": provisional,
    }
