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


Query = tuple[tuple[tuple[str, int], ...], bool]  # (column, how many values) per column; a watermark or not


def query(identifiers: list[tuple[str, str]], mark: datetime | None) -> tuple[Query, tuple[str, ...]] | None:
    """The shape and values of the pending events' read (:func:`events`) for ``identifiers``
    (``(type, value)``) after ``mark``, or None when none of the types has a column."""
    by_column: dict[str, set[str]] = {}
    for id_type, value in identifiers:
        if id_type in COLUMN_OF:
            by_column.setdefault(COLUMN_OF[id_type], set()).add(value)
    if not by_column:
        return None
    columns = sorted(by_column)
    values = [v for c in columns for v in sorted(by_column[c])]
    if mark is not None:
        values.append(mark.isoformat())
    return (tuple((c, len(by_column[c])) for c in columns), mark is not None), tuple(values)


def events(wh: Warehouse, shape: Query, *values: str) -> ir.Table:
    """The events stored after the watermark that carry one of the values in their column (the shape
    and values :func:`query` gives)."""
    columns, marked = shape
    t = wh.table("events")
    if marked:
        t = t.filter(t.received_at > ibis.literal(values[-1]).cast("timestamp"))
    hits, at = [], 0
    for column, n in columns:
        hits.append(t[column].isin(list(values[at : at + n])))
        at += n
    return t.filter(ibis.or_(*hits))


def _rows(wh: Warehouse, shape: Query, *values: str) -> ir.Table:
    return events(wh, shape, *values).select("message_id", "timestamp", "received_at", *COLUMN_OF.values()).limit(LIMIT)


def _traits(wh: Warehouse, shape: Query, *values: str) -> ir.Table:
    from touchpoint.profiles.build import latest_traits

    expr = events(wh, shape, *values)
    return latest_traits(expr, expr.select("message_id", profile_id=ibis.literal("pending")))


def overlay(wh: Warehouse, profile: dict[str, Any], mark: datetime | None) -> dict[str, Any]:
    """``profile`` (as :func:`touchpoint.profiles.lookup.get_profile` builds it) with the pending events'
    traits laid over its own and a ``pending`` summary; unchanged apart from that summary when none."""
    ids = [(i["type"], i["value"]) for i in profile["identifiers"]]
    q = query(ids, mark)
    rows = _read(wh, q)
    profile["pending"] = _summary(rows, mark, provisional=False)
    if rows:
        for trait, value, source in _latest(wh, q):
            held = profile["trait_sources"].get(trait)
            if held is None or _key(source) > _key(held):
                profile["traits"][trait] = value
                profile["trait_sources"][trait] = source
    return profile


def provisional(wh: Warehouse, forms: list[str], id_type: str | None, mark: datetime | None) -> dict[str, Any] | None:
    """A profile made of the pending events carrying ``forms`` of one identifier (of ``id_type``, else of
    any type with a column), or None when no pending event carries it."""
    types = [id_type] if id_type is not None else list(COLUMN_OF)
    q = query([(t, f) for t in types for f in forms], mark)
    rows = _read(wh, q)
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
    for trait, value, source in _latest(wh, q):
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


def _read(wh: Warehouse, q: tuple[Query, tuple[str, ...]] | None) -> list[dict[str, Any]]:
    if q is None:
        return []
    rows: list[dict[str, Any]] = wh.prepared(_rows, *q[1], key=q[0]).to_pylist()
    return rows


def _latest(wh: Warehouse, q: tuple[Query, tuple[str, ...]] | None) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(trait, value, source)`` of each trait the pending events set, by the build's rule."""
    if q is None:
        return []
    out = []
    for r in wh.prepared(_traits, *q[1], key=q[0]).to_pylist():
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
