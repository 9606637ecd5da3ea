"""Reading profiles: one profile with its identifiers, traits and merge history; search by trait.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint import identity, profiles
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "anonymousId": "a1",
...                          "traits": {"email": "Ann@x.org", "plan": "pro"}}])
>>> _ = identity.rebuild(wh); _ = profiles.build(wh)
>>> p = get_profile(wh, "ann@x.org")
>>> p["traits"]["plan"], sorted(i["type"] for i in p["identifiers"])
('pro', ['anonymous_id', 'email', 'user_id'])
>>> [r["profile_id"] for r in search(wh, {"plan": "pro"})["profiles"]] == [p["profile_id"]]
True
"""

from __future__ import annotations

import json
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.identity import store, tables
from touchpoint.identity.lookup import candidates, find_profile
from touchpoint.profiles import pending
from touchpoint.profiles.build import PROFILES, PROFILES_SCHEMA, TRAITS
from touchpoint.warehouse import Warehouse

#: Computed traits one can search on, and how a query-string value is read for each.
COMPUTED = {name: dtype for name, dtype in PROFILES_SCHEMA.items() if name not in ("as_of", "built_at")}


def _require(wh: Warehouse) -> None:
    if not store.has_rows(wh, PROFILES):
        raise NotFound("profiles have not been built yet", hint="run `touchpoint profiles rebuild`")


def _profile_row(wh: Warehouse, profile_id: str) -> ir.Table:
    p = wh.table(PROFILES)
    return p.filter(p.profile_id == profile_id)


def _identifiers(wh: Warehouse, profile_id: str) -> ir.Table:
    nodes = wh.table(tables.NODES)
    return nodes.filter(nodes.profile_id == profile_id).order_by(["rank", "first_seen"])


def _traits(wh: Warehouse, profile_id: str) -> ir.Table:
    t = wh.table(TRAITS)
    return t.filter(t.profile_id == profile_id).order_by("trait")


def _merges(wh: Warehouse, profile_id: str) -> ir.Table:
    log = wh.table(tables.MERGE_LOG)
    needle = "," + ibis.literal(profile_id) + ","  # built in SQL: the id stays one literal, bound once prepared
    mine = log.filter((log.profile_id == profile_id) | ("," + log.merged_profile_ids + ",").contains(needle))
    return mine.order_by(log.logged_at.desc()).limit(100)


def _row(wh: Warehouse, profile_id: str) -> dict[str, Any]:
    rows = wh.prepared(_profile_row, profile_id).to_pylist()
    if not rows:
        raise NotFound(
            f"profile {profile_id} has identities but no profile row yet",
            hint="run `touchpoint profiles rebuild` (or `update`) to refresh the profiles",
        )
    return rows[0]


def get_profile(
    wh: Warehouse, identifier: str, id_type: str | None = None, *, provisional: bool = True
) -> dict[str, Any]:
    """The profile of any identifier: computed traits, traits (with source), identifiers, merge history,
    and what events stored since the last identity update add (:mod:`touchpoint.profiles.pending`).

    An identifier only such events carry gets a provisional profile (``profile_id`` None) unless
    ``provisional`` is false.
    """
    state = store.read_state(wh)  # read first: what the profile rows hold is at least this recent
    mark = pending.watermark(wh, state)
    try:
        _require(wh)
        found = find_profile(wh, identifier, id_type, state=state)
    except NotFound:
        cc = (state.get("rules") or {}).get("default_country_code")
        early = pending.provisional(wh, candidates(identifier, id_type, cc), id_type, mark) if provisional else None
        if early is None:
            raise
        return early
    pid = found["profile_id"]
    row = _row(wh, pid)
    identifiers = [
        {
            "type": r["id_type"],
            "value": r["id_value"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "events": r["events"],
        }
        for r in wh.prepared(_identifiers, pid).to_pylist()
    ]
    traits, sources = {}, {}
    for r in wh.prepared(_traits, pid).to_pylist():
        traits[r["trait"]] = json.loads(r["value"])
        sources[r["trait"]] = {
            "source": r["source"],
            "timestamp": r["timestamp"],
            "message_id": r["message_id"],
        }
    history: list[dict[str, Any]] = wh.prepared(_merges, pid).to_pylist()
    profile = {
        "profile_id": pid,
        "matched": {
            "type": found["matched_type"],
            "value": found["matched_value"],
            "redirected_from": found["redirected_from"],
        },
        "computed": {k: v for k, v in row.items() if k != "profile_id"},
        "traits": traits,
        "trait_sources": sources,
        "identifiers": identifiers,
        "merge_history": history,
    }
    return pending.overlay(wh, profile, mark)


def _coerce(name: str, text: str) -> Any:
    dtype = COMPUTED[name]
    try:
        if dtype.is_integer():
            return int(text)
        if dtype.is_floating():
            return float(text)
    except ValueError:
        raise InvalidInput(f"{name}={text!r}: {name} is a number", hint=f"e.g. {name}=3") from None
    return text


def search(wh: Warehouse, criteria: dict[str, str], *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Profiles matching every ``trait=value`` in ``criteria`` (computed traits such as ``rfm`` or
    ``orders`` compare exactly; other traits compare with their stored value: ``plan=pro``, ``vip=true``)."""
    _require(wh)
    if not criteria:
        raise InvalidInput("no search criteria", hint="pass at least one trait=value, e.g. plan=pro or rfm=555")
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit {limit} is outside 1..1000")
    p = wh.table(PROFILES)
    t = wh.table(TRAITS)
    for name, text in criteria.items():
        if name in COMPUTED:
            p = p.filter(p[name] == _coerce(name, text))
            continue
        wanted = [json.dumps(text), text]
        hits = t.filter((t.trait == name) & t.value.isin(wanted)).select("profile_id")
        p = p.filter(p.profile_id.isin(hits.profile_id))
    total = int(p.count().to_pyarrow().as_py())
    rows = wh.to_arrow(p.order_by(p.last_seen.desc(), p.profile_id).limit(limit, offset=offset)).to_pylist()
    return {"total": total, "limit": limit, "offset": offset, "criteria": criteria, "profiles": rows}


def stats(wh: Warehouse) -> dict[str, Any]:
    """Counts for a quick health check of the identity graph and the profiles."""
    nodes = wh.table(tables.NODES)
    links = wh.table(tables.LINKS)
    by_type = nodes.group_by("id_type").agg(n=nodes.count()).order_by("id_type").to_pyarrow().to_pylist()
    sizes = nodes.group_by("profile_id").agg(n=nodes.count())
    size = sizes.aggregate(profiles=sizes.count(), largest=sizes.n.max(), multi=(sizes.n > 1).sum())
    srow = size.to_pyarrow().to_pylist()[0]
    lrow = links.aggregate(links=links.count(), refused=(links.status == "refused").sum()).to_pyarrow().to_pylist()[0]
    return {
        "profiles": int(srow["profiles"]),
        "profiles_with_several_identifiers": int(srow["multi"] or 0),
        "largest_profile_identifiers": int(srow["largest"] or 0),
        "identifiers_by_type": {r["id_type"]: int(r["n"]) for r in by_type},
        "links": int(lrow["links"]),
        "refused_links": int(lrow["refused"] or 0),
        "refusal_reasons": _reasons(links),
    }


def _reasons(links: Any) -> dict[str, int]:
    r = links.filter(links.status == "refused")
    kind = ibis.ifelse(r.reason.startswith("manual"), r.reason, r.reason.split(":")[0])
    rows = r.group_by(kind.name("kind")).agg(n=r.count()).to_pyarrow().to_pylist()
    return {row["kind"]: int(row["n"]) for row in rows}
