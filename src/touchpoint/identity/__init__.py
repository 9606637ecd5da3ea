"""Identity resolution: from the identifiers on events to one stable profile id per person.

How other packages join events to profiles (see ``docs/identity.md``)::

    from touchpoint import identity
    identity.profile_map(wh)     # ibis Table: identifier_type, identifier, profile_id
    identity.event_profiles(wh)  # ibis Table: message_id, profile_id (one row per resolved event)
                                 # (event_identities: each event's node, joined to its profile)
    identity.customer_events(wh) # the events with customer_id: THE customer rule (identity/people.py)

    events = wh.table("events")
    ep = identity.event_profiles(wh)
    with_profile = events.join(ep, "message_id")   # every event with a profile (all but junk-only ones)

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "anonymousId": "a1"},
...                         {"type": "identify", "anonymousId": "a1", "userId": "u1"}])
>>> _ = rebuild(wh)
>>> wh.to_arrow(event_profiles(wh)).column("profile_id").unique().to_pylist() == [resolve(wh, "u1")]
True
"""

from __future__ import annotations

import ibis.expr.types as ir

from touchpoint.identity import store, tables
from touchpoint.identity.extract import centers, identifiers, observations
from touchpoint.identity.graph import ResolveResult, rebuild, recompute_components, saved_rules, update
from touchpoint.identity.overrides import list_overrides, merge, split
from touchpoint.identity.people import customer_events
from touchpoint.identity.rules import ExternalId, MergeRules, is_junk
from touchpoint.warehouse import Warehouse

__all__ = [
    "ExternalId",
    "MergeRules",
    "ResolveResult",
    "blocked_identifiers",
    "customer_events",
    "event_profiles",
    "is_junk",
    "list_overrides",
    "merge",
    "profile_map",
    "rebuild",
    "recompute_components",
    "resolve",
    "resolve_events",
    "saved_rules",
    "split",
    "update",
]


def _require(wh: Warehouse) -> None:
    store.require_resolved(wh)


def profile_map(wh: Warehouse) -> ir.Table:
    """Every known identifier and its profile: ``identifier_type, identifier, profile_id``.

    ``identifier_type`` is ``user_id``, ``anonymous_id``, ``email``, ``phone`` or an external id type.
    """
    _require(wh)
    n = wh.table(tables.NODES)
    return n.select(identifier_type=n.id_type, identifier=n.id_value, profile_id=n.profile_id)


def _rules(wh: Warehouse) -> MergeRules:
    return saved_rules(wh)


def event_profiles(wh: Warehouse, events: ir.Table | None = None) -> ir.Table:
    """``message_id, profile_id`` for every resolved event: the profile of its most trusted identifier.

    ``events`` defaults to every event; pass a filtered table to resolve fewer. Read from
    ``event_identities`` (each resolved event's identity node, kept by :func:`rebuild` and
    :func:`update`) joined to the nodes' current profiles: a few milliseconds to plan, whatever the
    rules. Events whose every identifier is blocked (e.g. only ``anonymousId: "anonymous"``) have no
    row, nor has an event stored after the last ``rebuild``/``update`` (the profiles job resolves new
    events every second or so). Tables built before ``event_identities`` existed are read as before,
    by :func:`resolve_events`, until the next update rebuilds them.
    """
    _require(wh)
    if not store.events_indexed(wh):
        return resolve_events(wh, events)
    ei = wh.table(tables.EVENTS)
    nodes = wh.table(tables.NODES).select("node_id", "profile_id")
    j = ei.join(nodes, "node_id").select(ei.message_id, nodes.profile_id)
    return j if events is None else j.semi_join(events.select("message_id"), "message_id")


def resolve_events(wh: Warehouse, events: ir.Table | None = None) -> ir.Table:
    """``message_id, profile_id`` computed from the events' identifiers and the current nodes.

    What ``event_identities`` stores, computed again (a large expression: half a second to plan). It
    also finds an event stored since the last update whose most trusted identifier is already known.
    The tests compare the table with it.
    """
    _require(wh)
    rules = _rules(wh)
    wide, types, extra = identifiers(events if events is not None else wh.table("events"), rules)
    c = centers(wide, types, extra, rules)
    nodes = wh.table(tables.NODES).select("id_type", "id_value", "profile_id")
    j = c.join(nodes, [c.center_type == nodes.id_type, c.center_value == nodes.id_value])
    return j.select(c.message_id, nodes.profile_id)


def blocked_identifiers(wh: Warehouse, events: ir.Table | None = None) -> ir.Table:
    """Identifier values refused as junk: ``id_type, id_value, reason, events, first_seen, last_seen``."""
    obs = observations(events if events is not None else wh.table("events"), _rules(wh))
    b = obs.filter(obs.blocked.notnull())
    return b.group_by(["id_type", "id_value"]).agg(
        reason=b.blocked.min(), events=b.count(), first_seen=b.timestamp.min(), last_seen=b.timestamp.max()
    )


def resolve(wh: Warehouse, identifier: str, id_type: str | None = None) -> str:
    """The profile id of any identifier (user id, anonymous id, email, phone, external id, or a profile id).

    Raises :class:`~touchpoint.errors.NotFound` with a hint when nothing matches.
    """
    from touchpoint.identity.lookup import find_profile

    return find_profile(wh, identifier, id_type)["profile_id"]
