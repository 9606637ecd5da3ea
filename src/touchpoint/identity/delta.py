"""The incremental update's fast paths: statistics only where nothing can change, memory where little does.

New events are sorted by what they can change (:func:`apply`):

* **Statistics only.** An identifier already known, seen again no earlier than it was first seen, on
  events that bring no pair of identifiers not linked before, cannot change any partition: the
  partition is a function of the identifiers, their links, their first-seen instants and types, and
  the overrides, and none of those changed. Such identifiers get their ``last_seen`` and ``events``
  bumped (and the links they repeat their counts); their component is not recomputed. Most traffic
  (page views and tracks of a known visitor) is of this kind.
* **Components that changed** (a new identifier, a new link, an identifier seen earlier than before)
  are re-resolved whole, old links and new, as before. When their identifiers number at most
  :data:`MEMORY_NODES`, their rows are pulled into Python and resolved there
  (:func:`touchpoint.identity.memory.partition`, the same rules as the engine's); a larger change
  returns ``None`` and the caller takes the engine path (label propagation in SQL).

Both kinds are written in one transaction. The result equals a full rebuild
(tests/identity/test_identity_properties.py compares them over random event streams).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.identity import memory, store
from touchpoint.identity import tables as T
from touchpoint.identity.components import Scratch
from touchpoint.identity.extract import centers, column_ids, identifiers, node_stats, pair_stats
from touchpoint.identity.rules import MergeRules
from touchpoint.warehouse import Warehouse

#: Largest number of identifiers (in the components a batch changes) resolved in memory.
MEMORY_NODES = 50_000

#: The identifier types of the plain columns, most trusted first (extract.column_ids), by rules' fingerprint.
_TYPES: dict[tuple[str], list[str]] = {}

Key = tuple[str, str]
Pair = tuple[int, int]


@dataclass
class Delta:
    """What :func:`apply` did (the caller turns it into a ``ResolveResult``)."""

    path: str  # statistics | memory
    identifiers: int = 0
    links: int = 0
    refused_links: int = 0
    profiles: int = 0
    components_recomputed: int = 0
    conflicted_components: int = 0
    merges_logged: int = 0
    statistics_updated: int = 0
    changed_profiles: list[str] = field(default_factory=list)
    touched_profiles: list[str] = field(default_factory=list)
    #: changed profiles made of new identifiers only
    new_profiles: list[str] = field(default_factory=list)
    #: ``message_id, profile_id`` of the new events (their profile after the update)
    new_events: pa.Table | None = None


def _early(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _late(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _merge_link(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two observations of one link combined, as the engine's ``_combine_links`` does."""
    out = dict(old)
    if new["first_seen"] is not None and (old["first_seen"] is None or new["first_seen"] < old["first_seen"]):
        out["message_id"] = new["message_id"]
    out["first_seen"] = _early(old["first_seen"], new["first_seen"])
    out["last_seen"] = _late(old["last_seen"], new["last_seen"])
    out["events"] = (old["events"] or 0) + (new["events"] or 0)
    return out


def _ids(name: str, values: list[int]) -> ir.Table:
    return ibis.memtable(pa.table({name: pa.array(sorted(values), pa.int64())}))


def _rows(wh: Warehouse, expr: ir.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = wh.to_arrow(expr).to_pylist()
    return rows


def apply(
    wh: Warehouse, s: Scratch, rules: MergeRules, new_events: ir.Table, *, json_ids: bool = True, paired: bool = True
) -> Delta | None:
    """Resolve ``new_events`` by the fast paths and write the result; ``None`` (nothing written)
    when the components they change are too large to resolve in memory. ``json_ids=False`` says no new
    event's JSON mentions a key identifiers are read from (:func:`~touchpoint.identity.extract.json_mentioned`):
    their table is then created empty, without running its query. ``paired=False`` says no new event has two
    identifiers in its columns: without JSON identifiers they then bring no pair, and its query is not run."""
    # the same few queries every run: built and compiled once per rules (Scratch.save_query)
    key = (rules.fingerprint(),)
    types = _TYPES.get(key)
    if types is None:  # what the columns' identifier types are depends on the rules only
        types = _TYPES[key] = [t for t, _ in column_ids(new_events, rules)]
    wide = s.save_query("new_ids", key, lambda events: identifiers(events, rules)[0], events=new_events)
    save = s.save_query if json_ids else s.save_empty
    extra = save("new_extra_ids", key, lambda events: identifiers(events, rules)[2], events=new_events)
    stats = s.save_query("new_stats", key, lambda w, x: node_stats(w, types, x, rules), w=wide, x=extra)
    nodes = wh.table(T.NODES)
    known = nodes.select(
        "id_type",
        "id_value",
        "node_id",
        o_rank=nodes.rank,
        o_first=nodes.first_seen,
        o_last=nodes.last_seen,
        o_events=nodes.events,
        component=nodes.component,
        cluster=nodes.cluster,
        profile_id=nodes.profile_id,
    )
    j = stats.left_join(known, [stats.id_type == known.id_type, stats.id_value == known.id_value])
    seen = _rows(
        wh,
        j.select(
            stats.id_type,
            stats.id_value,
            stats.rank,
            stats.first_seen,
            stats.last_seen,
            stats.events,
            known.node_id,
            known.o_rank,
            known.o_first,
            known.o_last,
            known.o_events,
            known.component,
            known.cluster,
            known.profile_id,
        ),
    )
    pairs: list[dict[str, Any]] = []
    if paired or json_ids:
        pairs = _rows(wh, s.save_query("new_pairs", key, lambda w, x: pair_stats(w, types, x, rules), w=wide, x=extra))

    # node ids for the new identifiers (after the largest stored one)
    fresh = [r for r in seen if r["node_id"] is None]
    if fresh:
        top = wh.to_arrow(nodes.node_id.max()).as_py()
        base = int(top) if top is not None else 0
        for i, r in enumerate(sorted(fresh, key=lambda r: (r["id_type"], r["id_value"]))):
            r["node_id"] = base + 1 + i
    by_key: dict[Key, dict[str, Any]] = {(r["id_type"], r["id_value"]): r for r in seen}
    by_node = {r["node_id"]: r for r in seen}

    # the new links by node pair (src < dst), combined
    new_links: dict[Pair, dict[str, Any]] = {}
    for p in pairs:
        a, b = by_key[(p["a_type"], p["a_value"])]["node_id"], by_key[(p["b_type"], p["b_value"])]["node_id"]
        pair = (min(a, b), max(a, b))
        row = {k: p[k] for k in ("message_id", "first_seen", "last_seen", "events")}
        new_links[pair] = _merge_link(new_links[pair], row) if pair in new_links else row
    links = wh.table(T.LINKS)
    known_srcs = sorted({src for src, _ in new_links if by_node[src]["component"] is not None})
    stored: dict[Pair, dict[str, Any]] = {}
    if known_srcs:
        with wh.staged(_ids("src", known_srcs)) as srcs:
            assert isinstance(srcs, ir.Table)
            stored = {(r["src"], r["dst"]): r for r in _rows(wh, links.semi_join(srcs, "src"))}

    # what can change a partition: a new identifier, a new link, an identifier seen earlier than before
    dirty: set[int] = {r["node_id"] for r in fresh}
    for r in seen:
        seen_earlier = r["first_seen"] is not None and (r["o_first"] is None or r["first_seen"] < r["o_first"])
        if r["component"] is not None and seen_earlier:
            dirty.add(r["node_id"])
    for pair in new_links:
        if pair not in stored:
            dirty.update(pair)
    affected = sorted({by_node[n]["component"] for n in dirty if by_node[n]["component"] is not None})

    old_nodes: list[dict[str, Any]] = []
    old_links: list[dict[str, Any]] = []
    if affected:
        with wh.staged(_ids("component", affected)) as comps:
            assert isinstance(comps, ir.Table)
            old_nodes = _rows(wh, nodes.semi_join(comps, "component").limit(MEMORY_NODES + 1))
    if len(old_nodes) + len(fresh) > MEMORY_NODES:
        return None  # a large change: the engine resolves it
    if affected:
        with wh.staged(_ids("src", [r["node_id"] for r in old_nodes])) as srcs:
            assert isinstance(srcs, ir.Table)
            old_links = _rows(wh, links.semi_join(srcs, "src"))

    out = Delta(path="memory" if (affected or fresh) else "statistics", components_recomputed=len(affected))
    now = store.now()
    node_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    delete_nodes: list[int] = []
    delete_srcs: set[int] = set()

    # 1. statistics only: touched identifiers of unchanged components, and the links they repeat
    affected_set = set(affected)
    touched: set[str] = set()
    for r in seen:
        if r["component"] is None or r["component"] in affected_set:
            continue
        node_rows.append(
            {
                "node_id": r["node_id"],
                "id_type": r["id_type"],
                "id_value": r["id_value"],
                "rank": min(r["o_rank"], r["rank"]),
                "first_seen": _early(r["o_first"], r["first_seen"]),
                "last_seen": _late(r["o_last"], r["last_seen"]),
                "events": (r["o_events"] or 0) + (r["events"] or 0),
                "component": r["component"],
                "cluster": r["cluster"],
                "profile_id": r["profile_id"],
            }
        )
        delete_nodes.append(r["node_id"])
        touched.add(r["profile_id"])
    clean_srcs = {src for (src, _) in new_links if src not in dirty and by_node[src]["component"] not in affected_set}
    for pair, row in stored.items():
        if pair[0] not in clean_srcs:
            continue
        link_rows.append(_merge_link(row, new_links[pair]) if pair in new_links else row)
        delete_srcs.add(pair[0])
    out.statistics_updated = len(node_rows)

    # 2. the changed components, old links and new, resolved in memory
    if affected or fresh:
        sub: dict[int, dict[str, Any]] = {r["node_id"]: dict(r) for r in old_nodes}
        old_profile = {r["node_id"]: r["profile_id"] for r in old_nodes}
        for r in seen:
            n = r["node_id"]
            if n in sub:
                o = sub[n]
                o["rank"] = min(o["rank"], r["rank"])
                o["first_seen"] = _early(o["first_seen"], r["first_seen"])
                o["last_seen"] = _late(o["last_seen"], r["last_seen"])
                o["events"] = (o["events"] or 0) + (r["events"] or 0)
            elif r["component"] is None:
                sub[n] = {
                    k: r[k] for k in ("node_id", "id_type", "id_value", "rank", "first_seen", "last_seen", "events")
                }
        sub_links: dict[Pair, dict[str, Any]] = {(r["src"], r["dst"]): r for r in old_links}
        for pair, row in new_links.items():
            if pair[0] in sub:
                sub_links[pair] = (
                    _merge_link(sub_links[pair], row) if pair in sub_links else dict(row, src=pair[0], dst=pair[1])
                )
        split_nodes, forced = _overrides(wh, sub)
        part = memory.partition(
            [memory.Node(n, r["id_type"], r["id_value"], r["rank"], r["first_seen"]) for n, r in sub.items()],
            list(sub_links),
            rules,
            split_nodes,
            forced,
        )
        new_profile: dict[int, str] = {}
        for n, r in sub.items():
            a = part.assign[n]
            new_profile[n] = a.profile_id
            node_rows.append(
                {k: r[k] for k in ("node_id", "id_type", "id_value", "rank", "first_seen", "last_seen", "events")}
                | {"component": a.component, "cluster": a.cluster, "profile_id": a.profile_id}
            )
        final_links = []
        for pair, row in sub_links.items():
            reason = part.refused.get(pair)
            final_links.append(
                {
                    "src": pair[0],
                    "dst": pair[1],
                    "message_id": row["message_id"],
                    "first_seen": row["first_seen"],
                    "last_seen": row["last_seen"],
                    "events": row["events"],
                    "status": "refused" if reason is not None else "accepted",
                    "reason": reason,
                }
            )
        link_rows.extend(final_links)
        delete_nodes.extend(old_profile)
        delete_srcs.update(old_profile)
        log = memory.merge_log(old_profile, new_profile, final_links, now)
        for row in log:
            for end, prefix in (("src_node", "src"), ("dst_node", "dst")):
                node = row.pop(end, None)
                if node is not None and node in sub:
                    row[f"{prefix}_type"], row[f"{prefix}_value"] = sub[node]["id_type"], sub[node]["id_value"]
        out.merges_logged = len(log)
        out.identifiers = len(sub)
        out.profiles = len(set(new_profile.values()))
        out.links = len(final_links)
        out.refused_links = sum(1 for lk in final_links if lk["status"] == "refused")
        out.conflicted_components = part.conflicted_components
        out.changed_profiles = sorted(set(old_profile.values()) | set(new_profile.values()))
    else:
        log = []
    out.touched_profiles = sorted(touched - set(out.changed_profiles))
    # each new event's node: its most trusted identifier (event_identities), and so its profile
    event_mids: list[str] = []
    event_nodes: list[int] = []
    new_centers = s.save_query("new_centers", key, lambda w, x: centers(w, types, x, rules), w=wide, x=extra)
    for c in wh.to_arrow(new_centers).to_pylist():
        center = by_key.get((c["center_type"], c["center_value"]))
        if center is not None:
            event_mids.append(c["message_id"])
            event_nodes.append(center["node_id"])
    if out.touched_profiles or out.changed_profiles:
        # each new event's profile, for the profile refresh
        profile_of = {r["node_id"]: r["profile_id"] for r in seen if r["profile_id"] is not None}
        if affected or fresh:
            profile_of.update(new_profile)
            # profiles made of new identifiers only: every event of theirs is a new one
            out.new_profiles = sorted(set(new_profile.values()) - {new_profile[n] for n in old_profile})
        mids, pids = [], []
        for mid, node in zip(event_mids, event_nodes, strict=True):
            pid = profile_of.get(node)
            if pid is not None:
                mids.append(mid)
                pids.append(pid)
        out.new_events = pa.table(
            {"message_id": pa.array(mids, pa.string()), "profile_id": pa.array(pids, pa.string())}
        )

    with contextlib.ExitStack() as stack:
        steps: list[Any] = []
        if event_mids:  # node ids are stable: the new events' rows are added, no stored row changes
            mids = pa.table(
                {"message_id": pa.array(event_mids, pa.string()), "node_id": pa.array(event_nodes, pa.int64())}
            )
            # staged first: the rows' expression is then over tables of the same names every run (compiled once)
            staged = stack.enter_context(wh.staged(ibis.memtable(mids)))
            assert isinstance(staged, ir.Table)
            rows = store.event_rows(staged, new_events)  # with each event's kind, times and properties
            steps.append((T.EVENTS, "message_id", None, rows, T.EVENTS_SCHEMA))
        _write(wh, steps, node_rows, delete_nodes, link_rows, delete_srcs)
    if log:
        store.append(wh, T.MERGE_LOG, store.merge_log_rows(log))
    return out


def _write(
    wh: Warehouse,
    steps: list[Any],
    node_rows: list[dict[str, Any]],
    delete_nodes: list[int],
    link_rows: list[dict[str, Any]],
    delete_srcs: set[int],
) -> None:
    """Write the new events' rows (``steps``), the nodes and the links in one transaction."""
    if delete_nodes or node_rows:
        rows = pa.Table.from_pylist(node_rows, schema=T.NODES_SCHEMA.to_pyarrow())
        steps.append(
            (T.NODES, "node_id", _ids("node_id", delete_nodes) if delete_nodes else None, rows, T.NODES_SCHEMA)
        )
    if delete_srcs or link_rows:
        rows = pa.Table.from_pylist(link_rows, schema=T.LINKS_SCHEMA.to_pyarrow())
        steps.append((T.LINKS, "src", _ids("src", sorted(delete_srcs)) if delete_srcs else None, rows, T.LINKS_SCHEMA))
    if steps:
        store.replace_rows(wh, steps)


def _overrides(wh: Warehouse, sub: dict[int, dict[str, Any]]) -> tuple[set[int], list[tuple[int, int]]]:
    """Manual splits (node ids) and merges (node id pairs) among the identifiers ``sub``."""
    ov = wh.to_arrow(store.overrides(wh)).to_pylist()
    if not ov:
        return set(), []
    ids = {(r["id_type"], r["id_value"]): n for n, r in sub.items()}
    splits = {
        ids[(o["id_type"], o["id_value"])] for o in ov if o["kind"] == "split" and (o["id_type"], o["id_value"]) in ids
    }
    forced = [
        (ids[(o["id_type"], o["id_value"])], ids[(o["other_type"], o["other_value"])])
        for o in ov
        if o["kind"] == "merge" and (o["id_type"], o["id_value"]) in ids and (o["other_type"], o["other_value"]) in ids
    ]
    return splits, forced
