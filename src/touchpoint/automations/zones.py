"""A recipient's time zone: one rule for every step that reads the recipient's clock.

``wait_until`` (a flow step waiting for a local time) and quiet hours (the sender holding a message during
the night) both ask where a contact is. The answer, in this order:

1. the profile's ``timezone`` trait;
2. else ``context.timezone`` of the latest event that has one (what the Segment libraries send);
3. else the ``default_timezone`` setting.

A value that is not an IANA time zone ("Mars/Olympus", a number) is skipped as if it were missing.

>>> str(zone("Europe/Stockholm")), zone("Mars/Olympus"), zone(42)
('Europe/Stockholm', None, None)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from touchpoint.warehouse import Warehouse


def zone(name: Any) -> ZoneInfo | None:
    """The IANA time zone ``name`` (a trait, a context, a setting), or None when it is not one."""
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def default_zone(name: Any) -> ZoneInfo:
    """The ``default_timezone`` setting as a zone (UTC when it is not one; the setting's validator refuses that)."""
    return zone(name) or ZoneInfo("UTC")


def recipient_zones(
    wh: Warehouse, ids: list[str], default: ZoneInfo, traits: Mapping[str, Any] | None = None
) -> dict[str, ZoneInfo]:
    """Each profile's time zone by the module's rule; at most two queries for any number of profiles.

    ``traits`` maps profile ids to a ``timezone`` trait the caller already holds (the sender's delivery
    context); the profiles not in it are looked up in ``profile_traits``.
    """
    ids = sorted(set(ids))
    known = dict(traits) if traits is not None else _trait_zones(wh, ids)
    out: dict[str, ZoneInfo] = {}
    for pid in ids:
        tz = zone(known.get(pid))
        if tz is not None:
            out[pid] = tz
    out.update(_event_zones(wh, [pid for pid in ids if pid not in out]))
    return {pid: out.get(pid, default) for pid in ids}


def _trait_zones(wh: Warehouse, ids: list[str]) -> dict[str, Any]:
    """The ``timezone`` trait of each profile that has one (its stored JSON value decoded)."""
    if not ids:
        return {}
    t = wh.table("profile_traits")
    t = t.filter((t.trait == "timezone") & t.profile_id.isin(ids))
    out: dict[str, Any] = {}
    for row in wh.to_arrow(t.select("profile_id", "value")).to_pylist():
        try:
            out[row["profile_id"]] = json.loads(row["value"]) if row["value"] is not None else None
        except json.JSONDecodeError:
            out[row["profile_id"]] = row["value"]
    return out


def _event_zones(wh: Warehouse, ids: list[str]) -> dict[str, ZoneInfo]:
    """``context.timezone`` of each profile's latest event that has one, when it is a zone (one query)."""
    if not ids:
        return {}
    from touchpoint.identity.people import customer_events

    e = wh.table("events")
    e = e.filter(e.context["timezone"].notnull())
    ce = customer_events(wh, e, name="tp_pid")
    ce = ce.filter(ce.tp_pid.isin(ids)).select("tp_pid", "timestamp", tp_tz=ce.context["timezone"].str)
    latest = ce.group_by("tp_pid").agg(tz=ce.tp_tz.argmax(ce.timestamp))
    out = {}
    for r in wh.to_arrow(latest).to_pylist():
        tz = zone(r["tz"])
        if tz is not None:
            out[r["tp_pid"]] = tz
    return out
