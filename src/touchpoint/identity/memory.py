"""The merge rules applied in memory: the Python twin of :func:`touchpoint.identity.partition.partition`.

An incremental update usually touches a few small components (a new visitor, an identify that joins
an anonymous id to a user). Resolving those in the engine costs dozens of compiled statements and
label-propagation rounds; here the same rules run over the rows of the touched components with a
union-find and a breadth-first search, in milliseconds. The rules are the SQL path's, step by step
(a property test compares both with a full rebuild over random event streams):

1. links touching a manually split identifier are refused ("manual split");
2. components: union-find over every link and manual merge, labelled by their smallest node id;
3. a component over a type's limit is cut type by type (priority order): that type's identifiers
   are seeds (the first ``limit`` by first seen, then value, share one label), every identifier
   joins its nearest seed (ties: the earlier seed); identifiers no seed reaches share the label of
   the smallest among them; links between the resulting clusters are refused with the reason;
4. manual merges join clusters again;
5. a profile's anchor is its identifier seen first (then most trusted type, then value).

>>> from datetime import datetime
>>> t = datetime(2026, 1, 1)
>>> nodes = [Node(1, "user_id", "u1", 0, t), Node(2, "anonymous_id", "a", 1003, t),
...          Node(3, "user_id", "u2", 0, datetime(2026, 1, 2))]
>>> out = partition([n for n in nodes], [(1, 2), (2, 3)], MergeRules())
>>> out.assign[1].profile_id == out.assign[2].profile_id != out.assign[3].profile_id
True
>>> out.refused
{(2, 3): "user_id limit 1: would join user_id 'u1' and 'u2' in one profile"}
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from touchpoint.identity.rules import MergeRules

_LATEST = datetime.max


@dataclass(frozen=True)
class Node:
    node_id: int
    id_type: str
    id_value: str
    rank: int
    first_seen: datetime | None


@dataclass(frozen=True)
class Assigned:
    component: int
    cluster: int
    profile_id: str


@dataclass
class Partition:
    """``assign``: node id → component, cluster, profile; ``refused``: ``(src, dst)`` → reason."""

    assign: dict[int, Assigned]
    refused: dict[tuple[int, int], str] = field(default_factory=dict)
    conflicted_components: int = 0


def profile_id(id_type: str, id_value: str) -> str:
    """``prf_`` + 24 hex digits of MD5(type:value): the twin of :func:`.partition.profile_id_expr`."""
    return "prf_" + hashlib.md5(f"{id_type}:{id_value}".encode()).hexdigest()[:24]  # an id, not a secret


def components(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Node id → the smallest node id of its connected component (union-find)."""
    parent: dict[int, int] = {n: n for n in nodes}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        if a not in parent or b not in parent:
            continue
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return {n: find(n) for n in parent}


def _seen(first_seen: datetime | None) -> datetime:
    return _LATEST if first_seen is None else first_seen  # the engine sorts NULL last


def partition(
    nodes: list[Node],
    links: list[tuple[int, int]],
    rules: MergeRules,
    split_nodes: set[int] | None = None,
    forced: list[tuple[int, int]] | None = None,
) -> Partition:
    """Resolve ``nodes`` linked by ``links`` (``src < dst`` node ids) under ``rules`` and the manual
    overrides (``split_nodes``: node ids cut from every link; ``forced``: node id pairs merged)."""
    split_nodes = split_nodes or set()
    forced = list(forced or [])
    by_id = {n.node_id: n for n in nodes}
    ids = list(by_id)
    component = components(ids, [*links, *forced])
    refused: dict[tuple[int, int], list[str]] = defaultdict(list)
    usable: list[tuple[int, int]] = []
    for src, dst in links:
        if src in split_nodes or dst in split_nodes:
            refused[(src, dst)].append("manual split")
        else:
            usable.append((src, dst))
    base = components(ids, usable)

    counts: dict[tuple[int, str], int] = defaultdict(int)
    for n in nodes:
        counts[(base[n.node_id], n.id_type)] += 1
    over = set()
    for (label, id_type), count in counts.items():
        cap = rules.limit(id_type)
        if cap is not None and count > cap:
            over.add(label)

    cluster = dict(base)
    if over:
        _split_conflicts(by_id, cluster, usable, over, rules, refused)
    if forced:
        edges = [(cluster[a], cluster[b]) for a, b in forced if a in cluster and b in cluster]
        merged = components(set(cluster.values()), [e for e in edges if e[0] != e[1]])
        cluster = {n: merged[c] for n, c in cluster.items()}

    anchors: dict[int, Node] = {}
    for n in nodes:
        c = cluster[n.node_id]
        best = anchors.get(c)
        if best is None or (_seen(n.first_seen), n.rank, n.id_value) < (
            _seen(best.first_seen),
            best.rank,
            best.id_value,
        ):
            anchors[c] = n
    names = {c: profile_id(a.id_type, a.id_value) for c, a in anchors.items()}
    assign = {n: Assigned(component=component[n], cluster=cluster[n], profile_id=names[cluster[n]]) for n in ids}
    return Partition(
        assign=assign,
        refused={pair: min(reasons) for pair, reasons in refused.items()},
        conflicted_components=len(over),
    )


def _split_conflicts(
    by_id: dict[int, Node],
    cluster: dict[int, int],
    usable: list[tuple[int, int]],
    over: set[int],
    rules: MergeRules,
    refused: dict[tuple[int, int], list[str]],
) -> None:
    """Cut the over-limit components in place (``cluster``: node id → cluster label)."""
    members = {n for n, c in cluster.items() if c in over}
    edges = [(a, b) for a, b in usable if a in members]
    types = sorted({(by_id[n].rank, by_id[n].id_type) for n in members})
    for _, id_type in types:
        limit = rules.limit(id_type)
        if limit is None:
            continue
        of_type: dict[int, list[Node]] = defaultdict(list)
        for n in members:
            if by_id[n].id_type == id_type:
                of_type[cluster[n]].append(by_id[n])
        over_now = {c for c, group in of_type.items() if len(group) > limit}
        if not over_now:
            continue
        # seeds: (cluster, seed_rank) → label; the first `limit` share the first one's node id
        seed_of: dict[int, int] = {}
        seed_label: dict[tuple[int, int], int] = {}
        names: dict[int, str] = {}
        for c in over_now:
            ordered = sorted(of_type[c], key=lambda n: (_seen(n.first_seen), n.id_value))
            first = ordered[0].node_id
            names[first] = ordered[0].id_value
            for rank, seed in enumerate(ordered):
                seed_of[seed.node_id] = rank
                seed_label[(c, rank)] = first if rank < limit else seed.node_id
                if rank >= limit:
                    names[seed.node_id] = seed.id_value
        in_over = [m for m in members if cluster[m] in over_now]
        neighbours: dict[int, list[int]] = defaultdict(list)
        for a, b in edges:
            if cluster.get(a) == cluster.get(b) and cluster[a] in over_now:
                neighbours[a].append(b)
                neighbours[b].append(a)
        # multi-source BFS: each node takes the smallest (distance, seed rank)
        best: dict[int, tuple[int, int]] = {n: (0, r) for n, r in seed_of.items()}
        frontier = sorted(seed_of)
        dist = 0
        while frontier:
            dist += 1
            reached: dict[int, tuple[int, int]] = {}
            for n in frontier:
                key = (dist, best[n][1])
                for m in neighbours[n]:
                    if m in best:
                        continue
                    if m not in reached or key < reached[m]:
                        reached[m] = key
            best.update(reached)
            frontier = list(reached)
        new_labels: dict[int, int] = {}
        stranded: dict[int, list[int]] = defaultdict(list)
        for n in in_over:
            c = cluster[n]
            if n in best:
                new_labels[n] = seed_label[(c, best[n][1])]
            else:
                stranded[c].append(n)
        for group in stranded.values():
            label = min(group)
            for n in group:
                new_labels[n] = label
        for a, b in edges:
            la, lb = new_labels.get(a), new_labels.get(b)
            if la is None or lb is None or la == lb:
                continue
            first_name, second_name = names.get(la, "?"), names.get(lb, "?")
            low, high = min(first_name, second_name), max(first_name, second_name)
            refused[(a, b)].append(f"{id_type} limit {limit}: would join {id_type} '{low}' and '{high}' in one profile")
        cluster.update(new_labels)


def merge_log(
    old: dict[int, str],
    new: dict[int, str],
    links: list[dict[str, Any]],
    now: datetime,
    note: str | None = None,
    manual: bool = False,
) -> list[dict[str, Any]]:
    """Merge-log rows from the change of profiles (the twin of the engine's): ``old`` and ``new`` map
    node ids to profile ids before and after; ``links`` are the final links (``src, dst, status,
    message_id, first_seen``)."""
    olds_of_new: dict[str, set[str]] = defaultdict(set)
    news_of_old: dict[str, set[str]] = defaultdict(set)
    for node, before in old.items():
        after = new.get(node)
        if after is None:
            continue
        olds_of_new[after].add(before)
        news_of_old[before].add(after)
    merged = {p: ids for p, ids in olds_of_new.items() if len(ids) > 1}
    rows: list[dict[str, Any]] = []
    if merged:
        picks: dict[str, dict[str, Any]] = {}
        for lk in links:
            if lk["status"] != "accepted":
                continue
            src, dst = lk["src"], lk["dst"]
            if src not in old or dst not in old or src not in new or old[src] == old[dst]:
                continue
            p = new[src]
            got = picks.get(p)
            if got is None or (lk["first_seen"] is not None and (got["ts"] is None or lk["first_seen"] > got["ts"])):
                picks[p] = {"src": src, "dst": dst, "message_id": lk["message_id"], "ts": lk["first_seen"]}
        for p in sorted(merged):
            pick = picks.get(p, {})
            rows.append(
                {
                    "logged_at": now,
                    "kind": "manual_merge" if manual else "auto_merge",
                    "profile_id": p,
                    "merged_profile_ids": ",".join(sorted(merged[p])),
                    "message_id": pick.get("message_id"),
                    "event_timestamp": pick.get("ts"),
                    "src_node": pick.get("src"),
                    "dst_node": pick.get("dst"),
                    "note": note,
                }
            )
    for before in sorted(news_of_old):
        afters = news_of_old[before]
        if len(afters) > 1:
            rows.append(
                {
                    "logged_at": now,
                    "kind": "manual_split" if manual else "auto_split",
                    "profile_id": before,
                    "merged_profile_ids": ",".join(sorted(afters)),
                    "note": note or "a merge rule now refuses a link",
                }
            )
        elif len(afters) == 1:
            after = next(iter(afters))
            if after != before and after not in merged:
                rows.append(
                    {
                        "logged_at": now,
                        "kind": "renamed",
                        "profile_id": after,
                        "merged_profile_ids": before,
                        "note": "an earlier identifier became the profile's anchor",
                    }
                )
    return rows
