"""Manual corrections: split an identifier out of a profile, merge two profiles.

Both are recorded in ``identity_overrides`` (so a rebuild keeps them) and in the merge log, and
both recompute only the components involved. Raw identifiers on events are never rewritten.

* :func:`split` cuts every link of one identifier: it becomes its own profile, together with any
  identifier that was only linked to the profile through it.
* :func:`merge` lifts the manual splits that separated the two profiles (undoing a split exactly);
  when there is none to lift, it records a forced link between them, which holds even against the
  per-type limits.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint.identity import rebuild, resolve
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "anonymousId": "ipad"},
...                         {"type": "identify", "anonymousId": "ipad", "traits": {"email": "bo@x.org"}}])
>>> _ = rebuild(wh)
>>> before = resolve(wh, "u1")
>>> resolve(wh, "bo@x.org") == before
True
>>> out = split(wh, before, "ipad")
>>> len({resolve(wh, "u1"), resolve(wh, "ipad"), resolve(wh, "bo@x.org")})
3
>>> merge(wh, resolve(wh, "u1"), resolve(wh, "ipad"))["profile_id"] == before
True
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.identity import store
from touchpoint.identity import tables as T
from touchpoint.identity.graph import recompute_components, saved_rules
from touchpoint.identity.lookup import candidates, find_profile
from touchpoint.identity.rules import MergeRules
from touchpoint.warehouse import Warehouse


def _rules(wh: Warehouse, rules: MergeRules | None) -> MergeRules:
    return rules if rules is not None else saved_rules(wh)


def _members(wh: Warehouse, profile_id: str) -> list[dict[str, Any]]:
    nodes = wh.table(T.NODES)
    rows = nodes.filter(nodes.profile_id == profile_id).select(
        "node_id", "id_type", "id_value", "component", "first_seen", "rank"
    )
    return rows.to_pyarrow().to_pylist()


def _add_override(wh: Warehouse, row: dict[str, Any]) -> None:
    schema = T.OVERRIDES_SPEC.schema.to_pyarrow()
    full = {name: [row.get(name)] for name in schema.names}
    full["created_at"] = [store.now()]
    store.append(wh, T.OVERRIDES, pa.table(full, schema=schema))


@store.alone
def split(
    wh: Warehouse,
    profile: str,
    identifier: str,
    id_type: str | None = None,
    *,
    note: str | None = None,
    rules: MergeRules | None = None,
) -> dict[str, Any]:
    """Undo a bad merge: cut ``identifier`` (of ``profile``) from everything it linked, then recompute.

    Returns ``{"profile_id", "split_profile_id", "identifier", "result"}``.
    """
    rules = _rules(wh, rules)
    profile_id = find_profile(wh, profile)["profile_id"]
    members = _members(wh, profile_id)
    forms = set(candidates(identifier, id_type, rules.default_country_code))
    hits = [m for m in members if m["id_value"] in forms and (id_type is None or m["id_type"] == id_type)]
    if not hits:
        raise NotFound(
            f"profile {profile_id} has no identifier {identifier!r}",
            hint=f"`touchpoint profiles show {profile_id}` lists its identifiers",
        )
    node = sorted(hits, key=lambda m: m["rank"])[0]
    if len(members) == 1:
        raise InvalidInput(
            f"{node['id_type']} {node['id_value']!r} is the only identifier of profile {profile_id}",
            hint="there is nothing to split it from",
        )
    _add_override(wh, {"kind": "split", "id_type": node["id_type"], "id_value": node["id_value"], "note": note})
    result = recompute_components(wh, [node["component"]], rules, note=note or f"split {node['id_type']}")
    remaining = [m for m in members if m["node_id"] != node["node_id"]]
    keep = find_profile(wh, remaining[0]["id_value"], remaining[0]["id_type"])["profile_id"] if remaining else None
    split_off = find_profile(wh, node["id_value"], node["id_type"])["profile_id"]
    return {
        "profile_id": keep,
        "split_profile_id": split_off,
        "identifier": {"type": node["id_type"], "value": node["id_value"]},
        "result": result.to_dict(),
    }


@store.alone
def merge(
    wh: Warehouse, first: str, second: str, *, note: str | None = None, rules: MergeRules | None = None
) -> dict[str, Any]:
    """Join two profiles (given by profile id or any identifier) into one; returns ``{"profile_id", ...}``."""
    rules = _rules(wh, rules)
    a = find_profile(wh, first)["profile_id"]
    b = find_profile(wh, second)["profile_id"]
    if a == b:
        raise InvalidInput(f"{first!r} and {second!r} are already the same profile ({a})")
    members_a, members_b = _members(wh, a), _members(wh, b)
    members = members_a + members_b
    keys = {(m["id_type"], m["id_value"]) for m in members}
    ov = wh.to_arrow(store.overrides(wh)).to_pylist()
    lifted = [r for r in ov if r["kind"] == "split" and (r["id_type"], r["id_value"]) in keys]
    components = {m["component"] for m in members}
    if lifted:
        kept = [r for r in ov if r not in lifted]
        schema = T.OVERRIDES_SPEC.schema.to_pyarrow()
        wh.replace(T.OVERRIDES, pa.Table.from_pylist(kept, schema=schema))
        result = recompute_components(wh, sorted(components), rules, note=note or "manual merge (split lifted)")
        # lifting the splits is the undo the person asked for; the limits still apply, so the
        # members may land in more than one profile again (e.g. two user ids): report where
        now = sorted({find_profile(wh, m["id_value"], m["id_type"])["profile_id"] for m in members})
        first_now = find_profile(wh, members_a[0]["id_value"], members_a[0]["id_type"])["profile_id"]
        return {
            "profile_id": first_now,
            "profiles": now,
            "lifted_splits": len(lifted),
            "forced_link": False,
            "result": result.to_dict(),
        }
    anchor_a = min(members_a, key=lambda m: (m["first_seen"], m["rank"], m["id_value"]))
    anchor_b = min(members_b, key=lambda m: (m["first_seen"], m["rank"], m["id_value"]))
    _add_override(
        wh,
        {
            "kind": "merge",
            "id_type": anchor_a["id_type"],
            "id_value": anchor_a["id_value"],
            "other_type": anchor_b["id_type"],
            "other_value": anchor_b["id_value"],
            "note": note,
        },
    )
    result = recompute_components(wh, sorted(components), rules, note=note or "manual merge")
    merged = find_profile(wh, anchor_a["id_value"], anchor_a["id_type"])["profile_id"]
    return {
        "profile_id": merged,
        "lifted_splits": len(lifted),
        "forced_link": True,
        "result": result.to_dict(),
    }


def list_overrides(wh: Warehouse) -> list[dict[str, Any]]:
    """Every manual split and merge, oldest first."""
    ov = store.overrides(wh)
    return ov.order_by("created_at").to_pyarrow().to_pylist()
