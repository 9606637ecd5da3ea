"""Identity resolution: from the identifiers on events to one stable profile id per person.

How other packages join events to profiles (see ``docs/identity.md``)::

    from touchpoint import identity
    identity.profile_map(wh)     # ibis Table: identifier_type, identifier, profile_id
    identity.event_profiles(wh)  # ibis Table: message_id, profile_id (one row per resolved event)

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

from touchpoint.errors import NotFound
from touchpoint.identity import tables
from touchpoint.identity.graph import ResolveResult, rebuild, recompute_components, update
from touchpoint.identity.rules import ExternalId, MergeRules, is_junk
from touchpoint.warehouse import Warehouse

_NODE_BITS = 2**40

__all__ = [
    "ExternalId",
    "MergeRules",
    "ResolveResult",
    "blocked_identifiers",
    "event_profiles",
    "is_junk",
    "profile_map",
    "rebuild",
    "recompute_components",
    "resolve",
    "update",
]


def _require(wh: Warehouse) -> None:
    if tables.NODES not in wh.ibis.list_tables():
        raise NotFound(
            "identities have not been resolved in this warehouse yet",
            hint="run `touchpoint profiles rebuild` (or touchpoint.identity.rebuild(wh))",
        )


def profile_map(wh: Warehouse) -> ir.Table:
    """Every known identifier and its profile: ``identifier_type, identifier, profile_id``.

    ``identifier_type`` is ``user_id``, ``anonymous_id``, ``email``, ``phone`` or an external id type.
    """
    _require(wh)
    n = wh.table(tables.NODES)
    return n.select(identifier_type=n.id_type, identifier=n.id_value, profile_id=n.profile_id)


def event_profiles(wh: Warehouse) -> ir.Table:
    """``message_id, profile_id`` for every resolved event: the profile of its most trusted identifier.

    Events whose every identifier is on the block list (e.g. only ``anonymousId: "anonymous"``) have
    no profile and no row. Events stored after the last ``rebuild``/``update`` have no row until the next.
    """
    _require(wh)
    obs = wh.table(tables.OBSERVATIONS)
    good = obs.filter(obs.node_id.notnull())
    # most trusted identifier first; ties (two of one type on an event) go to the smaller node id
    key = good.rank.cast("int64") * _NODE_BITS + good.node_id
    best = good.group_by("message_id").agg(key=key.min())
    best = best.select("message_id", node_id=best.key % _NODE_BITS)
    nodes = wh.table(tables.NODES).select("node_id", "profile_id")
    return best.join(nodes, "node_id").select("message_id", "profile_id")


def blocked_identifiers(wh: Warehouse) -> ir.Table:
    """Identifier values refused as junk: ``id_type, id_value, reason, events, first_seen, last_seen``."""
    _require(wh)
    obs = wh.table(tables.OBSERVATIONS)
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
