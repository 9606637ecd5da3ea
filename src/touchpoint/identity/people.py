"""THE customer rule: which customer each event belongs to.

Every number that counts customers takes them from here: journeys, funnels and attribution
(``person``), CLV summaries, propensity and replenishment (``customer_id``), experiments whose unit
is ``customer`` and the marketing-mix model's new-customer KPIs. So one customer counts once, in
the same way, everywhere. The rule (``rule="auto"``):

1. **Identities resolved** (``touchpoint profiles rebuild`` built ``identity_nodes``): the profile
   of the event's most trusted identifier (:func:`touchpoint.identity.event_profiles`, the same
   mapping the profiles are built from). An event stored since the last resolution (the server
   resolves new events every second) belongs to the profile of its ``user_id``, else of its
   ``anonymous_id``, when either is known; else to its raw ``user_id``, else ``anonymous_id``.
2. **Identities not resolved**: stitching inside the event log. An event belongs to its
   ``user_id``; an anonymous event whose ``anonymous_id`` was ever seen together with a
   ``user_id`` (an identify call after browsing anonymously) belongs to that user (the smallest
   one, if several); any other event to its ``anonymous_id``.

An event with neither identifier has no customer (NULL). The other rules are there to compare
against: ``profiles`` (1, an error when identities were never resolved), ``stitch`` (2) and
``raw`` (``coalesce(user_id, anonymous_id)``, no stitching at all).

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "anonymousId": "a1"},
...                         {"type": "identify", "anonymousId": "a1", "userId": "u1"}])
>>> sorted(wh.to_arrow(customer_events(wh)).column("customer_id").to_pylist())
['u1', 'u1']
>>> describe(wh)
'user_id, else the user_id its anonymous_id was seen with, else anonymous_id (identities not resolved)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput
from touchpoint.identity import tables
from touchpoint.warehouse import Warehouse

Rule = Literal["auto", "profiles", "stitch", "raw"]
CUSTOMER = "customer_id"


def resolved(wh: Warehouse) -> bool:
    """Whether identities have been resolved: the identity package's node table has rows."""
    from touchpoint.identity import store

    return store.resolved(wh)


def _keep(events: ir.Table, name: str) -> list[str]:
    return [c for c in events.columns if c != name]


def raw(wh: Warehouse, events: ir.Table, name: str = CUSTOMER) -> ir.Table:
    """``events`` with ``name = coalesce(user_id, anonymous_id)`` (no stitching at all)."""
    return events.select(*_keep(events, name), **{name: ibis.coalesce(events.user_id, events.anonymous_id)})


def stitch(events: ir.Table, name: str = CUSTOMER, *, log: ir.Table | None = None) -> ir.Table:
    """``events`` with ``name`` by anonymous-to-user stitching; the links come from ``log`` (the whole
    event log, so a filtered ``events`` still finds them), by default ``events`` itself.

    >>> import pyarrow as pa
    >>> t = ibis.memtable(pa.table({"user_id": [None, "u1"], "anonymous_id": ["a1", "a1"]}))
    >>> sorted(stitch(t).customer_id.to_pyarrow().to_pylist())
    ['u1', 'u1']
    """
    src = events if log is None else log
    known = (
        src.filter(src.user_id.notnull() & src.anonymous_id.notnull())
        .group_by(tp_anon=src.anonymous_id)
        .agg(tp_user=src.user_id.min())
    )
    joined = events.left_join(known, events.anonymous_id == known.tp_anon)
    customer = ibis.coalesce(joined.user_id, joined.tp_user, joined.anonymous_id)
    return joined.select(*[joined[c] for c in _keep(events, name)], **{name: customer})


def _stitch(wh: Warehouse, events: ir.Table, name: str = CUSTOMER) -> ir.Table:
    return stitch(events, name, log=wh.table("events"))


def profiles(wh: Warehouse, events: ir.Table, name: str = CUSTOMER) -> ir.Table:
    """``events`` with ``name`` = the resolved profile (rule 1 of the module docstring)."""
    if not resolved(wh):
        raise InvalidInput(
            f"identities have not been resolved: the warehouse has no {tables.NODES!r} table",
            hint="run `touchpoint profiles rebuild` first, or use the rule 'stitch'",
        )
    from touchpoint.identity import event_profiles

    ep = event_profiles(wh, events).select(tp_mid="message_id", tp_ep="profile_id")
    ids = wh.table(tables.NODES)
    users = ids.filter(ids.id_type == "user_id").select(tp_uid=ids.id_value, tp_up=ids.profile_id)
    anons = ids.filter(ids.id_type == "anonymous_id").select(tp_aid=ids.id_value, tp_ap=ids.profile_id)
    j = events.left_join(ep, events.message_id == ep.tp_mid)
    j = j.left_join(users, j.user_id == users.tp_uid)
    j = j.left_join(anons, j.anonymous_id == anons.tp_aid)
    customer = ibis.coalesce(j.tp_ep, j.tp_up, j.tp_ap, j.user_id, j.anonymous_id)
    return j.select(*[j[c] for c in _keep(events, name)], **{name: customer})


RULES: dict[str, Callable[[Warehouse, ir.Table, str], ir.Table]] = {
    "profiles": profiles,
    "stitch": _stitch,
    "raw": raw,
}


def rule_for(wh: Warehouse, rule: str = "auto") -> str:
    """The rule ``auto`` stands for in this warehouse (``profiles`` once resolved, else ``stitch``)."""
    if rule == "auto":
        return "profiles" if resolved(wh) else "stitch"
    if rule not in RULES:
        raise InvalidInput(f"identity rule {rule!r} is not known", hint="use one of: auto, " + ", ".join(RULES))
    return rule


def customer_events(
    wh: Warehouse, events: ir.Table | None = None, *, rule: Rule | str = "auto", name: str = CUSTOMER
) -> ir.Table:
    """``events`` (default: the whole ``events`` table) with a column ``name`` naming each event's
    customer by ``rule`` (see the module docstring). Every row is kept; the column is NULL for an
    event with no identifier."""
    t = events if events is not None else wh.table("events")
    return RULES[rule_for(wh, rule)](wh, t, name)


DESCRIPTIONS = {
    "profiles": "profile_id (identity resolution), else the profile of user_id or anonymous_id, "
    "else user_id, else anonymous_id",
    "stitch": "user_id, else the user_id its anonymous_id was seen with, else anonymous_id",
    "raw": "user_id, else anonymous_id",
}


def describe(wh: Warehouse, rule: Rule | str = "auto") -> str:
    """In words, which identifier names a customer in this warehouse (shown next to results)."""
    text = DESCRIPTIONS[rule_for(wh, rule)]
    return text if resolved(wh) else text + " (identities not resolved)"
