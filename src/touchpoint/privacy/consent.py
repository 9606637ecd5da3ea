"""Consent per purpose: an append-only history, and the state derived from it in the query that acts.

Every consent given or withdrawn is one row of ``consent_history`` (never updated, never deleted by
this module): who (an identifier, ``identifier_type`` + ``identifier``), ``purpose``, ``granted``,
``source`` (event, api, cli, dashboard, unsubscribe, import), ``proof`` (the event's messageId, the
unsubscribe token's digest, the request's id), ``valid_from``, ``valid_until`` (null: until changed),
``recorded_at``. Events bring theirs in the transaction that stores them
(:mod:`touchpoint.collect.consent`); :func:`set_consent` records the API's, the CLI's and the
dashboard's; :func:`record_unsubscribe` an unsubscribe link's.

**Who** is resolved when read, through the identity tables, so a merge gathers, and a split
separates, the consent of the identifiers involved. **The state** of a profile and purpose at an
instant: among its rows in force then (``valid_from <= at < valid_until``), the latest ``valid_from``
wins; a denial wins a tie. Without a row the purpose's default holds (:mod:`touchpoint.privacy.purposes`).
:func:`with_consent` adds that decision as a boolean column to any query with a ``profile_id``, so
the people an action selects and the consent it needs are one query.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint.identity import rebuild
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [
...     {"type": "identify", "userId": "u1", "traits": {"consent_marketing_email": True},
...      "timestamp": "2026-01-01T00:00:00Z"},
...     {"type": "identify", "userId": "u2", "timestamp": "2026-01-01T00:00:00Z"}])
>>> _ = rebuild(wh)
>>> people = wh.table("identity_nodes").select("profile_id", user="id_value")
>>> rows = wh.to_arrow(with_consent(wh, people, "marketing_email").order_by("user")).to_pylist()
>>> [(r["user"], r["consent"]) for r in rows]
[('u1', True), ('u2', False)]
>>> _ = set_consent(wh, "u1", ["marketing_email"], False, source="cli")
>>> [r["consent"] for r in wh.to_arrow(with_consent(wh, people, "marketing_email").order_by("user")).to_pylist()]
[False, False]
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.collect.consent import consent_id
from touchpoint.errors import InvalidInput
from touchpoint.identity import tables as identity_tables
from touchpoint.privacy import purposes as P
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import naive_utc, utcnow

if TYPE_CHECKING:
    from touchpoint.config import Settings

HISTORY = schema.CONSENT_HISTORY.name
COLUMNS = tuple(schema.CONSENT_HISTORY.schema.names)
SOURCES = ("event", "api", "cli", "dashboard", "unsubscribe", "import", "bounce", "complaint")


now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def _naive(at: datetime | None, field: str) -> datetime:
    """``at`` as naive UTC (now when None); a time that has no UTC date (the year 1 or 9999 at the edge of a
    day, with an offset) is refused naming ``field``."""
    return now() if at is None else naive_utc(at, field)


# -- reading -----------------------------------------------------------------------------------------------
def history(wh: Warehouse) -> ir.Table:
    """Every consent row with the ``profile_id`` its identifier belongs to now (rows whose identifier no
    profile holds, e.g. an event not yet resolved, are left out until it is; a row recorded under a
    ``profile_id`` keeps it)."""
    h = wh.table(HISTORY)
    n = wh.table(identity_tables.NODES).select(tp_type="id_type", tp_value="id_value", tp_pid="profile_id")
    by_id = h.join(n, [h.identifier_type == n.tp_type, h.identifier == n.tp_value])
    by_id = by_id.select(profile_id=by_id.tp_pid, **{c: by_id[c] for c in COLUMNS})
    own = h.filter(h.identifier_type == "profile_id")  # recorded under a profile id no identifier names
    own = own.select(profile_id=own.identifier, **{c: own[c] for c in COLUMNS})
    loose = ibis.schema({name: dtype.copy(nullable=True) for name, dtype in by_id.schema().items()})
    return by_id.cast(loose).union(own.cast(loose))


def _in_force(h: ir.Table, keys: list[str], at: datetime | ir.TimestampValue | None) -> ir.Table:
    """``keys..., granted, since`` from history rows ``h``: per key, among the rows in force at ``at``
    (an instant, or an expression of one), the latest ``valid_from`` wins and a denial wins a tie."""
    t = at if isinstance(at, ir.Expr) else ibis.literal(_naive(at, "at"), "timestamp")
    h = h.filter((h.valid_from <= t) & (h.valid_until.isnull() | (h.valid_until > t)))
    latest = h.group_by(keys).agg(tp_since=h.valid_from.max())
    j = h.join(latest, [*[h[k] == latest[k] for k in keys], h.valid_from == latest.tp_since])
    return j.group_by([h[k] for k in keys]).agg(granted=j.granted.all(), since=j.tp_since.max())


def state(wh: Warehouse, *, at: datetime | ir.TimestampValue | None = None, purpose: str | None = None) -> ir.Table:
    """``profile_id, purpose, granted, since``: the stated consent in force at ``at`` (default now).

    Profiles that never stated a purpose have no row: their purpose's default holds (:func:`with_consent`).
    """
    h = history(wh)
    if purpose is not None:
        h = h.filter(h.purpose == purpose)
    return _in_force(h, ["profile_id", "purpose"], at)


def identifier_state(wh: Warehouse, purpose: str, *, at: datetime | None = None) -> ir.Table:
    """``identifier_type, identifier, granted, since``: what each identifier itself stated for ``purpose``,
    whether or not a profile holds it (for events that identity resolution has not reached yet)."""
    h = wh.table(HISTORY)
    h = h.filter(h.purpose == purpose)
    return _in_force(h, ["identifier_type", "identifier"], at)


def with_consent(
    wh: Warehouse,
    people: ir.Table,
    purpose: str | None,
    *,
    column: str = "consent",
    at: datetime | ir.TimestampValue | None = None,
    settings: Settings | None = None,
) -> ir.Table:
    """``people`` (with a ``profile_id`` column) plus a boolean ``column``: does consent for ``purpose`` hold
    at ``at`` (an instant, or an expression of one: a prepared read's bound parameter; default now)?

    ``None`` and ``transactional`` need no consent (the column is true). An unknown purpose is
    :class:`~touchpoint.errors.InvalidInput`.
    """
    if purpose is None or purpose == P.TRANSACTIONAL:
        return people.mutate(**{column: ibis.literal(True)})
    default = P.default_granted(purpose, settings)
    by_region = P.region_defaults(purpose, settings)
    s = state(wh, at=at, purpose=purpose).select(tp_cpid="profile_id", tp_granted="granted")
    j = people.left_join(s, people.profile_id == s.tp_cpid)
    fallback: ir.BooleanValue = ibis.literal(default)
    if by_region:  # the default of the person's region, else the purpose's
        r = regions(wh, settings).select(tp_rpid="profile_id", tp_region="region")
        j = j.left_join(r, j.profile_id == r.tp_rpid)
        fallback = ibis.cases(
            *[(j.tp_region == name, ibis.literal(granted)) for name, granted in sorted(by_region.items())],
            else_=ibis.literal(default),
        )
    ok = j.tp_granted.fill_null(fallback)
    return j.select(*[j[c] for c in people.columns], **{column: ok})


REGION_TRAIT, COUNTRY_TRAIT = "consent_region", "country"


def regions(wh: Warehouse, settings: Settings | None = None) -> ir.Table:
    """``profile_id, region``: each profile's consent region, from its trait ``consent_region`` when set,
    else its ``country`` trait mapped by the ``consent_regions`` setting (upper case). Profiles with
    neither have no row (their purposes' own defaults hold)."""
    from touchpoint.config import get_settings

    return _regions(wh, (settings or get_settings()).consent_regions)


def _regions(wh: Warehouse, mapping: dict[str, str]) -> ir.Table:
    name = schema.PROFILE_TRAITS.name
    if not wh.has_table(name):
        return ibis.memtable(pa.table({"profile_id": pa.array([], pa.string()), "region": pa.array([], pa.string())}))
    t = wh.table(name)
    t = t.filter(t.trait.isin([REGION_TRAIT, COUNTRY_TRAIT]))
    text = t.value.cast("string")
    text = text.startswith('"').ifelse(text.substr(1, text.length() - 2), text).strip().upper()
    mapped = text.substitute(mapping, else_=text) if mapping else text
    region = (t.trait == REGION_TRAIT).ifelse(text, mapped)
    rank = (t.trait == REGION_TRAIT).ifelse(0, 1)
    t = t.mutate(tp_region=region, tp_rank=rank).filter(region != "")
    return t.group_by("profile_id").agg(region=t.tp_region.argmin(t.tp_rank))


def consenting(wh: Warehouse, people: ir.Table, purpose: str | None, **kw: Any) -> ir.Table:
    """Only the rows of ``people`` whose consent for ``purpose`` holds (same query, no extra column)."""
    t = with_consent(wh, people, purpose, column="tp_consent_ok", **kw)
    return t.filter(t.tp_consent_ok).drop("tp_consent_ok")


def analytics_events(wh: Warehouse, events: ir.Table | None = None) -> ir.Table:
    """``events`` without those the analytics purpose may not use: :func:`touchpoint.privacy.analytics.events`,
    the one door analytics reads go through."""
    from touchpoint.privacy import analytics

    return analytics.events(wh, events)


# -- writing -----------------------------------------------------------------------------------------------
def record(wh: Warehouse, rows: Sequence[dict[str, Any]]) -> int:
    """Append consent rows (the history's columns); a row already recorded (same key) is skipped."""
    if not rows:
        return 0
    table = pa.Table.from_pylist(list(rows), schema=schema.CONSENT_HISTORY.schema.to_pyarrow())
    with wh.write(lane="events") as tx:  # the lane the collector appends consent in
        return tx.insert_new(HISTORY, table)


def _who(wh: Warehouse, profile_id: str) -> tuple[str, str]:
    """The profile's most trusted identifier (a consent row outlives profile ids, which a rebuild may change)."""
    n = wh.table(identity_tables.NODES)
    hit = (
        n.filter(n.profile_id == profile_id)
        .order_by(["rank", "id_type", "id_value"])
        .select("id_type", "id_value")
        .limit(1)
    )
    rows = wh.to_arrow(hit).to_pylist()
    return (rows[0]["id_type"], rows[0]["id_value"]) if rows else ("profile_id", profile_id)


def _identify(wh: Warehouse, identifier: str, id_type: str | None = None) -> tuple[str, tuple[str, str]]:
    from touchpoint.identity.lookup import find_profile

    found = find_profile(wh, identifier, id_type)
    if found["matched_type"] == "profile_id":
        return found["profile_id"], _who(wh, found["profile_id"])
    return found["profile_id"], (found["matched_type"], found["matched_value"])


def set_consent(
    wh: Warehouse,
    identifier: str,
    purposes: Sequence[str] | str,
    granted: Any,
    *,
    source: str = "api",
    actor: str | None = None,
    proof: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    id_type: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Record that the person ``identifier`` names granted (or denied) ``purposes``; returns the rows."""
    if not isinstance(granted, bool):
        raise InvalidInput(f"granted: {granted!r} is not true or false", hint="send granted: true or false")
    names = [purposes] if isinstance(purposes, str) else list(purposes)
    if not names:
        raise InvalidInput("purposes: none given", hint="name at least one purpose, e.g. marketing_email")
    checked = [P.check(p, f"purposes[{i}]" if len(names) > 1 else "purpose", settings) for i, p in enumerate(names)]
    if source not in SOURCES:
        raise InvalidInput(f"source: {source!r} is not known", hint=f"use one of {', '.join(SOURCES)}")
    start = _naive(valid_from, "valid_from")
    end = _naive(valid_until, "valid_until") if valid_until else None
    if end is not None and end <= start:
        raise InvalidInput("valid_until: it must be after valid_from", hint="leave it out for 'until changed'")
    profile_id, (kind, value) = _identify(wh, identifier, id_type)
    proof = proof or uuid.uuid4().hex
    at = now()
    rows = [
        {
            "consent_id": consent_id(source, proof, kind, value, p),
            "identifier_type": kind,
            "identifier": value,
            "purpose": p,
            "granted": granted,
            "source": source,
            "proof": proof,
            "actor": actor,
            "valid_from": start,
            "valid_until": end,
            "recorded_at": at,
        }
        for p in dict.fromkeys(checked)
    ]
    record(wh, rows)
    return {"profile_id": profile_id, "recorded": [_public(r) for r in rows]}


def record_unsubscribe(wh: Warehouse, profile_id: str, purpose: str, token: str) -> dict[str, Any]:
    """A denial of ``purpose`` from an unsubscribe link; again with the same token records nothing new."""
    kind, value = _who(wh, profile_id)
    proof = "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    at = now()
    row = {
        "consent_id": consent_id("unsubscribe", proof, kind, value, purpose),
        "identifier_type": kind,
        "identifier": value,
        "purpose": purpose,
        "granted": False,
        "source": "unsubscribe",
        "proof": proof,
        "actor": None,
        "valid_from": at,
        "valid_until": None,
        "recorded_at": at,
    }
    return {"recorded": record(wh, [row])}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "consent_id"}
    for key in ("valid_from", "valid_until", "recorded_at", "since"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    return out


def _region_of(wh: Warehouse, mapping: tuple[tuple[str, str], ...], profile_id: str) -> ir.Column:
    r = _regions(wh, dict(mapping))
    return r.filter(r.profile_id == profile_id).region


def _stated_of(wh: Warehouse, profile_id: str, at: str) -> ir.Table:
    s = state(wh, at=ibis.literal(at).cast("timestamp"))
    return s.filter(s.profile_id == profile_id)


def _history_of(wh: Warehouse, profile_id: str) -> ir.Table:
    h = history(wh)
    return h.filter(h.profile_id == profile_id).order_by([h.valid_from.desc(), h.recorded_at.desc()])


def show(
    wh: Warehouse, identifier: str, *, id_type: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """A person's consent: the state of every purpose now (stated or by default) and the history."""
    from touchpoint.config import get_settings
    from touchpoint.identity.lookup import find_profile

    profile_id = find_profile(wh, identifier, id_type)["profile_id"]
    mapping = tuple(sorted((settings or get_settings()).consent_regions.items()))
    found = wh.prepared(_region_of, profile_id, key=mapping).to_pylist()
    region = found[0] if found else None
    stated = {r["purpose"]: r for r in wh.prepared(_stated_of, profile_id, now().isoformat()).to_pylist()}
    rows = [
        _public({k: v for k, v in r.items() if k != "profile_id"})
        for r in wh.prepared(_history_of, profile_id).to_pylist()
    ]
    hit_source: dict[str, str] = {}  # the source of the statement in force: the newest row that says it
    for row in rows:
        hit = stated.get(row["purpose"])
        if (
            hit is not None
            and row["purpose"] not in hit_source
            and row["granted"] == hit["granted"]
            and row["valid_from"] == hit["since"].isoformat()
        ):
            hit_source[row["purpose"]] = row["source"]
    current = []
    for purpose in sorted(P.purposes(settings)):
        hit = stated.get(purpose)
        default = P.default_granted(purpose, settings, region=region)
        current.append(
            {
                "purpose": purpose,
                "granted": bool(hit["granted"]) if hit else default,
                "stated": hit is not None,
                "default": P.OPT_OUT if default else P.OPT_IN,
                "since": hit["since"].isoformat() if hit else None,
                "source": hit_source.get(purpose) if hit else "default",
            }
        )
    return {"profile_id": profile_id, "region": region, "purposes": current, "history": rows}
