"""Who a privacy request is about, and which rows of which tables hold them.

:func:`find` turns an identifier (a user id, anonymous id, email, phone or profile id) into a
:class:`Person`: every identifier of their profile (the identity tables are THE customer rule),
plus whatever the event log ties to those identifiers that the identity tables have not seen yet
(events stored since the last resolution, or identities never resolved): an export or erasure
must not miss what arrived a minute ago.

A person is their *profile*, not their identity graph's whole connected component: a component
may hold several people that a refused link (a shared device, a merge limit) kept apart, and
erasing them too would destroy another person's data.

:func:`rows` selects a table's rows that belong to the person, from the table's
:class:`~touchpoint.warehouse.schema.Personal` classification, so every privacy operation reads the
same registry (:func:`personal_tables`).

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "anonymousId": "a-1"},
...                         {"type": "identify", "anonymousId": "a-1", "userId": "u-1",
...                          "traits": {"email": "Ann@Example.com"}}])
>>> sorted(find(wh, "ann@example.com").values())
['a-1', 'ann@example.com', 'u-1']
>>> wh.count("events"), wh.to_arrow(rows(wh, schema.EVENTS, find(wh, "u-1")).count()).as_py()
(2, 2)
"""

from __future__ import annotations

import contextlib
import functools
import operator
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import NotFound
from touchpoint.identity import store as identity_store
from touchpoint.identity.lookup import candidates, find_profile
from touchpoint.identity.rules import is_junk
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.schema import TableSpec

#: Event columns that hold an identifier, and the identifier type each stands for.
EVENT_ID_COLUMNS = {
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
    "email": "email",
    "previous_id": "previous_id",
}
#: Identifier values shorter than this are never searched for inside free text (payloads, files):
#: "u1" would match everybody's data.
MIN_SEARCH_CHARS = 5
MAX_ROUNDS = 8  # events linking new identifiers are followed this many hops at most


@dataclass
class Person:
    """Everything that identifies one person: their profile ids, identifiers and identity nodes."""

    asked: str
    profile_ids: set[str] = field(default_factory=set)
    identifiers: set[tuple[str, str]] = field(default_factory=set)  # (type, value)
    node_ids: set[int] = field(default_factory=set)

    def values(self) -> set[str]:
        """Identifier values (without profile ids)."""
        return {v for _, v in self.identifiers}

    def keys(self) -> list[str]:
        """Every value a row may name the person by: identifier values and profile ids, sorted."""
        return sorted(self.values() | self.profile_ids)

    def needles(self) -> list[str]:
        """The values searched for in free text and files (long enough to be distinctive)."""
        return sorted(v for v in self.keys() if len(v) >= MIN_SEARCH_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "profile_ids": sorted(self.profile_ids),
            "identifiers": [{"type": t, "value": v} for t, v in sorted(self.identifiers)],
        }


def personal_tables(wh: Warehouse | None = None) -> list[TableSpec]:
    """The declared tables classified as holding people (those present in ``wh`` when given)."""
    present = set(wh.tables()) if wh is not None else None
    return [
        t
        for t in schema.all_tables()
        if t.personal is not None and t.personal.is_personal and (present is None or t.name in present)
    ]


def find(wh: Warehouse, identifier: str) -> Person:
    """The person ``identifier`` names; :class:`~touchpoint.errors.NotFound` when nothing holds it."""
    person = Person(asked=identifier)
    forms = candidates(identifier, None)
    if identity_store.resolved(wh):
        nodes = wh.table(schema.IDENTITY_NODES.name)
        profiles: set[str] = set()
        with contextlib.suppress(NotFound):
            profiles.add(find_profile(wh, identifier)["profile_id"])
        hits = nodes.filter(nodes.id_value.isin(forms)).select("profile_id")
        profiles |= {p for p in wh.to_arrow(hits).column("profile_id").to_pylist() if p}
        if profiles:
            _add_nodes(wh, person, profiles)
    if not person.identifiers:
        person.identifiers |= {(guess_type(f), f) for f in forms}
    _follow_events(wh, person)
    if not person.profile_ids and not _has_events(wh, person):
        _already_erased(wh, identifier)
        raise NotFound(
            f"nobody is known by {identifier!r}: no profile, identifier or event holds it",
            hint="give a user id, anonymous id, email or profile id exactly as stored "
            "(`touchpoint profiles search` finds profiles by trait)",
        )
    return person


def _already_erased(wh: Warehouse, identifier: str) -> None:
    """Raise a :class:`NotFound` that says so when ``identifier`` belongs to a person erased before
    (its keyed hash is on the suppression list); nothing else about them is held to say more."""
    from touchpoint.collect import suppression

    secret = suppression.key(wh)
    if secret is None or not wh.has_table(schema.SUPPRESSIONS.name):
        return
    hashes = [suppression.digest(form, secret) for form in candidates(identifier, None)]
    s = wh.table(schema.SUPPRESSIONS.name)
    hit = wh.to_arrow(s.filter(s.hash.isin(hashes)).select("erasure_id", "added_at").limit(1)).to_pylist()
    if hit:
        raise NotFound(
            f"{identifier!r} belongs to a person erased on {hit[0]['added_at']:%Y-%m-%d %H:%M} UTC "
            f"(erasure {hit[0]['erasure_id']}): nothing is held about them, and their new events are dropped",
            hint="`touchpoint privacy erasures` lists the erasures",
        )


def guess_type(value: str) -> str:
    return "email" if "@" in value else "profile_id" if value.startswith("prf_") else "user_id"


def _add_nodes(wh: Warehouse, person: Person, profiles: set[str]) -> None:
    nodes = wh.table(schema.IDENTITY_NODES.name)
    got = wh.to_arrow(
        nodes.filter(nodes.profile_id.isin(sorted(profiles))).select("node_id", "id_type", "id_value", "profile_id")
    ).to_pylist()
    person.profile_ids |= profiles
    for r in got:
        person.node_ids.add(int(r["node_id"]))
        person.identifiers.add((str(r["id_type"]), str(r["id_value"])))


def _event_filter(events: ir.Table, values: list[str]) -> ir.BooleanValue:
    return functools.reduce(operator.or_, [events[c].isin(values) for c in EVENT_ID_COLUMNS])


def person_events(wh: Warehouse, person: Person) -> ir.Table:
    """The person's raw events: every event carrying one of their identifiers."""
    events = wh.table(schema.EVENTS.name)
    return events.filter(_event_filter(events, sorted(person.values())))


def _has_events(wh: Warehouse, person: Person) -> bool:
    return bool(person.values()) and bool(wh.to_arrow(person_events(wh, person).count()).as_py())


def _follow_events(wh: Warehouse, person: Person) -> None:
    """Add identifiers that events tie to the person's (anonymous → user on an identify, alias),
    unless identity resolution gave them to another profile or they are junk ("anonymous", "0")."""
    resolved = identity_store.resolved(wh)
    nodes = wh.table(schema.IDENTITY_NODES.name) if resolved else None
    for _ in range(MAX_ROUNDS):
        events = person_events(wh, person)
        seen = wh.to_arrow(events.select(*EVENT_ID_COLUMNS).distinct()).to_pylist()
        fresh = {
            (EVENT_ID_COLUMNS[c], v)
            for r in seen
            for c, v in r.items()
            if v and v not in person.values() and not is_junk(v)
        }
        if fresh and nodes is not None:
            owned = nodes.filter(nodes.id_value.isin(sorted({v for _, v in fresh})) & nodes.profile_id.notnull())
            others = {
                r["id_value"]
                for r in wh.to_arrow(owned.select("id_value", "profile_id")).to_pylist()
                if r["profile_id"] not in person.profile_ids
            }
            fresh = {(t, v) for t, v in fresh if v not in others}
        if not fresh:
            return
        person.identifiers |= fresh


def rows(wh: Warehouse, spec: TableSpec, person: Person) -> ir.Table:
    """The rows of ``spec``'s table that belong to ``person`` (see :class:`~touchpoint.warehouse.schema.Personal`)."""
    p = spec.personal
    if p is None or not p.is_personal:
        raise ValueError(f"table {spec.name!r} is not classified as personal")
    t = wh.table(spec.name)
    return t.filter(match(wh, t, spec, person))


def match(wh: Warehouse, t: ir.Table, spec: TableSpec, person: Person) -> ir.BooleanValue:
    """The predicate selecting ``person``'s rows of ``t`` (the table ``spec`` declares)."""
    p = spec.personal
    assert p is not None
    keys, values = person.keys(), sorted(person.values())
    terms: list[ir.BooleanValue] = []
    terms += [t[c].isin(sorted(person.profile_ids)) for c in p.profile if person.profile_ids]
    terms += [t[c].isin(keys) for c in p.identifiers if keys]
    for type_col, value_col in p.kinds:
        pairs = [(t[type_col] == k) & (t[value_col] == v) for k, v in sorted(person.identifiers)]
        if pairs:
            terms.append(functools.reduce(operator.or_, pairs))
    if p.messages and values:
        ids = person_events(wh, person).message_id
        terms += [t[c].isin(ids) for c in p.messages]
    terms += [t[c].isin(sorted(person.node_ids)) for c in p.nodes if person.node_ids]
    if not (p.profile or p.identifiers or p.kinds):  # nothing to match on but free text: search it
        for column in p.payloads:
            text = t[column].cast("string").lower()
            terms += [text.contains(n.lower()) for n in person.needles()]
    if not terms:
        return ibis.literal(False)
    return functools.reduce(operator.or_, terms)
