"""Unified profiles: traits (last write wins, with their source) and computed traits, per profile.

Two derived tables, rebuilt from ``events`` and the identity tables by :func:`build`:

``profiles`` (one row per profile)
    ``profile_id, identifiers, user_id, email, first_seen, last_seen, events, sessions, orders,
    revenue, average_order_value, last_order_at, days_since_last_order, channels, channels_touched,
    recency_score, frequency_score, monetary_score, rfm, as_of, built_at``
``profile_traits`` (one row per profile and trait)
    ``profile_id, trait, value`` (JSON text) ``, source, timestamp, message_id``: the latest value
    by event timestamp (ties: the larger message id) from ``traits`` or ``context.traits``.

Methods: a session is a run of events with gaps under 30 minutes; a channel is the one of each
session's first event (:func:`touchpoint.collect.channels.channel_expr`); orders are
"Order Completed" events counted once per order id; RFM scores are quintiles 1-5 among profiles
with an order, ``ceil(5 * cume_dist)``: equal values share a score and the best value scores 5.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint import identity
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [
...     {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "timestamp": "2026-01-01T10:00:00Z"},
...     {"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": "2026-01-02T10:00:00Z",
...      "properties": {"order_id": "o1", "revenue": 30}}])
>>> _ = identity.rebuild(wh)
>>> build(wh, as_of="2026-01-12T10:00:00")["profiles"]
1
>>> row = wh.to_arrow(wh.table("profiles")).to_pylist()[0]
>>> (row["orders"], row["revenue"], row["days_since_last_order"], row["sessions"], row["rfm"])
(1, 30.0, 10, 2, '555')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint import identity
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.identity import store
from touchpoint.identity.components import Scratch
from touchpoint.warehouse import Warehouse, schema

PROFILES = schema.PROFILES.name
TRAITS = schema.PROFILE_TRAITS.name
SESSION_GAP_MINUTES = 30

PROFILES_SCHEMA = schema.PROFILES.schema
#: The columns computed from one profile's own events and identifiers (the rest depend on all profiles).
BASE_COLUMNS = (
    "profile_id",
    "identifiers",
    "user_id",
    "email",
    "first_seen",
    "last_seen",
    "events",
    "sessions",
    "orders",
    "revenue",
    "average_order_value",
    "last_order_at",
    "channels",
    "channels_touched",
)
BASE_SCHEMA = ibis.schema({c: PROFILES_SCHEMA[c] for c in BASE_COLUMNS})
TRAITS_SCHEMA = schema.PROFILE_TRAITS.schema


def _as_of(value: datetime | str | None) -> datetime:
    if value is None:
        return store.now()
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed.astimezone().replace(tzinfo=None)
    return value


def _score(metric: ir.Column) -> ir.IntegerValue:
    """Quintile 1-5 of ``metric`` among the rows it is computed over (ties share a score)."""
    q = ibis.cume_dist().over(order_by=metric)
    return ibis.greatest(1, ibis.least(5, (q * 5).ceil().cast("int64")))


def latest_traits(events: ir.Table, ep: ir.Table) -> ir.Table:
    """Each profile's latest value of each trait (``profile_id, trait, value, source, timestamp,
    message_id``) from ``events`` mapped to profiles by ``ep`` (``message_id, profile_id``): the later
    message wins; at the same instant identify ``traits`` win over ``context.traits``, then the larger
    message id (:func:`trait_key`)."""
    parts = []
    for column, source in (("traits", "traits"), ("context", "context.traits")):
        has = ibis.coalesce(events[column].cast("string").contains("{"), False)
        sub = events.filter(has)
        m = (sub[column] if column == "traits" else sub.context["traits"]).map
        part = sub.select(
            "message_id",
            "timestamp",
            "source",
            via=ibis.literal(source),
            trait=m.keys().unnest(),
            value=m.values().unnest(),
        )
        parts.append(part)
    long = ibis.union(*parts, distinct=False)
    long = long.filter(long.trait.notnull() & long.value.notnull() & (long.value != "null"))
    j = long.join(ep, "message_id")
    # identify traits win over context.traits at the same instant; then the later message id
    key = j.timestamp.cast("string") + "|" + ibis.ifelse(j.via == "traits", "1", "0") + "|" + j.message_id
    latest = j.group_by(["profile_id", "trait"]).agg(
        value=j.value.argmax(key),
        source=(ibis.coalesce(j.source, "") + ":" + j.via).argmax(key),
        timestamp=j.timestamp.max(),
        message_id=j.message_id.argmax(key),
    )
    return latest


def _channel(t: ir.Table) -> ir.StringValue:
    from touchpoint.collect.channels import channel_expr

    return channel_expr(t)


def build(
    wh: Warehouse,
    *,
    as_of: datetime | str | None = None,
    only: Sequence[str] | None = None,
    touched: Sequence[str] = (),
    new_events: pa.Table | None = None,
    new_profiles: Sequence[str] = (),
) -> dict[str, Any]:
    """Rebuild ``profiles`` and ``profile_traits`` from the events and the current identities.

    ``as_of`` (default: now, UTC) is the instant ``days_since_last_order`` and recency count from.
    ``only`` (the profiles an identity update changed, :attr:`ResolveResult.changed_profiles`)
    recomputes those profiles' rows from their events and keeps every other row. With what the update
    also knows (:class:`~touchpoint.identity.ResolveResult`: ``new_events``, ``message_id, profile_id``
    of the events it resolved; ``touched``, profiles that only got new events; ``new_profiles``, changed
    profiles made of new identifiers only, whose events are all new), touched profiles are extended by
    their new events alone where that is exact (:mod:`touchpoint.profiles.extend`), else recomputed, and
    new profiles are computed from the new events. The RFM scores and ``days_since_last_order`` depend
    on every profile and on ``as_of``: they are recomputed for every profile, and only the rows whose
    values changed are written (their ``as_of`` says when). Returns a summary: how many profiles,
    traits, recomputed, extended, seconds.
    """
    started = time.perf_counter()
    as_of_ts = _as_of(as_of)
    extended = 0
    with wh.exclusive(store.SECTION):  # the identities it reads do not change under it
        if only is None:
            rows, traits = _rows(wh, None)
            _finish_and_store(wh, rows, traits, as_of_ts, None)
            recomputed: int | None = None
        else:
            recompute = set(only)
            if new_events is None:
                recompute.update(touched)
                touched, new_profiles = (), ()
            plan = _Plan(sorted(recompute), sorted(set(touched) - recompute), new_events, set(new_profiles))
            extended, recomputed = _refresh(wh, plan, as_of_ts)
    n, k = wh.count(PROFILES), wh.count(TRAITS)
    return {
        "profiles": n,
        "traits": k,
        "recomputed": n if recomputed is None else recomputed,
        "extended": extended,
        "as_of": as_of_ts.isoformat(),
        "seconds": round(time.perf_counter() - started, 3),
    }


@dataclass
class _Plan:
    recompute: list[str]
    touched: list[str]
    new_events: pa.Table | None
    new_profiles: set[str]


def _ids(values: Sequence[str], name: str = "profile_id") -> ir.Table:
    return ibis.memtable(pa.table({name: pa.array(list(values), pa.string())}))


def _refresh(wh: Warehouse, plan: _Plan, as_of_ts: datetime) -> tuple[int, int]:
    """Recompute some profiles, extend others, rescore, write what changed. Returns (extended, recomputed)."""
    from touchpoint.profiles import extend

    with ExitStack() as stack:

        def stage(expr: ir.Table) -> ir.Table:
            staged = stack.enter_context(wh.staged(expr))
            assert isinstance(staged, ir.Table)
            return staged

        # the per-profile queries are the same every run: built and compiled once (Scratch.save_query)
        scratch = stack.enter_context(Scratch(wh))

        def rows_of(name: str, ids: ir.Table, evs: ir.Table, ep: ir.Table) -> tuple[ir.Table, ir.Table]:
            r = scratch.save_query(
                f"{name}_rows", (), lambda i, e, p: store.typed(_rows(wh, i, e, p)[0], BASE_SCHEMA), i=ids, e=evs, p=ep
            )
            t = scratch.save_query(
                f"{name}_traits",
                (),
                lambda i, e, p: store.typed(_rows(wh, i, e, p)[1], TRAITS_SCHEMA),
                i=ids,
                e=evs,
                p=ep,
            )
            return r, t  # typed to the stored columns' types (rows: as every part of the union, _rows_to_write)

        recompute = plan.recompute
        ext = extend.Extension()
        e_ids = stage(ibis.memtable(plan.new_events)) if plan.new_events is not None else None
        if plan.touched and e_ids is not None:
            ext = extend.extend(wh, plan.touched, e_ids, SESSION_GAP_MINUTES * 60, scratch)
            recompute = sorted(set(recompute) | set(ext.fallback))
        changed = stage(_ids([*recompute, *ext.profiles]))
        parts: list[ir.Table] = []  # the rows of the recomputed and extended profiles (the others are kept)
        traits: list[tuple[ir.Table, ir.Table]] = []
        events = wh.table("events")
        brand_new = [p for p in recompute if p in plan.new_profiles] if e_ids is not None else []
        from_log = sorted(set(recompute) - set(brand_new))
        if brand_new and e_ids is not None:  # all their events are new: resolved by the update already
            n_ids = stage(_ids(brand_new))
            ep = stage(e_ids.semi_join(n_ids, "profile_id"))
            rows, n_traits = rows_of("new", n_ids, stage(events.semi_join(ep, "message_id")), ep)
            parts.append(rows)
            traits.append((n_ids, n_traits))
        if from_log:
            r_ids = stage(_ids(from_log))
            if store.events_indexed(wh):  # their events by event_identities: one join
                ep = stage(identity.event_profiles(wh).semi_join(r_ids, "profile_id"))
                candidates = stage(events.semi_join(ep, "message_id"))
            else:
                candidates = stage(candidate_events(wh, r_ids))
                ep = stage(identity.event_profiles(wh, candidates).semi_join(r_ids, "profile_id"))
            rows, r_traits = rows_of("log", r_ids, candidates, ep)
            parts.append(rows)
            traits.append((r_ids, r_traits))
        if ext.rows and e_ids is not None:
            x_ids = stage(_ids(ext.profiles))
            x_rows = stage(ibis.memtable(pa.Table.from_pylist(ext.rows, schema=BASE_SCHEMA.to_pyarrow())))
            parts.append(x_rows)
            x_traits = scratch.save_query(
                "extended_traits",
                (),
                lambda x, e: store.typed(extend.new_traits(wh, x, e), TRAITS_SCHEMA),
                x=x_ids,
                e=e_ids,
            )
            traits.append((x_ids, x_traits))
        # the rows to write, compiled once per process and number of parts (Scratch.save_query): the
        # instants as a one-row input, each part as a staged input, the stored profiles by name
        clock = stage(
            ibis.memtable(
                pa.table(
                    {
                        "as_of": pa.array([as_of_ts], pa.timestamp("us")),
                        "built_at": pa.array([store.now()], pa.timestamp("us")),
                    }
                )
            )
        )
        inputs = {f"part_{i}": part for i, part in enumerate(parts)}
        write = scratch.save_query(
            "write", (len(parts),), _rows_to_write, profiles=wh.table(PROFILES), changed=changed, clock=clock, **inputs
        )
        ready = traits  # computed already, in the stored columns' types
        with wh.write() as tx:
            tx.delete(PROFILES, "profile_id", changed.profile_id)
            tx.delete(PROFILES, "profile_id", write.profile_id)
            tx.append(PROFILES, write)
            for ids, rows_t in ready:
                tx.delete(TRAITS, "profile_id", ids.profile_id)
                tx.append(TRAITS, rows_t)
    return len(ext.profiles), len(recompute)


def _rows_to_write(profiles: ir.Table, changed: ir.Table, clock: ir.Table, **parts: ir.Table) -> ir.Table:
    """The profile rows an incremental refresh writes: the stored rows of unchanged profiles and the new
    ``parts`` (base columns), finished (:func:`_finish`, at ``clock``'s ``as_of`` and ``built_at``), of which
    the changed profiles and every row whose scores or days since the last order moved."""
    kept = store.typed(profiles.anti_join(changed, "profile_id"), BASE_SCHEMA)
    ordered = [store.typed(parts[k], BASE_SCHEMA) for k in sorted(parts, key=lambda k: int(k.split("_")[1]))]
    p = _finish(
        ibis.union(kept, *ordered, distinct=False), clock.as_of.max().as_scalar(), clock.built_at.max().as_scalar()
    )
    s = profiles.select(
        "profile_id",
        s_days="days_since_last_order",
        s_r="recency_score",
        s_f="frequency_score",
        s_m="monetary_score",
    )
    j = p.left_join(s, "profile_id")
    moved = (
        ~j.days_since_last_order.identical_to(j.s_days)
        | ~j.recency_score.identical_to(j.s_r)
        | ~j.frequency_score.identical_to(j.s_f)
        | ~j.monetary_score.identical_to(j.s_m)
        | j.profile_id.isin(changed.profile_id)
    )
    return store.typed(j.filter(moved), PROFILES_SCHEMA)


def candidate_events(wh: Warehouse, ids: ir.Table) -> ir.Table:
    """The events that may belong to the profiles ``ids``: those carrying one of their identifiers in a
    column, or any identifier in JSON (phone, external ids: resolved as usual). An event belongs to the
    profile of its most trusted identifier, so every event of these profiles is among them."""
    from touchpoint.identity.extract import _mentions

    events = wh.table("events")
    nodes = wh.table(identity.tables.NODES)
    values = nodes.semi_join(ids, "profile_id").id_value
    rules = identity.saved_rules(wh)
    json_ids = _mentions(events.traits, "phone") | _mentions(events.context, "phone")
    json_ids = json_ids | _mentions(events.context, "externalIds")
    for ext in rules.external_ids:
        json_ids = json_ids | _mentions(events[ext.path.split(".", 1)[0]], ext.path.rsplit(".", 1)[-1])
        json_ids = json_ids | _mentions(events.context, ext.path.rsplit(".", 1)[-1])
    return events.filter(
        events.user_id.isin(values)
        | events.anonymous_id.isin(values)
        | events.email.isin(values)
        | events.previous_id.isin(values)
        | json_ids
    )


def _rows(
    wh: Warehouse, ids: ir.Table | None, events: ir.Table | None = None, ep: ir.Table | None = None
) -> tuple[ir.Table, ir.Table]:
    """The per-profile columns (:data:`BASE_COLUMNS`) and the traits of every profile, or of ``ids``
    (``events``: all of them, or a subset holding every event of those profiles; ``ep``: their
    ``message_id, profile_id`` when already computed)."""
    if ep is None:
        ep = identity.event_profiles(wh, events)
    events = events if events is not None else wh.table("events")
    nodes = wh.table(identity.tables.NODES)
    if ids is not None:
        ep = ep.semi_join(ids, "profile_id")
        nodes = nodes.semi_join(ids, "profile_id")
    ev = events.join(ep, "message_id")

    # sessions: a new one starts after 30 minutes of silence
    w = ibis.window(group_by=ev.profile_id, order_by=[ev.timestamp, ev.message_id])
    prev = ev.timestamp.lag().over(w)
    gap = ibis.literal(SESSION_GAP_MINUTES * 60, "int64")
    starts = prev.isnull() | ((ev.timestamp.epoch_seconds() - prev.epoch_seconds()) >= gap)
    marked = ev.mutate(session_start=starts)
    sess = marked.filter(marked.session_start)
    sess = sess.mutate(channel=_channel(sess))
    sessions = sess.group_by("profile_id").agg(
        sessions=sess.count(),
        channels=sess.channel.collect(distinct=True),
    )

    base = ev.group_by("profile_id").agg(first_seen=ev.timestamp.min(), last_seen=ev.timestamp.max(), events=ev.count())
    o = ev.filter((ev.type == "track") & (ev.event == ORDER_COMPLETED))
    order_key = ibis.coalesce(o.order_id, o.message_id)
    per_order = o.group_by(["profile_id", order_key.name("order_key")]).agg(
        revenue=o.revenue.max(), at=o.timestamp.min()
    )
    orders = per_order.group_by("profile_id").agg(
        orders=per_order.count(),
        revenue=ibis.coalesce(per_order.revenue.sum(), 0.0),
        last_order_at=per_order.at.max(),
    )
    users = nodes.filter(nodes.id_type == "user_id")
    users = users.group_by("profile_id").agg(user_id=users.id_value.argmin(users.first_seen))
    emails = nodes.filter(nodes.id_type == "email")
    emails = emails.group_by("profile_id").agg(email=emails.id_value.argmax(emails.last_seen))
    ident = nodes.group_by("profile_id").agg(identifiers=nodes.count())

    p = ident.left_join(base, "profile_id").select(
        ident.profile_id, ident.identifiers, base.first_seen, base.last_seen, base.events
    )
    p = p.left_join(users, "profile_id").select(p, users.user_id)
    p = p.left_join(emails, "profile_id").select(p, emails.email)
    p = p.left_join(sessions, "profile_id").select(p, sessions.sessions, sessions.channels)
    p = p.left_join(orders, "profile_id").select(p, orders.orders, orders.revenue, orders.last_order_at)
    p = p.mutate(
        events=ibis.coalesce(p.events, 0),
        sessions=ibis.coalesce(p.sessions, 0),
        orders=ibis.coalesce(p.orders, 0),
        revenue=ibis.coalesce(p.revenue, 0.0),
        average_order_value=ibis.ifelse(p.orders > 0, p.revenue / p.orders, ibis.null("float64")),
        channels=ibis.ifelse(p.channels.sort().length() > 0, p.channels.sort().join(","), ibis.null(str)),
        channels_touched=ibis.coalesce(p.channels.length(), 0).cast("int64"),
    )
    return p.select(*BASE_COLUMNS), latest_traits(events, ep)


def _finish(
    rows: ir.Table, as_of_ts: datetime | ir.TimestampValue, built_at: ir.TimestampValue | None = None
) -> ir.Table:
    """``rows`` (every profile's base columns) with what depends on every profile or on ``as_of``: days
    since the last order, the RFM scores. ``as_of_ts`` and ``built_at`` (default now) may be expressions
    (a compiled query's inputs)."""
    as_of_lit = as_of_ts if isinstance(as_of_ts, ir.Expr) else ibis.literal(as_of_ts, "timestamp")
    p = rows.mutate(
        days_since_last_order=((as_of_lit.epoch_seconds() - rows.last_order_at.epoch_seconds()) // 86400).cast("int64"),
        as_of=as_of_lit,
        built_at=built_at if built_at is not None else ibis.literal(store.now(), "timestamp"),
    )
    buyers = p.filter(p.orders > 0)
    scored = buyers.select(
        "profile_id",
        recency_score=_score(buyers.last_order_at),
        frequency_score=_score(buyers.orders),
        monetary_score=_score(buyers.revenue),
    )
    p = p.left_join(scored, "profile_id").select(p, scored.recency_score, scored.frequency_score, scored.monetary_score)
    return p.mutate(
        rfm=p.recency_score.cast("string") + p.frequency_score.cast("string") + p.monetary_score.cast("string")
    )


def _finish_and_store(
    wh: Warehouse, rows: ir.Table, traits: ir.Table | None, as_of_ts: datetime, ids: ir.Table | None
) -> None:
    """Add what depends on every profile or on ``as_of`` (:func:`_finish`) to ``rows`` (every profile) and
    replace the tables with them."""
    p = _finish(rows, as_of_ts)
    if traits is None:
        store.replace_table(wh, PROFILES, p, PROFILES_SCHEMA)
    else:
        store.replace_tables(wh, [(PROFILES, p, PROFILES_SCHEMA), (TRAITS, traits, TRAITS_SCHEMA)])
