"""Building and updating the identity graph: full rebuild and incremental update.

:func:`rebuild` resolves every event from scratch. :func:`update` resolves only the events stored
since the last run: it finds the connected components their identifiers touch and re-resolves
those components whole (old links and new), so the result equals a rebuild by construction:
components never interact, and :func:`~touchpoint.identity.partition.partition` is a pure
function of a component's identifiers and links.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "page", "anonymousId": "a1"},
...                         {"type": "identify", "anonymousId": "a1", "userId": "u1"}])
>>> rebuild(wh).profiles
1
>>> _ = write_messages(wh, [{"type": "track", "userId": "u1", "event": "Order Completed",
...                          "properties": {"email": "Ann@Example.com"}}])
>>> r = update(wh); (r.mode, r.events, r.profiles)
('incremental', 1, 1)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.errors import InvalidInput
from touchpoint.identity import delta, store
from touchpoint.identity import tables as T
from touchpoint.identity.components import Scratch
from touchpoint.identity.extract import centers, identifiers, json_mentioned, node_stats, pair_stats
from touchpoint.identity.partition import partition
from touchpoint.identity.rules import MergeRules
from touchpoint.warehouse import Warehouse

#: Events are looked for this far behind the watermark, so one committed a little late is not missed.
LATE_WINDOW = timedelta(hours=1)
#: 2: the tables include ``event_identities`` (each resolved event's node); an older state is rebuilt once.
STATE_VERSION = store.STATE_VERSION


@dataclass
class ResolveResult:
    """What one resolution did."""

    mode: str  # rebuild | incremental | manual | noop
    events: int = 0
    identifiers: int = 0
    links: int = 0
    refused_links: int = 0
    profiles: int = 0
    components_recomputed: int = 0
    conflicted_components: int = 0
    merges_logged: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: how the touched components were resolved: engine (SQL rounds), memory, statistics (none changed)
    path: str = "engine"
    #: identifiers whose statistics (last seen, events) were updated without recomputing their component
    statistics_updated: int = 0
    #: the profiles whose identifiers changed (their ids before and after); ``None``: every profile
    changed_profiles: list[str] | None = field(default=None, repr=False)
    #: profiles with new events whose identifiers did not change (their rows need the new events only)
    touched_profiles: list[str] = field(default_factory=list, repr=False)
    #: changed profiles made of new identifiers only (all their events are new ones)
    new_profiles: list[str] = field(default_factory=list, repr=False)
    #: ``message_id, profile_id`` of the events this update resolved (after a fast path)
    new_events: pa.Table | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        internal = ("changed_profiles", "touched_profiles", "new_profiles", "new_events")
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), list) else v
            for f in fields(self)
            if f.name not in internal
        }


def _from_delta(d: delta.Delta) -> ResolveResult:
    return ResolveResult(
        mode="incremental",
        path=d.path,
        identifiers=d.identifiers,
        links=d.links,
        refused_links=d.refused_links,
        profiles=d.profiles,
        components_recomputed=d.components_recomputed,
        conflicted_components=d.conflicted_components,
        merges_logged=d.merges_logged,
        statistics_updated=d.statistics_updated,
        changed_profiles=d.changed_profiles,
        touched_profiles=d.touched_profiles,
        new_profiles=d.new_profiles,
        new_events=d.new_events,
    )


# -- building blocks ---------------------------------------------------------------------------------
def _links_by_node(pairs: ir.Table, lookup: ir.Table) -> ir.Table:
    """Pairs of (type, value) mapped to node ids, stored once as ``src < dst``."""
    la, lb = lookup.view(), lookup.view()
    j = pairs.join(la, [pairs.a_type == la.id_type, pairs.a_value == la.id_value]).join(
        lb, [pairs.b_type == lb.id_type, pairs.b_value == lb.id_value]
    )
    j = j.select(
        src=ibis.least(la.node_id, lb.node_id),
        dst=ibis.greatest(la.node_id, lb.node_id),
        message_id=pairs.message_id,
        first_seen=pairs.first_seen,
        last_seen=pairs.last_seen,
        events=pairs.events,
    )
    return _combine_links(j)


def _combine_links(links: ir.Table) -> ir.Table:
    return links.group_by(["src", "dst"]).agg(
        message_id=links.message_id.argmin(links.first_seen),
        first_seen=links.first_seen.min(),
        last_seen=links.last_seen.max(),
        events=links.events.sum(),
    )


def _overrides_for(wh: Warehouse, nodes: ir.Table) -> tuple[ir.Table | None, ir.Table | None]:
    """Manual splits (``node_id``) and merges (``src, dst``) among ``nodes``."""
    ov = store.overrides(wh)
    if not int(ov.count().to_pyarrow().as_py()):
        return None, None
    n = nodes.select("node_id", "id_type", "id_value")
    splits = ov.filter(ov.kind == "split")
    split_nodes = n.semi_join(splits, [n.id_type == splits.id_type, n.id_value == splits.id_value])
    merges = ov.filter(ov.kind == "merge")
    a, b = n.view(), n.view()
    forced = merges.join(a, [merges.id_type == a.id_type, merges.id_value == a.id_value]).join(
        b, [merges.other_type == b.id_type, merges.other_value == b.id_value]
    )
    forced = forced.select(src=a.node_id, dst=b.node_id)
    return split_nodes.select("node_id"), forced


def _finish_links(links: ir.Table, refused: ir.Table) -> ir.Table:
    r = refused.group_by(["src", "dst"]).agg(reason=refused.reason.min())
    j = links.left_join(r, ["src", "dst"])
    return j.select(
        links.src,
        links.dst,
        links.message_id,
        links.first_seen,
        links.last_seen,
        links.events,
        status=ibis.ifelse(r.reason.isnull(), "accepted", "refused"),
        reason=r.reason,
    )


def _merge_log(
    old: ir.Table, new: ir.Table, links: ir.Table, kind_note: str | None = None, manual: bool = False
) -> list[dict[str, Any]]:
    """Merge-log rows from the change of profiles: ``old`` and ``new`` are ``(node_id, profile_id)``
    for the same identifiers before and after; ``links`` the links among them (with status)."""
    o = old.rename(old_profile="profile_id")
    j = new.join(o, "node_id")
    per_new = j.group_by("profile_id").agg(olds=j.old_profile.nunique(), ids=j.old_profile.collect(distinct=True))
    merged = per_new.filter(per_new.olds > 1)
    per_old = j.group_by("old_profile").agg(news=j.profile_id.nunique(), ids=j.profile_id.collect(distinct=True))
    split = per_old.filter(per_old.news > 1)
    renamed = per_old.filter(per_old.news == 1).mutate(new=per_old.ids[0]).filter(lambda r: r.new != r.old_profile)
    merged_rows = merged.to_pyarrow().to_pylist()
    rows: list[dict[str, Any]] = []
    now = store.now()
    if merged_rows:
        # the link that joined them: an accepted link whose ends had different profiles before
        oa, ob = o.view(), o.view()
        na = new.view()
        acc = links.filter(links.status == "accepted")
        cross = acc.join(oa, acc.src == oa.node_id).join(ob, acc.dst == ob.node_id).join(na, acc.src == na.node_id)
        cross = cross.filter(oa.old_profile != ob.old_profile).select(
            profile_id=na.profile_id, src=acc.src, dst=acc.dst, message_id=acc.message_id, ts=acc.first_seen
        )
        pick = cross.group_by("profile_id").agg(
            src=cross.src.argmax(cross.ts),
            dst=cross.dst.argmax(cross.ts),
            message_id=cross.message_id.argmax(cross.ts),
            ts=cross.ts.max(),
        )
        picks = {r["profile_id"]: r for r in pick.to_pyarrow().to_pylist()}
        for r in merged_rows:
            p = picks.get(r["profile_id"], {})
            rows.append(
                {
                    "logged_at": now,
                    "kind": "manual_merge" if manual else "auto_merge",
                    "profile_id": r["profile_id"],
                    "merged_profile_ids": ",".join(sorted(r["ids"])),
                    "message_id": p.get("message_id"),
                    "event_timestamp": p.get("ts"),
                    "src_node": p.get("src"),
                    "dst_node": p.get("dst"),
                    "note": kind_note,
                }
            )
    for r in split.to_pyarrow().to_pylist():
        rows.append(
            {
                "logged_at": now,
                "kind": "manual_split" if manual else "auto_split",
                "profile_id": r["old_profile"],
                "merged_profile_ids": ",".join(sorted(r["ids"])),
                "note": kind_note or "a merge rule now refuses a link",
            }
        )
    absorbed = {r["profile_id"] for r in merged_rows}
    for r in renamed.to_pyarrow().to_pylist():
        if r["new"] in absorbed:
            continue  # already told as a merge
        rows.append(
            {
                "logged_at": now,
                "kind": "renamed",
                "profile_id": r["new"],
                "merged_profile_ids": r["old_profile"],
                "note": "an earlier identifier became the profile's anchor",
            }
        )
    return rows


def _describe_nodes(wh: Warehouse, rows: list[dict[str, Any]], nodes: ir.Table) -> list[dict[str, Any]]:
    ids = {r[k] for r in rows for k in ("src_node", "dst_node") if r.get(k) is not None}
    names: dict[int, tuple[str, str]] = {}
    if ids:
        found = nodes.filter(nodes.node_id.isin(list(ids))).select("node_id", "id_type", "id_value")
        names = {r["node_id"]: (r["id_type"], r["id_value"]) for r in found.to_pyarrow().to_pylist()}
    for r in rows:
        for end, prefix in (("src_node", "src"), ("dst_node", "dst")):
            node = r.pop(end, None)
            if node is not None and node in names:
                r[f"{prefix}_type"], r[f"{prefix}_value"] = names[node]
    return rows


def saved_rules(wh: Warehouse) -> MergeRules:
    """The merge rules the identity tables were last built with (defaults if never built)."""
    saved = store.read_state(wh).get("rules")
    return MergeRules.from_dict(saved) if saved else MergeRules()


def _late() -> Any:
    return ibis.interval(seconds=int(LATE_WINDOW.total_seconds()))


def _check_rules(state: dict[str, Any], rules: MergeRules) -> None:
    if state and state.get("rules_fingerprint") != rules.fingerprint():
        raise InvalidInput(
            "the merge rules differ from the ones the profiles were built with",
            hint="run `touchpoint profiles rebuild` to resolve every event under the new rules",
        )


def _event_nodes(wide: ir.Table, types: list[str], extra: ir.Table, rules: MergeRules, lookup: ir.Table) -> ir.Table:
    """``message_id, node_id``: each event's most trusted usable identifier, as a node of ``lookup``
    (``node_id, id_type, id_value``); events whose identifiers are all blocked have no row."""
    c = centers(wide, types, extra, rules)
    j = c.join(lookup, [c.center_type == lookup.id_type, c.center_value == lookup.id_value])
    return j.select(c.message_id, lookup.node_id)


def _carried(event_nodes: ir.Table, events: ir.Table) -> ir.Table:
    """``event_identities`` rows for a rebuild, in timestamp order (a window read skips row groups)."""
    return store.event_rows(event_nodes, events).order_by("timestamp")


def _node_table(stats: ir.Table) -> ir.Table:
    return stats.select("node_id", "id_type", "id_value", "rank", "first_seen", "last_seen", "events")


# -- full rebuild --------------------------------------------------------------------------------------
@store.alone
def rebuild(wh: Warehouse, rules: MergeRules | None = None) -> ResolveResult:
    """Resolve every stored event from scratch and replace the identity tables.

    Manual splits and merges (``identity_overrides``) are kept and applied again. ``rules`` default
    to the ones the tables were last built with (else :class:`MergeRules` defaults).
    """
    rules = rules or saved_rules(wh)
    started = time.perf_counter()
    events = wh.table("events")
    cutoff = events.received_at.max().to_pyarrow().as_py()
    result = ResolveResult(mode="rebuild")
    with Scratch(wh) as s:
        upto = events.filter(events.received_at <= cutoff) if cutoff is not None else events
        # Pin the events this rebuild resolves: one stamped before the cutoff but committed while it
        # runs must not be half-seen (e.g. listed as resolved without being resolved); the next update gets it.
        snap = events.semi_join(s.save(upto.select("message_id"), "snapshot"), "message_id")
        wide_expr, types, extra_expr = identifiers(snap, rules)
        wide, extra = s.save(wide_expr, "ids"), s.save(extra_expr, "extra_ids")
        stats = node_stats(wide, types, extra, rules)
        nodes = s.save(stats.mutate(node_id=(ibis.row_number() + 1).cast("int64")), "nodes")
        lookup = nodes.select("node_id", "id_type", "id_value")
        links = s.save(_links_by_node(s.save(pair_stats(wide, types, extra, rules), "pairs"), lookup), "links")
        split_nodes, forced = _overrides_for(wh, nodes)
        part = partition(s, _node_table(nodes), links, rules, split_nodes, forced)
        final_nodes = s.save(_node_table(nodes).join(part.assign, "node_id"), "final_nodes")
        final_links = s.save(_finish_links(links, part.refused), "final_links")

        log_rows: list[dict[str, Any]] = []
        if store.resolved(wh):
            old = wh.table(T.NODES)
            fn = final_nodes
            old_map = old.join(fn, [old.id_type == fn.id_type, old.id_value == fn.id_value]).select(
                node_id=fn.node_id, profile_id=old.profile_id
            )
            log_rows = _describe_nodes(
                wh, _merge_log(old_map, fn.select("node_id", "profile_id"), final_links), final_nodes
            )

        if cutoff is not None:
            since = ibis.timestamp(cutoff) - _late()
            recent = snap.filter(snap.received_at >= since).select("message_id", "received_at")
        else:
            recent = snap.select("message_id", "received_at")
        store.replace_tables(
            wh,
            [
                (T.NODES, final_nodes, T.NODES_SCHEMA),
                (T.LINKS, final_links, T.LINKS_SCHEMA),
                (T.RECENT, recent, T.RECENT_SCHEMA),
                (
                    T.EVENTS,
                    s.save(_carried(_event_nodes(wide, types, extra, rules, lookup), snap), "event_nodes"),
                    T.EVENTS_SCHEMA,
                ),
            ],
        )
        if log_rows:
            store.append(wh, T.MERGE_LOG, store.merge_log_rows(log_rows))

        counts = (
            final_nodes.aggregate(identifiers=final_nodes.count(), profiles=final_nodes.profile_id.nunique())
            .to_pyarrow()
            .to_pylist()[0]
        )
        link_counts = (
            final_links.aggregate(links=final_links.count(), refused=(final_links.status == "refused").sum())
            .to_pyarrow()
            .to_pylist()[0]
        )
        result.events = int(snap.count().to_pyarrow().as_py())
        result.identifiers = int(counts["identifiers"])
        result.profiles = int(counts["profiles"] or 0)
        result.links = int(link_counts["links"])
        result.refused_links = int(link_counts["refused"] or 0)
        result.conflicted_components = part.conflicted_components
        result.merges_logged = len(log_rows)
    store.write_state(
        wh,
        {
            "version": STATE_VERSION,
            "rules_fingerprint": rules.fingerprint(),
            "rules": rules.to_dict(),
            "watermark": cutoff.isoformat() if cutoff is not None else None,
            "events_processed": result.events,
            "built_at": store.now().isoformat(),
            "updated_at": store.now().isoformat(),
        },
    )
    result.seconds = round(time.perf_counter() - started, 3)
    return result


# -- incremental update ------------------------------------------------------------------------------
@store.alone
def update(wh: Warehouse, rules: MergeRules | None = None) -> ResolveResult:
    """Resolve the events stored since the last run, recomputing only the components they touch.

    Builds from scratch when nothing was built yet. Refuses (with a hint) when ``rules`` differ
    from the ones the tables were built with; ``rules`` default to those.
    """
    rules = rules or saved_rules(wh)
    state = store.read_state(wh)
    if not state or not store.resolved(wh):
        return rebuild(wh, rules)
    _check_rules(state, rules)
    started = time.perf_counter()
    events = wh.table("events")
    processed = int(state.get("events_processed") or 0)
    with Scratch(wh) as s:
        watermark = state.get("watermark")
        if watermark is None:
            return rebuild(wh, rules)
        if int(state.get("version") or 1) < STATE_VERSION:  # built before event_identities existed
            result = rebuild(wh, rules)
            result.notes.append(f"rebuilt: the identity tables were built by version {state.get('version')}")
            return result
        # the new events and the count of all events in ONE statement, so one snapshot: events the
        # collector commits meanwhile are in neither (the next update takes them), not in one only;
        # compiled once per rules, the watermark bound as a value (Scratch.save_query)
        key = (rules.fingerprint(),)
        for _look in range(2):
            saved = s.save_query(
                "new_events_counted",
                key,
                lambda events, recent, watermark: _new_events_counted(events, recent, watermark, rules),
                values={"watermark": watermark},
                events=events,
                recent=wh.table(T.RECENT),
            )
            summary = s.save_query("new_events_summary", (), _summary, saved=saved)
            first = wh.to_arrow(summary).to_pylist()[0]
            found = int(first["n"])
            total = int(first["total"]) if found else wh.count("events")
            if found or total == processed:
                break
            # no new event in the snapshot, yet the count (a second statement) moved: events committed between
            # the two statements are new events in a second snapshot; only events the window cannot see (an
            # import stamped before it, an erasure) still differ there, and rebuild below
        new_events = s.save_query("new_events", (), _without_counts, saved=saved)
        if found != total - processed:
            # events arrived stamped before the window (an import with old received_at) or were erased
            result = rebuild(wh, rules)
            result.notes.append(
                f"rebuilt: {total - processed:+,} events since the last run, {found:,} in the recent window"
            )
            return result
        if found == 0:
            return ResolveResult(mode="noop", seconds=round(time.perf_counter() - started, 3), changed_profiles=[])
        fast = delta.apply(wh, s, rules, new_events, json_ids=bool(first["json"]), paired=bool(first["paired"]))
        if fast is None:  # the touched components are large: resolve them in the engine
            result = _recompute(wh, s, rules, new_events=new_events, components=None)
            result.path = "engine"
        else:
            result = _from_delta(fast)
        max_received = first["received"]
        new_mark = max(_instant(watermark), max_received)
        # the window moves on: rows that left it go, the new events' rows come (not a rewrite of the
        # window, which at a steady stream holds an hour of events whatever the batch)
        mark = {"mark": new_mark.isoformat()}
        expired = s.save_query("recent_expired", (), _expired, values=mark, recent=wh.table(T.RECENT))
        added = s.save_query("recent_added", (), _added, values=mark, new_events=new_events)
        with wh.write() as tx:
            tx.delete(T.RECENT, "message_id", expired.message_id)
            tx.append(T.RECENT, added)
    new_watermark = max(str(state.get("watermark") or ""), max_received.isoformat()) if max_received else watermark
    state.update(watermark=new_watermark, events_processed=processed + found, updated_at=store.now().isoformat())
    store.write_state(wh, state)
    result.events = found
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _new_events_counted(events: ir.Table, recent: ir.Table, watermark: str, rules: MergeRules) -> ir.Table:
    """The events received since ``watermark`` (ISO text) less :data:`LATE_WINDOW` that ``recent`` (the
    window of resolved events) lacks, each with the count of all events and whether its JSON mentions an
    identifier key (:func:`~touchpoint.identity.extract.json_mentioned`)."""
    since = ibis.literal(watermark).cast("timestamp") - _late()
    counted = events.filter(events.received_at >= since).anti_join(recent.select("message_id"), "message_id")
    # whether the event may carry two identifiers in its columns (else, without JSON identifiers, it links none)
    ids = [counted[c].notnull().cast("int64") for c in ("user_id", "email", "anonymous_id", "previous_id")]
    return counted.mutate(
        _events_total=events.count().as_scalar(),
        _json_ids=json_mentioned(counted, rules),
        _paired=sum(ids[1:], ids[0]) >= 2,
    )


def _summary(saved: ir.Table) -> ir.Table:
    return saved.aggregate(
        n=saved.count(),
        total=saved._events_total.max(),
        json=saved._json_ids.any(),
        paired=saved._paired.any(),
        received=saved.received_at.max(),
    )


def _without_counts(saved: ir.Table) -> ir.Table:
    return saved.drop("_events_total", "_json_ids", "_paired")


def _expired(recent: ir.Table, mark: str) -> ir.Table:
    """The window's events received before the new watermark ``mark`` less :data:`LATE_WINDOW`."""
    return recent.filter(recent.received_at < ibis.literal(mark).cast("timestamp") - _late()).select("message_id")


def _added(new_events: ir.Table, mark: str) -> ir.Table:
    """The new events' rows of the window that ends at the new watermark ``mark``."""
    kept = new_events.filter(new_events.received_at >= ibis.literal(mark).cast("timestamp") - _late())
    return store.typed(kept.select("message_id", "received_at"), T.RECENT_SCHEMA)


def _instant(text: str) -> datetime:
    """A stored watermark (ISO text of a naive UTC instant) as a ``datetime``, as the engine reads it."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:  # not written by this code: let the engine read it, as before
        value: datetime = ibis.timestamp(text).to_pyarrow().as_py()
        return value
    return parsed


@store.alone
def recompute_components(
    wh: Warehouse, components: list[int], rules: MergeRules | None = None, note: str | None = None
) -> ResolveResult:
    """Re-resolve the given components (after a manual split or merge changed the overrides)."""
    rules = rules or saved_rules(wh)
    _check_rules(store.read_state(wh), rules)
    started = time.perf_counter()
    with Scratch(wh) as s:
        result = _recompute(wh, s, rules, new_events=None, components=components, note=note, manual=True)
    state = store.read_state(wh)
    store.write_state(wh, state | {"updated_at": store.now().isoformat()})  # profiles built before are stale
    result.mode = "manual"
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _recompute(
    wh: Warehouse,
    s: Scratch,
    rules: MergeRules,
    *,
    new_events: ir.Table | None,
    components: list[int] | None,
    note: str | None = None,
    manual: bool = False,
) -> ResolveResult:
    result = ResolveResult(mode="incremental")
    all_nodes = wh.table(T.NODES)
    old_links = wh.table(T.LINKS)
    parts_nodes: list[ir.Table] = []
    new_links = None
    if new_events is not None:
        wide_expr, types, extra_expr = identifiers(new_events, rules)
        wide, extra = s.save(wide_expr, "new_ids"), s.save(extra_expr, "new_extra_ids")
        stats = s.save(node_stats(wide, types, extra, rules), "new_stats")
        known = all_nodes.select("node_id", "id_type", "id_value", "component")
        touched = s.save(
            stats.join(known, ["id_type", "id_value"]).select(stats, known.node_id, known.component),
            "touched",
        )
        fresh = stats.anti_join(known, ["id_type", "id_value"])
        top = all_nodes.node_id.max().to_pyarrow().as_py()
        base = int(top) if top is not None else 0
        fresh = s.save(fresh.mutate(node_id=(ibis.row_number() + 1 + base).cast("int64")), "fresh")
        affected = touched.select("component").distinct()
        lookup = touched.select("node_id", "id_type", "id_value").union(
            fresh.select("node_id", "id_type", "id_value"), distinct=False
        )
        new_links = s.save(_links_by_node(pair_stats(wide, types, extra, rules), lookup), "new_links")
        parts_nodes.append(fresh.mutate(component=ibis.null("int64")))
        parts_nodes.append(touched)
        event_nodes: ir.Table | None = s.save(
            store.event_rows(_event_nodes(wide, types, extra, rules, lookup), new_events), "event_nodes"
        )
    else:
        event_nodes = None
        affected = ibis.memtable(pa.table({"component": pa.array(list(components or []), pa.int64())}))
    affected = s.save(affected, "affected")

    old_nodes = s.save(all_nodes.semi_join(affected, "component"), "old_nodes")
    # statistics of the affected identifiers, old and new observations together
    cols = ["node_id", "id_type", "id_value", "rank", "first_seen", "last_seen", "events"]
    pieces = [old_nodes.select(*cols)] + [p.select(*cols) for p in parts_nodes]
    stacked = ibis.union(*pieces, distinct=False)
    sub_nodes = stacked.group_by(["node_id", "id_type", "id_value"]).agg(
        rank=stacked.rank.min(),
        first_seen=stacked.first_seen.min(),
        last_seen=stacked.last_seen.max(),
        events=stacked.events.sum(),
    )
    sub_nodes = s.save(sub_nodes, "sub_nodes")

    lk_cols = ["src", "dst", "message_id", "first_seen", "last_seen", "events"]
    old_sub_links = old_links.filter(old_links.src.isin(old_nodes.node_id)).select(*lk_cols)
    link_parts = [old_sub_links]
    if new_links is not None:
        link_parts.append(new_links.select(*lk_cols))
    sub_links = s.save(_combine_links(ibis.union(*link_parts, distinct=False)), "sub_links")

    split_nodes, forced = _overrides_for(wh, sub_nodes)
    part = partition(s, _node_table(sub_nodes), sub_links, rules, split_nodes, forced)
    final_nodes = s.save(_node_table(sub_nodes).join(part.assign, "node_id"), "final_nodes")
    final_links = s.save(_finish_links(sub_links, part.refused), "final_links")

    old_map = old_nodes.select("node_id", "profile_id")
    log_rows = _describe_nodes(
        wh,
        _merge_log(old_map, final_nodes.select("node_id", "profile_id"), final_links, note, manual),
        final_nodes,
    )
    steps: list[Any] = [
        (T.NODES, "component", affected.select("component"), final_nodes, T.NODES_SCHEMA),
        (T.LINKS, "src", old_nodes.select("node_id"), final_links, T.LINKS_SCHEMA),
    ]
    if event_nodes is not None:  # node ids are stable: the new events' rows are added, no other changes
        steps.append((T.EVENTS, "message_id", None, event_nodes, T.EVENTS_SCHEMA))
    store.replace_rows(wh, steps)
    if log_rows:
        store.append(wh, T.MERGE_LOG, store.merge_log_rows(log_rows))

    before_after = ibis.union(old_nodes.select("profile_id"), final_nodes.select("profile_id"), distinct=True)
    result.changed_profiles = wh.to_arrow(before_after).column("profile_id").to_pylist()
    summary = final_nodes.aggregate(n=final_nodes.count(), p=final_nodes.profile_id.nunique()).to_pyarrow()
    row = summary.to_pylist()[0]
    lrow = final_links.aggregate(n=final_links.count(), r=(final_links.status == "refused").sum()).to_pyarrow()
    lr = lrow.to_pylist()[0]
    result.identifiers = int(row["n"])
    result.profiles = int(row["p"] or 0)
    result.links = int(lr["n"])
    result.refused_links = int(lr["r"] or 0)
    result.components_recomputed = int(affected.count().to_pyarrow().as_py())
    result.conflicted_components = part.conflicted_components
    result.merges_logged = len(log_rows)
    return result
