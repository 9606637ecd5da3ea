"""From identifiers and links to profiles: the merge rules applied to the identity graph.

:func:`partition` is a pure function of its inputs (no arrival order, no clock), so resolving
the whole graph and re-resolving only the components new events touched give the same answer:

1. Links touching a manually split identifier are refused ("manual split").
2. Connected components of the remaining links plus manual merges (:mod:`.components`).
3. A component holding more identifiers of a type than the rules allow is cut, type by type in
   priority order: the identifiers of that type become seeds (the first ``limit`` of them, by
   first seen, share one seed) and every identifier joins its nearest seed. Links between the
   resulting clusters are refused with the reason ("user_id limit 1: would join 'u1' and 'u2'").
4. Manual merges join clusters again, limits notwithstanding (a person decided).
5. A profile's anchor is its identifier seen first (ties: most trusted type, then value); the
   profile id is derived from the anchor, so it is stable across rebuilds and as profiles grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.identity.components import Scratch, connected_components, split_by_seeds
from touchpoint.identity.rules import MergeRules


@dataclass
class Partition:
    """``assign``: ``(node_id, component, cluster, profile_id)``; ``refused``: ``(src, dst, reason)``."""

    assign: ir.Table
    refused: ir.Table
    conflicted_components: int


def profile_id_expr(id_type: ir.StringValue, id_value: ir.StringValue) -> ir.StringValue:
    """``prf_`` + 24 hex digits of MD5(type:value): stable and free of personal data."""
    return "prf_" + (id_type + ":" + id_value).hexdigest("md5").substr(0, 24)


def _limit_expr(rules: MergeRules, id_type: ir.StringValue) -> ir.IntegerValue:
    cases = [
        (id_type == name, ibis.literal(limit, "int64")) for name, limit in rules.limits.items() if limit is not None
    ]
    unlimited = [name for name, limit in rules.limits.items() if limit is None]
    default = ibis.literal(rules.default_limit, "int64") if rules.default_limit is not None else ibis.null("int64")
    if unlimited:
        cases.append((id_type.isin(unlimited), ibis.null("int64")))
    return ibis.cases(*cases, else_=default) if cases else default


def partition(
    scratch: Scratch,
    nodes: ir.Table,
    links: ir.Table,
    rules: MergeRules,
    split_nodes: ir.Table | None = None,
    forced: ir.Table | None = None,
) -> Partition:
    """Resolve ``nodes`` (``node_id, id_type, id_value, rank, first_seen``) linked by ``links``
    (``src, dst``) into profiles. ``split_nodes`` (``node_id``) and ``forced`` (``src, dst``) are
    the manual overrides."""
    n = nodes.select("node_id", "id_type", "id_value", "rank", "first_seen")
    l2 = links.select("src", "dst")
    # materialised so that joins against tables derived from the same nodes stay unambiguous
    if forced is not None:
        forced = scratch.save(forced.select("src", "dst"), "forced")
    if split_nodes is not None:
        split_nodes = scratch.save(split_nodes.select("node_id"), "split_nodes")
    all_edges = scratch.save(
        l2 if forced is None else l2.union(forced.select("src", "dst"), distinct=False), "all_edges"
    )
    # the component: everything linked in any way (refused, split or forced links too). It is the
    # unit an incremental update recomputes, so it must be closed under every link.
    component = scratch.save(connected_components(scratch, n, all_edges), "component")
    refusals: list[ir.Table] = []
    if split_nodes is not None and int(split_nodes.count().to_pyarrow().as_py()):
        sp = split_nodes.select("node_id")
        touching = l2.src.isin(sp.node_id) | l2.dst.isin(sp.node_id)
        refusals.append(l2.filter(touching).mutate(reason=ibis.literal("manual split")))
        usable = scratch.save(l2.filter(~touching), "usable_links")
        base = connected_components(scratch, n, usable)
    else:
        usable = l2
        base = (
            component
            if forced is None or not int(forced.count().to_pyarrow().as_py())
            else connected_components(scratch, n, usable)
        )
    nodes_cc = n.join(component.rename(component="label"), "node_id")
    nodes_cc = scratch.save(nodes_cc.join(base.rename(base="label"), "node_id"), "nodes_cc")

    # Which components hold more identifiers of one type than allowed?
    per_type = nodes_cc.group_by(["base", "id_type"]).agg(count=nodes_cc.count())
    per_type = per_type.mutate(cap=_limit_expr(rules, per_type.id_type))
    over = per_type.filter(per_type.cap.notnull() & (per_type["count"] > per_type.cap))
    over_components = scratch.save(over.select("base").distinct(), "over_components")
    conflicted = int(over_components.count().to_pyarrow().as_py())

    cluster = nodes_cc.select("node_id", cluster=nodes_cc.base)
    if conflicted:
        cluster = _split_conflicts(scratch, nodes_cc, usable, over_components, rules, refusals)
    if forced is not None and int(forced.count().to_pyarrow().as_py()):
        cluster = _apply_forced(scratch, cluster, forced)

    with_cluster = nodes_cc.join(cluster, "node_id")
    order = ibis.row_number().over(
        group_by=with_cluster.cluster,
        order_by=[with_cluster.first_seen, with_cluster.rank, with_cluster.id_value],
    )
    anchors = with_cluster.mutate(pos=order).filter(lambda t: t.pos == 0)
    anchors = anchors.select("cluster", profile_id=profile_id_expr(anchors.id_type, anchors.id_value))
    assign = with_cluster.join(anchors, "cluster").select("node_id", "component", "cluster", "profile_id")
    empty = ibis.memtable(
        pa.table(
            {
                "src": pa.array([], pa.int64()),
                "dst": pa.array([], pa.int64()),
                "reason": pa.array([], pa.string()),
            }
        )
    )
    refused = ibis.union(*refusals, distinct=False) if refusals else empty
    return Partition(
        assign=scratch.save(assign, "assign"),
        refused=scratch.save(refused, "refused"),
        conflicted_components=conflicted,
    )


def _split_conflicts(
    scratch: Scratch,
    nodes_cc: ir.Table,
    usable: ir.Table,
    over_components: ir.Table,
    rules: MergeRules,
    refusals: list[ir.Table],
) -> ir.Table:
    """Cut the over-limit components; returns ``(node_id, cluster)`` for every node."""
    inside = nodes_cc.semi_join(over_components, "base")
    members = scratch.save(inside.mutate(cluster=inside.base), "members")
    ids = members.select("node_id")
    edges = scratch.save(usable.filter(usable.src.isin(ids.node_id)), "conflict_edges")
    types = members.select("id_type", "rank").distinct().to_pyarrow().to_pylist()
    for id_type in [r["id_type"] for r in sorted(types, key=lambda r: (r["rank"], r["id_type"]))]:
        limit = rules.limit(id_type)
        if limit is None:
            continue
        of_type = members.filter(members.id_type == id_type)
        counts = of_type.group_by("cluster").agg(count=of_type.count())
        over = counts.filter(counts["count"] > limit).select("cluster")
        if not int(over.count().to_pyarrow().as_py()):
            continue
        seed_rows = of_type.semi_join(over, "cluster")
        pos = ibis.row_number().over(group_by=seed_rows.cluster, order_by=[seed_rows.first_seen, seed_rows.id_value])
        seed_rows = seed_rows.mutate(seed_rank=pos.cast("int64"))
        first = seed_rows.filter(seed_rows.seed_rank == 0).select("cluster", first_node=seed_rows.node_id)
        seeds = seed_rows.join(first, "cluster").select(
            "node_id",
            "cluster",
            "seed_rank",
            "id_value",
            label=ibis.ifelse(seed_rows.seed_rank < limit, first.first_node, seed_rows.node_id),
        )
        seeds = scratch.save(seeds, f"seeds_{id_type}")
        in_over = members.semi_join(over, "cluster")
        result = split_by_seeds(scratch, in_over, edges, seeds)
        # members no seed reached form their own cluster (labelled by their smallest node id)
        stranded = result.filter(result.dist.isnull())
        rest_label = stranded.group_by("label").agg(new=stranded.node_id.min())
        stranded = stranded.join(rest_label, "label").select("node_id", label=rest_label.new)
        reached = result.filter(result.dist.notnull()).select("node_id", "label")
        new_labels = scratch.save(reached.union(stranded, distinct=False), f"labels_{id_type}")

        # refused links: edges of the cut clusters whose ends now sit in different clusters
        seed_names = (
            seeds.filter(seeds.seed_rank == 0)
            .select("label", name=seeds.id_value)
            .union(seeds.filter(seeds.seed_rank >= limit).select("label", name=seeds.id_value), distinct=False)
        )
        la, lb = new_labels.view(), new_labels.view()
        cut = edges.join(la, edges.src == la.node_id).join(lb, edges.dst == lb.node_id)
        cut = cut.filter(la.label != lb.label).select(src=edges.src, dst=edges.dst, la=la.label, lb=lb.label)
        na, nb = seed_names.view(), seed_names.view()
        cut = cut.left_join(na, cut.la == na.label).left_join(nb, cut.lb == nb.label)
        first_name = ibis.coalesce(na.name, "?")
        second_name = ibis.coalesce(nb.name, "?")
        reason = (
            f"{id_type} limit {limit}: would join {id_type} '"
            + ibis.least(first_name, second_name)
            + "' and '"
            + ibis.greatest(first_name, second_name)
            + "' in one profile"
        )
        refusals.append(scratch.save(cut.select(src=cut.src, dst=cut.dst, reason=reason), f"refused_{id_type}"))

        unchanged = members.anti_join(new_labels, "node_id")
        changed = members.join(new_labels, "node_id").mutate(cluster=new_labels.label).select(members.columns)
        members = scratch.save(unchanged.union(changed, distinct=False), "members")
    fixed = members.select("node_id", "cluster")
    rest = nodes_cc.anti_join(over_components, "base").select("node_id", cluster=nodes_cc.base)
    return scratch.save(rest.union(fixed, distinct=False), "clusters")


def _apply_forced(scratch: Scratch, cluster: ir.Table, forced: ir.Table) -> ir.Table:
    ca, cb = cluster.view(), cluster.view()
    f = forced.join(ca, forced.src == ca.node_id).join(cb, forced.dst == cb.node_id)
    edges = f.select(src=ca.cluster, dst=cb.cluster).filter(lambda e: e.src != e.dst)
    labels = cluster.select(node_id=cluster.cluster).distinct()
    merged = connected_components(scratch, labels, edges)
    out = cluster.join(merged, cluster.cluster == merged.node_id).select(cluster.node_id, cluster=merged.label)
    return scratch.save(out, "clusters_forced")
