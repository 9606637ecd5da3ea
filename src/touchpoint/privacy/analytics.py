"""The analytics event log: the one door every analytics read of ``events`` goes through.

Journeys, funnels, attribution and sessions (``journeys.people.person_events``), the CLV, activity,
next-purchase and propensity summaries (``predict.summary``), experiments' exposures and metrics,
the marketing-mix model's KPIs, the survey KPIs and the dashboard's sections built on them read the
event log through :func:`events` (the raw rows) or :func:`customer_events` (the rows with the customer
of THE customer rule, :mod:`touchpoint.identity.people`). ``tests/privacy/test_analytics_consent.py``
fails when a measuring-core module reads ``wh.table("events")`` or the identity package's
``customer_events`` directly.

An event is left out of analytics when (``analytics_denied = exclude``, the default; with ``drop`` the
first kind is never stored):

1. its own consent denied ``analytics`` (``context.consent.categoryPreferences`` and the like): the
   ``consent_history`` row whose proof is its message id;
2. it carries an identifier (``user_id``, ``anonymous_id``, ``email``) of a person whose ``analytics``
   consent does not hold now: the person's profile (:func:`touchpoint.privacy.consent.with_consent`,
   region defaults included), or, for an identifier no profile holds yet, that identifier's own
   stated consent;
3. ``analytics`` is opt-in where the event's person is unknown (no profile, no statement) and nobody
   granted it.

The events stay stored, exportable and erasable; only analytics stops counting them, from the next
read on (derived tables such as ``sessions`` at their next refresh). While nobody denied analytics
and it is granted by default everywhere, :func:`events` is the ``events`` table itself: no join is added.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "messageId": "m1", "userId": "u1"},
...                         {"type": "page", "messageId": "m2", "userId": "u2"}])
>>> sorted(wh.to_arrow(events(wh).message_id).to_pylist())
['m1', 'm2']
>>> _ = write_messages(wh, [{"type": "identify", "messageId": "m3", "userId": "u2",
...                          "traits": {"consent_analytics": False}}])
>>> sorted(wh.to_arrow(events(wh).message_id).to_pylist())
['m1']
>>> excluded(wh)
{'events': 3, 'analytics_events': 1, 'excluded': 2, 'own_denial': 1}
"""

from __future__ import annotations

import functools
import operator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis

from touchpoint.identity import store as identity_store
from touchpoint.identity import tables as identity_tables
from touchpoint.identity.people import CUSTOMER, Rule
from touchpoint.identity.people import customer_events as _assign_customers
from touchpoint.privacy import purposes as P
from touchpoint.warehouse import Warehouse, schema

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings

PURPOSE = "analytics"
EVENTS = schema.EVENTS.name
HISTORY = schema.CONSENT_HISTORY.name
#: The event columns a person is recognised by, and the identifier type each holds.
ID_COLUMNS = {"user_id": "user_id", "anonymous_id": "anonymous_id", "email": "email"}


def needed(wh: Warehouse, settings: Settings | None = None) -> bool:
    """Whether any event can be left out: analytics is not granted by default somewhere (an opt-in
    purpose, or a region's default), or someone denied it (a cheap query on the consent history)."""
    if PURPOSE not in P.purposes(settings):
        return False
    if not P.granted_everywhere(PURPOSE, settings):
        return True
    if not wh.has_table(HISTORY):
        return False
    h = wh.table(HISTORY)
    denied = h.filter((h.purpose == PURPOSE) & ~h.granted).limit(1).count()
    return bool(wh.to_arrow(denied).as_py())


def _own_denials(wh: Warehouse) -> ir.Column:
    h = wh.table(HISTORY)
    return h.filter((h.source == "event") & (h.purpose == PURPOSE) & ~h.granted).proof


def identifier_consent(wh: Warehouse, *, at: datetime | None = None, settings: Settings | None = None) -> ir.Table:
    """``id_type, id_value, ok``: whether analytics consent holds for the person each known identifier
    names (its profile's, or, for an identifier no profile holds, its own statements)."""
    from touchpoint.privacy import consent

    parts = []
    loose = ibis.schema({"id_type": "string", "id_value": "string", "ok": "boolean"})
    nodes = None
    if identity_store.resolved(wh):
        nodes = wh.table(identity_tables.NODES).select("profile_id", "id_type", "id_value")
        judged = consent.with_consent(wh, nodes, PURPOSE, column="ok", at=at, settings=settings)
        parts.append(judged.select("id_type", "id_value", "ok").cast(loose))
    raw = consent.identifier_state(wh, PURPOSE, at=at)
    raw = raw.filter(raw.identifier_type != "profile_id")
    if nodes is not None:
        raw = raw.anti_join(nodes, [raw.identifier_type == nodes.id_type, raw.identifier == nodes.id_value])
    parts.append(raw.select(id_type=raw.identifier_type, id_value=raw.identifier, ok=raw.granted).cast(loose))
    return parts[0] if len(parts) == 1 else parts[0].union(parts[1])


def _carries(e: ir.Table, ids: ir.Table) -> ir.BooleanValue:
    terms = [
        e[column].isin(ids.filter(ids.id_type == kind).id_value).fill_null(False)
        for column, kind in ID_COLUMNS.items()
        if column in e.columns
    ]
    return functools.reduce(operator.or_, terms) if terms else ibis.literal(False)


def events(
    wh: Warehouse,
    events: ir.Table | None = None,
    *,
    at: datetime | None = None,
    settings: Settings | None = None,
) -> ir.Table:
    """``events`` (default: the whole ``events`` table; any expression over it with ``message_id`` and the
    identifier columns) without the events analytics may not use (the module docstring)."""
    e = events if events is not None else wh.table(EVENTS)
    if not needed(wh, settings):
        return e
    e = e.filter(~e.message_id.isin(_own_denials(wh)).fill_null(False))
    ids = identifier_consent(wh, at=at, settings=settings)
    keep = ~_carries(e, ids.filter(~ids.ok))
    if not P.default_granted(PURPOSE, settings):  # nobody known to have granted it: not counted
        keep = keep & _carries(e, ids.filter(ids.ok))
    return e.filter(keep)


_analytics_events = events  # for the function below, whose parameter shadows the name


def customer_events(
    wh: Warehouse,
    events: ir.Table | None = None,
    *,
    rule: Rule | str = "auto",
    name: str = CUSTOMER,
    settings: Settings | None = None,
) -> ir.Table:
    """The analytics events with the column ``name`` naming each event's customer by ``rule``
    (:func:`touchpoint.identity.people.customer_events`). ``events``, when given, must come from
    :func:`events` (it is not filtered again)."""
    chosen = events if events is not None else _analytics_events(wh, settings=settings)
    return _assign_customers(wh, chosen, rule=rule, name=name)


def excluded(wh: Warehouse, settings: Settings | None = None) -> dict[str, int]:
    """How many stored events analytics leaves out now: ``events`` stored, ``analytics_events`` counted,
    ``excluded`` (the difference) and, of those, ``own_denial`` (the event's own consent said no)."""
    if not wh.has_table(EVENTS):
        return {"events": 0, "analytics_events": 0, "excluded": 0, "own_denial": 0}
    total = wh.count(EVENTS)
    if not needed(wh, settings):
        return {"events": total, "analytics_events": total, "excluded": 0, "own_denial": 0}
    kept = int(wh.to_arrow(events(wh, settings=settings).count()).as_py())
    e = wh.table(EVENTS)
    own = int(wh.to_arrow(e.filter(e.message_id.isin(_own_denials(wh))).count()).as_py())
    return {"events": total, "analytics_events": kept, "excluded": total - kept, "own_denial": own}


def summary(wh: Warehouse, settings: Settings | None = None) -> dict[str, Any]:
    """:func:`excluded` with the setting in force, for status views."""
    from touchpoint.config import get_settings

    mode = (settings or get_settings()).analytics_denied
    return {"analytics_denied": mode, **excluded(wh, settings)}
