"""Who did what: a ``person`` column for every event.

Journeys need one key per person across their anonymous and identified events. When the
identity package has built its profiles (the table ``identity_nodes`` with ``id_type``,
``id_value`` and ``profile_id``), an event's person is the profile of its ``user_id``, else of
its ``anonymous_id`` (events newer than the last identity build fall back to the raw ids).

Otherwise touchpoint stitches in the warehouse: an event's person is its ``user_id``; an
anonymous event whose ``anonymous_id`` was ever seen together with a ``user_id`` belongs to that
user (the smallest one, if several); any other anonymous event belongs to its
``anonymous_id``. So the visits a visitor made before signing up count in their journey.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> person_events(wh).count().to_pyarrow().as_py()
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

IDENTITY_TABLE = "identity_nodes"
Identity = Literal["auto", "profiles", "stitch", "raw"]


def stitch(events: ir.Table) -> ir.Table:
    """``events`` with a ``person`` column by anonymous-to-user stitching inside the event log.

    >>> import pyarrow as pa
    >>> t = ibis.memtable(pa.table({"user_id": [None, "u1"], "anonymous_id": ["a1", "a1"]}))
    >>> sorted(stitch(t).person.to_pyarrow().to_pylist())
    ['u1', 'u1']
    """
    known = (
        events.filter(events.user_id.notnull() & events.anonymous_id.notnull())
        .group_by(tp_anon=events.anonymous_id)
        .agg(tp_user=events.user_id.min())
    )
    joined = events.left_join(known, events.anonymous_id == known.tp_anon)
    person = ibis.coalesce(joined.user_id, joined.tp_user, joined.anonymous_id)
    return joined.select(*[joined[c] for c in events.columns if c != "person"], person=person)


def raw_person(events: ir.Table) -> ir.Table:
    """``events`` with ``person = coalesce(user_id, anonymous_id)`` (no stitching at all)."""
    return events.mutate(person=ibis.coalesce(events.user_id, events.anonymous_id))


def _profiles(wh: Warehouse, events: ir.Table) -> ir.Table:
    ids = wh.table(IDENTITY_TABLE)
    users = ids.filter(ids.id_type == "user_id").select(tp_uid=ids.id_value, tp_up=ids.profile_id)
    anons = ids.filter(ids.id_type == "anonymous_id").select(tp_aid=ids.id_value, tp_ap=ids.profile_id)
    j = events.left_join(users, events.user_id == users.tp_uid)
    j = j.left_join(anons, j.anonymous_id == anons.tp_aid)
    person = ibis.coalesce(j.tp_up, j.tp_ap, j.user_id, j.anonymous_id)
    return j.select(*[j[c] for c in events.columns if c != "person"], person=person)


def has_profiles(wh: Warehouse) -> bool:
    """Whether identities have been resolved (the identity package's mapping table has rows)."""
    ids = wh.table(IDENTITY_TABLE)
    return bool(wh.to_arrow(ids.select("profile_id").limit(1)).num_rows)


def person_events(wh: Warehouse, *, identity: Identity = "auto", events: ir.Table | None = None) -> ir.Table:
    """The ``events`` table with a ``person`` column; rows with no identifier at all are dropped.

    ``identity``: ``auto`` (profiles when the identity mapping exists, else ``stitch``),
    ``profiles``, ``stitch`` or ``raw`` (``coalesce(user_id, anonymous_id)``).
    """
    t = events if events is not None else wh.table("events")
    if identity == "auto":
        identity = "profiles" if has_profiles(wh) else "stitch"
    if identity == "profiles":
        if not has_profiles(wh):
            raise InvalidInput(
                f"identity='profiles' but identities have not been resolved ({IDENTITY_TABLE!r} is empty)",
                hint="build profiles first (see docs/identity.md) or use identity='stitch'",
            )
        out = _profiles(wh, t)
    elif identity == "stitch":
        out = stitch(t)
    elif identity == "raw":
        out = raw_person(t)
    else:
        raise InvalidInput(f"identity={identity!r} is not known", hint="use one of: auto, profiles, stitch, raw")
    return out.filter(out.person.notnull())
