"""Compile a definition into ONE Ibis expression over profiles, traits, predictions and events.

The expression selects the ``profile_id`` of every member. Semantics (docs/audiences.md says the same):

* The population is the ``profiles`` table. An event belongs to the profile the one customer rule
  (:func:`touchpoint.identity.people.customer_events`) names; only events with ``timestamp <= now``
  count, so evaluating at a past ``now`` ignores what happened after it.
* Each condition is true or false for every profile, never unknown: a missing trait or prediction
  makes its condition false (so ``not`` of it is true).
* ``within_days: N`` on events and past dates is the window ``[now - N days, now]``;
  ``before_days_ago: N`` is ``< now - N days``; ``within_next_days: N`` is ``[now, now + N days]``.
  On the forward-looking dates (``next_purchase_at``, ``replenishment_due_at``, both dates) the
  window counts in whole days from today: ``within_days: 7`` is ``[today, today + 7]``.
* Traits stored from events are JSON: ``eq``/``neq``/``in`` compare with a value of the same JSON
  type (a string trait never equals a number); ``gt``..``lte`` compare numbers, or ISO dates when the
  operand is a date string; date operators read the trait as an ISO date-time (offsets not applied).
* Counts and sums of no events are 0; a sum reads the property as a JSON number.
* A sequence needs each step strictly after the previous one and the last within ``within_days``
  of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from touchpoint.audiences import definition as d
from touchpoint.audiences.definition import bad
from touchpoint.errors import InvalidDefinition
from touchpoint.warehouse import Warehouse, schema

PROFILE_COLUMNS = schema.PROFILES.schema
Pred = Callable[[ir.Table], ir.BooleanValue]
Lookup = Callable[[str], Any]  # an audience name -> its parsed definition, or None when unknown
#: The instant an expression is evaluated at: a ``datetime`` (pasted as a literal), or an Ibis timestamp
#: (a bound parameter, so the compiled SQL serves every run: :func:`touchpoint.audiences.scores.refresh`).
Instant = Any


def lit(at: Instant) -> ir.Value:
    """``at`` as an Ibis value: a literal for a date or a ``datetime``, the expression itself otherwise."""
    if isinstance(at, ir.Value):
        return at
    return ibis.literal(at, "timestamp") if isinstance(at, datetime) else ibis.literal(at)


def ago(at: Instant, days: int) -> Instant:
    """``days`` whole days before ``at`` (after it when negative), a date, ``datetime`` or Ibis value."""
    if not isinstance(at, ir.Value):
        return at - timedelta(days=days)
    return at if not days else at - ibis.interval(days=days)


@dataclass
class _Plan:
    """What the leaves need: profile columns, trait tables, prediction columns, event aggregates."""

    now: datetime
    profile_columns: set[str] = field(default_factory=set)
    traits: dict[str, str] = field(default_factory=dict)  # trait -> column
    predictions: set[str] = field(default_factory=set)
    propensity: dict[tuple[str, int], str] = field(default_factory=dict)
    flags: list[tuple[str, Any]] = field(default_factory=list)  # (column, builder(ev) -> table of profile_id)
    #: (column, {row column: builder(events) -> value}, builder(mapped rows) -> agg expr): each event's
    #: values are computed before the events meet their profiles, so only those few columns travel
    aggregates: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    sequences: bool = False  # a sequence reads whole events (type, event, timestamp, properties)
    since: list[datetime | None] = field(default_factory=list)  # each event leaf's window start (None: all)
    event_names: set[str] = field(default_factory=set)
    offsets: set[int] = field(default_factory=set)  # days: windows that move with the clock (incremental)
    trait_dates: set[tuple[str, bool, int]] = field(default_factory=set)  # (trait, a profiles column?, days)
    forward_dates: bool = False
    consents: set[str] = field(default_factory=set)  # purposes whose consent the definition tests
    counter: int = 0

    def column(self, prefix: str) -> str:
        self.counter += 1
        return f"tp_{prefix}_{self.counter}"

    def lower_bound(self) -> datetime | None:
        """The earliest event timestamp any condition reads (None: no bound), pushed down to the scan."""
        if not self.since or any(s is None for s in self.since):
            return None
        return min(s for s in self.since if s is not None)


def _cmp(value: ir.Value, op: str, operand: Any) -> ir.BooleanValue:
    if op == "eq":
        return value == operand
    if op == "neq":
        return value != operand
    if op == "gt":
        return value > operand
    if op == "gte":
        return value >= operand
    if op == "lt":
        return value < operand
    if op == "lte":
        return value <= operand
    if op == "in":
        return value.isin(list(operand))
    raise AssertionError(op)


def _date_ops(value: ir.Value, ops: tuple, now: Instant, *, forward: bool = False) -> ir.BooleanValue:
    """Date operators on a timestamp (or, ``forward``, a date counted in days from today)."""
    out: ir.BooleanValue = ibis.literal(True)
    today = now.date()
    for op, n in ops:
        if forward:
            v = value.cast("date")
            if op in ("within_days", "within_next_days"):
                cond = (v >= lit(today)) & (v <= lit(ago(today, -n)))
            elif op == "before_days_ago":
                cond = v < lit(ago(today, n))
            else:
                cond = _cmp(v, op, ibis.literal(date.fromisoformat(str(n)[:10])))
        elif op == "within_days":
            cond = (value >= lit(ago(now, n))) & (value <= lit(now))
        elif op == "within_next_days":
            cond = (value >= lit(now)) & (value <= lit(ago(now, -n)))
        elif op == "before_days_ago":
            cond = value < lit(ago(now, n))
        else:
            cond = _cmp(value, op, ibis.literal(datetime.fromisoformat(str(n)), "timestamp"))
        out = out & cond
    return out


def _json_ops(v: ir.JSONValue, ops: tuple, now: Instant, path: str) -> ir.BooleanValue:
    """Operators on a JSON value (a stored trait or an event property)."""
    out: ir.BooleanValue = ibis.literal(True)
    for op, operand in ops:
        if op == "exists":
            present = v.notnull() & (v.cast("string") != "null")
            cond = present if operand else ~present.fill_null(False)
        elif op == "contains":
            cond = v.str.contains(operand)
        elif op in d.DATE_OPS:
            cond = _date_ops(v.str.try_cast("timestamp"), ((op, operand),), now)
        elif op in ("eq", "neq", "in"):
            sample = operand[0] if op == "in" else operand
            typed = v.bool if isinstance(sample, bool) else v.str if isinstance(sample, str) else v.float
            cond = _cmp(typed, op, operand)
        elif isinstance(operand, str):
            cond = _date_ops(v.str.try_cast("timestamp"), ((op, operand),), now)
        else:
            cond = _cmp(v.float, op, operand)
        out = out & cond
    return out


def _typed_ops(col: ir.Value, dtype: dt.DataType, ops: tuple, now: Instant, path: str, name: str) -> ir.BooleanValue:
    """Operators on a typed column of ``profiles``; a wrong operand type is a definition error."""
    out: ir.BooleanValue = ibis.literal(True)
    for op, operand in ops:
        if op == "exists":
            cond = col.notnull() if operand else col.isnull()
        elif dtype.is_timestamp():
            if op in ("contains", "eq", "neq", "in") or (
                op in ("gt", "gte", "lt", "lte") and not isinstance(operand, str)
            ):
                raise bad(
                    f"{path}.{op}", f"{name!r} is a date: use before_days_ago, within_days, or gt/lt with an ISO date"
                )
            cond = _date_ops(col, ((op, operand),), now)
        elif dtype.is_numeric():
            sample = operand[0] if op == "in" else operand
            if op in d.DATE_OPS or op == "contains" or isinstance(sample, str | bool):
                raise bad(f"{path}.{op}", f"{name!r} is a number: compare it with numbers (eq, gt, in...)")
            cond = _cmp(col, op, operand)
        else:
            sample = operand[0] if op == "in" else operand
            if op in d.DATE_OPS or (op != "contains" and not isinstance(sample, str)):
                raise bad(f"{path}.{op}", f"{name!r} is text: compare it with strings (eq, in, contains...)")
            cond = col.contains(operand) if op == "contains" else _cmp(col, op, operand)
        out = out & cond
    return out


#: Event names that stand for Segment's page and screen calls (whose ``event`` is empty).
CALLS = {"Page Viewed": "page", "Screen Viewed": "screen"}


def is_kind(ev: ir.Table, name: str) -> ir.BooleanValue:
    """Whether an event is of the kind ``name``: a track call of that name, or a page/screen call."""
    if name in CALLS:
        return ev.type == CALLS[name]
    return ev.event == name


def of_kinds(ev: ir.Table, names: set[str]) -> ir.BooleanValue:
    """Whether an event is of any of the kinds ``names`` (one predicate the engine can push down)."""
    tracks = sorted(n for n in names if n not in CALLS)
    calls = sorted(CALLS[n] for n in names if n in CALLS)
    cond: ir.BooleanValue = ev.event.isin(tracks) if tracks else ibis.literal(False)
    if calls:
        cond = cond | ev.type.isin(calls)
    return cond


def _where(ev: ir.Table, step: d.Step, now: Instant, since: Instant | None = None) -> ir.BooleanValue:
    """Whether an event is of the step's kind (at or after ``since``) with the step's properties. The
    properties (JSON, costly to read) are read only for the events of that kind, in that window; the
    result is NULL or false alike for an event that does not match (both count as not matching)."""
    cond = is_kind(ev, step.event)
    if since is not None:
        cond = cond & (ev.timestamp >= lit(since))
    if not step.where:
        return cond
    props: ir.BooleanValue = ibis.literal(True)
    for prop, ops in step.where:
        props = props & _json_ops(ev.properties[prop], ops, now, prop)
    return ibis.ifelse(cond, props, False)


IDS = ("message_id", "user_id", "anonymous_id")


def owners(
    wh: Warehouse,
    events: ir.Table,
    restrict: ir.Table | None = None,
    values: Callable[[ir.Table], ir.Table] | None = None,
) -> ir.Table:
    """``events`` with the ``profile_id`` the one customer rule names
    (:func:`touchpoint.identity.people.customer_events`) instead of ``message_id, user_id,
    anonymous_id``; only the events of the profiles in ``restrict`` when given. ``values`` picks the
    columns to keep (the three ids and what it computes; default: all), once the events are narrowed.

    With identities resolved and ``event_identities`` kept, each event meets its profile through that
    table, and only the columns given travel through the joins; an event without a row there (stored
    since the last identity update) falls back, as the rule says, to the profile of its ``user_id``,
    else of its ``anonymous_id``, else the raw id. With ``restrict``, the events are first narrowed to
    those that can belong to one of its profiles: resolved to one of their identity nodes, or carrying
    one of their identifiers (or their id itself) for the fallback. Other rules: ``customer_events``.
    """
    from touchpoint.identity import store as identity_store
    from touchpoint.identity import tables as T
    from touchpoint.identity.people import customer_events, rule_for

    pick = values or (lambda ev: ev)
    if rule_for(wh) != "profiles" or not identity_store.events_indexed(wh):
        narrow = pick(events)
        payload = [c for c in narrow.columns if c not in IDS]
        ev = customer_events(wh, narrow, name="profile_id").select("profile_id", *payload)
        return ev if restrict is None else ev.filter(ev.profile_id.isin(restrict.profile_id))
    ei = wh.table(T.EVENTS)
    nodes = wh.table(T.NODES)
    if restrict is not None:
        mine = nodes.filter(nodes.profile_id.isin(restrict.profile_id))
        resolved = ei.filter(ei.node_id.isin(mine.node_id))
        ids = mine.select(tp_id=mine.id_value).union(restrict.select(tp_id=restrict.profile_id), distinct=False)
        events = events.filter(
            events.message_id.isin(resolved.message_id)
            | events.user_id.isin(ids.tp_id)
            | events.anonymous_id.isin(ids.tp_id)
        )
    events = pick(events)
    payload = [c for c in events.columns if c not in IDS]
    ep = ei.select(tp_mid=ei.message_id, tp_node=ei.node_id)
    j = events.left_join(ep, events.message_id == ep.tp_mid)
    n = nodes.select(tp_nid=nodes.node_id, tp_ep=nodes.profile_id)
    j = j.left_join(n, j.tp_node == n.tp_nid)
    none = ibis.null(dt.string)
    j = j.select(
        *events.columns,
        "tp_ep",
        tp_fu=ibis.ifelse(j.tp_ep.isnull(), j.user_id, none),  # look the fallback up only when unresolved
        tp_fa=ibis.ifelse(j.tp_ep.isnull(), j.anonymous_id, none),
    ).view()  # a relation of its own: Ibis would otherwise fold the next joins into this chain
    users = nodes.filter(nodes.id_type == "user_id").select(tp_uid=nodes.id_value, tp_up=nodes.profile_id)
    anons = nodes.filter(nodes.id_type == "anonymous_id").select(tp_aid=nodes.id_value, tp_ap=nodes.profile_id)
    j = j.left_join(users, j.tp_fu == users.tp_uid)
    j = j.left_join(anons, j.tp_fa == anons.tp_aid)
    owner = ibis.coalesce(j.tp_ep, j.tp_up, j.tp_ap, j.user_id, j.anonymous_id)
    out = j.select(owner.name("profile_id"), *[j[c] for c in payload])
    return out if restrict is None else out.filter(out.profile_id.isin(restrict.profile_id))


Where = Callable[[ir.Table], ir.BooleanValue]


def carried(wh: Warehouse) -> dict[str, Any] | None:
    """The identity state when the one customer rule is the profiles' and ``event_identities`` carries
    each resolved event's kind, times and properties (identity state version 3): then the behaviour of
    resolved events is read there by node id (:func:`facts`). None otherwise."""
    from touchpoint.identity import store as identity_store
    from touchpoint.identity.people import rule_for

    if rule_for(wh) != "profiles":
        return None
    state = identity_store.read_state(wh)
    return state if identity_store.events_carried(wh, state) else None


def unresolved(wh: Warehouse, state: dict[str, Any], where: Where) -> ir.Table:
    """The events matching ``where`` stored since the identity watermark of ``state`` and not resolved
    (no row in ``event_identities``): ``message_id, user_id, anonymous_id`` and the rest of ``events``.

    Every resolved event was received at or before the watermark, so only the log's tail is read (the
    log is appended in arrival order: the scan skips the older row groups by their min/max)."""
    from touchpoint.identity import tables as T

    e = wh.table("events")
    ix = wh.table(T.EVENTS)
    mark = state.get("watermark")
    tail = e.filter(where(e))
    seen = ix
    if mark is not None:
        at = mark if isinstance(mark, ir.Value) else ibis.literal(datetime.fromisoformat(str(mark)), "timestamp")
        tail = tail.filter(e.received_at > at)
        seen = ix.filter(ix.received_at > at)  # none, unless an identity update commits meanwhile
    mids = seen.select(tp_mid=seen.message_id)
    return tail.anti_join(mids, tail.message_id == mids.tp_mid)


def fallback_owner(wh: Warehouse, events: ir.Table) -> ir.Table:
    """``events`` (with ``user_id, anonymous_id``) with ``profile_id``: the profile of the user id's
    identity node, else of the anonymous id's, else the raw id (the one customer rule for an event
    not resolved yet)."""
    from touchpoint.identity import tables as T

    nodes = wh.table(T.NODES)
    users = nodes.filter(nodes.id_type == "user_id").select(tp_uid=nodes.id_value, tp_up=nodes.profile_id)
    anons = nodes.filter(nodes.id_type == "anonymous_id").select(tp_aid=nodes.id_value, tp_ap=nodes.profile_id)
    j = events.left_join(users, events.user_id == users.tp_uid)
    j = j.left_join(anons, j.anonymous_id == anons.tp_aid)
    owner = ibis.coalesce(j.tp_up, j.tp_ap, j.user_id, j.anonymous_id)
    return j.select(*events.columns, profile_id=owner)


def facts(
    wh: Warehouse,
    state: dict[str, Any],
    where: Where,
    restrict: ir.Table | None,
    values: Callable[[ir.Table], dict[str, ir.Value]],
    narrow: Where | None = None,
) -> ir.Table:
    """``profile_id`` and ``values`` of every event matching ``where`` that belongs to a profile (of
    ``restrict`` when given), by the one customer rule, read without touching the log's message ids:

    * resolved events from ``event_identities`` (which carries their kind, times and properties),
      met with their profile by node id; with ``restrict``, only its profiles' nodes are probed (the
      engine filters the scan by those node ids);
    * events stored since the last identity update (:func:`unresolved`) by their user or anonymous id.

    An event received before the identity watermark and not resolved (its identifiers all blocked)
    belongs to no profile. ``state`` is :func:`carried`'s. With ``restrict``, the resolved events are
    filtered by ``narrow`` (default ``where``) alone before they meet the profiles' nodes: a weaker
    condition (the time window without the kinds) that keeps the scan a plain range the engine filters
    by node id at once (measured three times cheaper at 1M profiles); ``values`` must then decide by
    itself which events count."""
    from touchpoint.identity import tables as T

    ix = wh.table(T.EVENTS)
    nodes = wh.table(T.NODES)
    n = nodes.select(tp_nid=nodes.node_id, profile_id=nodes.profile_id)
    if restrict is not None:
        n = n.filter(n.profile_id.isin(restrict.profile_id))
    r = ix.filter((narrow or where)(ix) if restrict is not None else where(ix))
    r = r.join(n, r.node_id == n.tp_nid)
    resolved = r.select("profile_id", **values(r))
    tail = unresolved(wh, state, where)
    tail = tail.select("user_id", "anonymous_id", **values(tail)).view()
    owned = fallback_owner(wh, tail)
    owned = owned.select("profile_id", *[c for c in resolved.columns if c != "profile_id"])
    if restrict is not None:
        owned = owned.filter(owned.profile_id.isin(restrict.profile_id))
    return resolved.union(owned, distinct=False)


class Compiler:
    """Turns one parsed definition into a member expression; ``lookup`` resolves audience names."""

    def __init__(
        self, wh: Warehouse, now: datetime, lookup: Lookup, *, at: Instant = None, ident: dict[str, Any] | None = None
    ) -> None:
        """``at``: the instant the expression reads (default ``now``; an Ibis timestamp makes it a bound
        parameter, while the plan is made at ``now``). ``ident``: the identity state :func:`carried` would
        read (its ``watermark`` may be an Ibis timestamp too)."""
        self.wh = wh
        self.plan = _Plan(now=now)
        self.lookup = lookup
        self.at = now if at is None else at
        self.ident = ident

    # -- leaves --------------------------------------------------------------------------------------
    def _trait(self, node: d.Trait, path: str) -> Pred:
        now = self.at
        if node.trait in PROFILE_COLUMNS.names:
            dtype = PROFILE_COLUMNS[node.trait]
            col_name = node.trait
            self.plan.profile_columns.add(col_name)
            probe = self.plan.now if dtype.is_timestamp() else 0 if dtype.is_numeric() else ""
            _typed_ops(ibis.literal(probe, dtype), dtype, node.ops, now, path, node.trait)  # check types now
            for op, n in node.ops:
                if dtype.is_timestamp() and op in d.DATE_OPS:
                    self.plan.trait_dates.add((col_name, True, n))
            return lambda t: _typed_ops(t[col_name], dtype, node.ops, now, path, node.trait)
        col = self.plan.traits.setdefault(node.trait, self.plan.column("trait"))
        for op, n in node.ops:
            if op in d.DATE_OPS:
                self.plan.trait_dates.add((node.trait, False, n))
        return lambda t: _json_ops(t[col], node.ops, now, path)

    def _consent(self, node: d.Consent) -> Pred:
        """Consent holds: a flag on the profiles whose stated consent differs from the purpose's default."""
        from touchpoint.privacy import consent, purposes

        plan, purpose = self.plan, node.purpose
        plan.consents.add(purpose)
        default = purposes.default_granted(purpose)
        col = plan.column("consent")

        def differs(_ev: ir.Table) -> ir.Table:
            s = consent.state(self.wh, at=plan.now, purpose=purpose)
            return s.filter(s.granted != default).select("profile_id").distinct()

        plan.flags.append((col, differs))
        return (lambda t: t[col].isnull()) if default else (lambda t: t[col].notnull())

    def _manual(self, name: str | None, path: str) -> Pred:
        """The open stays of a manual audience (who was added and not removed), at ``now``."""
        if name is None:
            raise bad(path, '{"manual": true} is the definition of a saved audience only')
        plan, col = self.plan, self.plan.column("manual")

        def stays(_ev: ir.Table) -> ir.Table:
            m = self.wh.table(schema.AUDIENCE_MEMBERSHIPS.name)
            at = lit(self.at)
            m = m.filter((m.audience == name) & (m.entered_at <= at) & (m.exited_at.isnull() | (m.exited_at > at)))
            return m.select("profile_id").distinct()

        plan.flags.append((col, stays))
        return lambda t: t[col].notnull()

    def _prediction(self, node: d.Prediction, path: str) -> Pred:
        now = self.at
        name = node.prediction
        if name == "propensity":
            assert node.event is not None and node.days is not None
            col = self.plan.propensity.setdefault((node.event, node.days), self.plan.column("propensity"))
            return lambda t: _typed_ops(t[col], dt.float64, node.ops, now, path, name)
        if name == "replenishment_due_at":
            self.plan.forward_dates = True
            col = self.plan.column("replenish")

            def due(_ev: ir.Table) -> ir.Table:
                r = self.wh.table("replenishment")
                if node.product is not None:
                    r = r.filter(r.product == node.product)
                r = r.filter(_date_ops(r.due_at, node.ops, now, forward=True))
                return r.select(profile_id=r.customer_id).distinct()

            self.plan.flags.append((col, due))
            return lambda t: t[col]
        self.plan.predictions.add(name)
        if name in d.FORWARD_DATES:
            self.plan.forward_dates = True
            return lambda t: _date_ops(t[name], node.ops, now, forward=True)
        return lambda t: _typed_ops(t[name], dt.float64, node.ops, now, path, name)

    def _event(self, node: d.Event) -> Pred:
        plan = self.plan
        now = self.at
        plan.event_names.add(node.step.event)
        col = plan.column("event")
        window = node.within_days
        plan.offsets.add(0)
        if window is not None:
            plan.offsets.add(window)
        for ops in (node.first, node.last):
            for op, n in ops or ():
                if op in d.DATE_OPS:
                    plan.offsets.add(n)

        def matches(ev: ir.Table) -> ir.BooleanValue:
            return _where(ev, node.step, now, None if window is None else ago(now, window))

        plan.since.append(None if window is None else plan.now - timedelta(days=window))
        hit, val = f"{col}_m", f"{col}_v"
        if node.sum is not None:
            prop = node.sum_property
            plan.aggregates.append(
                (col, {hit: matches, val: lambda ev: ev.properties[prop].float}, lambda t: t[val].sum(where=t[hit]))
            )
            sum_ops = node.sum.ops
            return lambda t: _typed_ops(ibis.coalesce(t[col], 0.0), dt.float64, sum_ops, now, "", "sum")
        if node.first is not None or node.last is not None:
            first = node.first is not None
            date_ops: tuple = node.first or node.last or ()

            def when(t: ir.Table) -> ir.Value:
                return t[val].min(where=t[hit]) if first else t[val].max(where=t[hit])

            plan.aggregates.append((col, {hit: matches, val: lambda ev: ev.timestamp}, when))
            return lambda t: _date_ops(t[col], date_ops, now)
        assert node.count is not None
        plan.aggregates.append((col, {hit: matches}, lambda t: t.count(where=t[hit])))
        count_ops = node.count.ops
        return lambda t: _typed_ops(ibis.coalesce(t[col], 0), dt.int64, count_ops, now, "", "count")

    def _sequence(self, node: d.Sequence) -> Pred:
        plan = self.plan
        now = self.at
        plan.offsets.add(0)
        plan.sequences = True
        plan.since.append(None)
        for step in node.steps:
            plan.event_names.add(step.event)
        col = plan.column("sequence")
        span = timedelta(days=node.within_days)

        def chains(ev: ir.Table) -> ir.Table:
            def occurrences(step: d.Step) -> ir.Table:
                s = ev.filter(_where(ev, step, now))
                return s.select(sp=s.profile_id, st=s.timestamp).distinct()

            first = occurrences(node.steps[0])
            cur = first.select(cp=first.sp, t_first=first.st, t_last=first.st)
            for step in node.steps[1:]:
                nxt = occurrences(step)
                on = (
                    (cur.cp == nxt.sp)
                    & (nxt.st > cur.t_last)
                    & (nxt.st <= cur.t_first + ibis.interval(seconds=int(span.total_seconds())))
                )
                j = cur.join(nxt, on)
                cur = j.group_by([j.cp, j.t_first]).agg(t_last=j.st.min())
            return cur.select(profile_id=cur.cp).distinct()

        plan.flags.append((col, chains))
        return lambda t: t[col]

    # -- structure -------------------------------------------------------------------------------------
    def node(self, node: d.Node, path: str = "$", stack: tuple[str, ...] = ()) -> Pred:
        if isinstance(node, d.All | d.AnyOf):
            key = "all" if isinstance(node, d.All) else "any"
            parts = [self.node(item, f"{path}.{key}[{i}]", stack) for i, item in enumerate(node.items)]

            def combine(t: ir.Table) -> ir.BooleanValue:
                out = parts[0](t)
                for p in parts[1:]:
                    out = (out & p(t)) if key == "all" else (out | p(t))
                return out

            return combine
        if isinstance(node, d.Not):
            inner = self.node(node.item, f"{path}.not", stack)
            return lambda t: ~inner(t)
        if isinstance(node, d.Manual):
            return self._manual(stack[-1] if stack else None, path)
        if isinstance(node, d.Audience):
            if node.audience in stack:
                chain = " -> ".join([*stack[stack.index(node.audience) :], node.audience])
                raise bad(f"{path}.audience", f"audiences refer to each other in a cycle: {chain}")
            target = self.lookup(node.audience)
            if target is None:
                raise bad(
                    f"{path}.audience",
                    f"unknown audience {node.audience!r}",
                    hint="list them: `touchpoint audiences list`",
                )
            try:
                return self.node(target, "$", (*stack, node.audience))
            except InvalidDefinition as exc:  # name the node in the definition at hand, and where inside
                detail = exc.message.split(": ", 1)[-1]
                raise bad(f"{path}.audience", f"in audience {node.audience!r} at {exc.path}: {detail}") from None
        leaf: Pred
        if isinstance(node, d.Trait):
            leaf = self._trait(node, path)
        elif isinstance(node, d.Consent):
            leaf = self._consent(node)
        elif isinstance(node, d.Prediction):
            leaf = self._prediction(node, path)
        elif isinstance(node, d.Event):
            leaf = self._event(node)
        else:
            leaf = self._sequence(node)
        return lambda t: leaf(t).fill_null(False)

    # -- the expression ------------------------------------------------------------------------------------
    def events(self, restrict: ir.Table | None = None) -> ir.Table:
        """The visible events of the definition's kinds (from the earliest window any condition reads),
        each with the ``profile_id`` it belongs to and the values the aggregates read; with a
        sequence, also ``type, event, timestamp, properties``."""
        plan = self.plan
        bound = plan.lower_bound()
        lo = None if bound is None else ago(self.at, (plan.now - bound).days)  # as many days before `at`

        def window(t: ir.Table) -> ir.BooleanValue:
            cond = t.timestamp <= lit(self.at)
            return cond if lo is None else cond & (t.timestamp >= lit(lo))

        def where(t: ir.Table) -> ir.BooleanValue:
            return of_kinds(t, plan.event_names) & window(t)

        whole = ["type", "event", "timestamp", "properties"] if plan.sequences else []

        def built(ev: ir.Table) -> dict[str, ir.Value]:
            return {c: build(ev) for _, rows, _ in plan.aggregates for c, build in rows.items()}

        state = carried(self.wh) if self.ident is None else self.ident
        if state is not None:
            # each aggregate's value and each sequence step test the event's kind themselves
            return facts(self.wh, state, where, restrict, lambda ev: {c: ev[c] for c in whole} | built(ev), window)

        def values(ev: ir.Table) -> ir.Table:
            return ev.select(*IDS, *whole, **built(ev))

        e = self.wh.table("events")
        return owners(self.wh, e.filter(where(e)), restrict, values)

    def table(self, restrict: ir.Table | None = None) -> ir.Table:
        """Profiles (all, or those in ``restrict``) with every feature the compiled leaves read."""
        plan = self.plan

        def only(t: ir.Table, key: str = "profile_id") -> ir.Table:
            return t if restrict is None else t.filter(t[key].isin(restrict.profile_id))

        p = self.wh.table("profiles")
        t = only(p.select("profile_id", *sorted(plan.profile_columns - {"profile_id"})))
        joins: list[ir.Table] = []
        traits = self.wh.table("profile_traits")
        for trait, col in plan.traits.items():
            tr = only(traits.filter(traits.trait == trait))
            joins.append(tr.group_by("profile_id").agg(**{col: tr.value.max().cast("json")}))
        if plan.predictions:
            pr = only(self.wh.table("predictions"), "customer_id")
            joins.append(
                pr.group_by(profile_id=pr.customer_id).agg(**{c: pr[c].max() for c in sorted(plan.predictions)})
            )
        if plan.propensity:
            ps = only(self.wh.table("propensity_scores"), "customer_id")
            for (event, days), col in plan.propensity.items():
                s = ps.filter((ps.event == event) & (ps.days == days))
                joins.append(s.group_by(profile_id=s.customer_id).agg(**{col: s.score.max()}))
        ev = self.events(restrict) if plan.event_names else None
        if plan.aggregates:
            assert ev is not None
            joins.append(ev.group_by("profile_id").agg(**{col: agg(ev) for col, _, agg in plan.aggregates}))
        for col, build in plan.flags:
            flag = build(ev)
            joins.append(flag.select("profile_id", **{col: ibis.literal(True)}))
        for j in joins:
            feature_cols = [c for c in j.columns if c != "profile_id"]
            j = j.rename(tp_key="profile_id")
            t = t.left_join(j, t.profile_id == j.tp_key).select(*t.columns, *feature_cols)
        return t

    def members(self, root: d.Node, *, restrict: ir.Table | None = None, stack: tuple[str, ...] = ()) -> ir.Table:
        """The member expression: one ``profile_id`` column. ``restrict`` (a table with ``profile_id``)
        limits the evaluation to those profiles (incremental refresh)."""
        predicate = self.node(root, "$", stack)
        t = self.table(restrict)
        return t.filter(predicate(t)).select("profile_id")


def compile_members(
    wh: Warehouse,
    root: d.Node,
    *,
    now: datetime,
    lookup: Lookup,
    restrict: ir.Table | None = None,
    name: str | None = None,
) -> tuple[ir.Table, _Plan]:
    """The member expression of ``root`` at ``now`` and what it depends on (for incremental refresh)."""
    c = Compiler(wh, now, lookup)
    expr = c.members(root, restrict=restrict, stack=(name,) if name else ())
    return expr, c.plan


def plan_of(wh: Warehouse, root: d.Node, *, now: datetime, lookup: Lookup, name: str | None = None) -> _Plan:
    """What the member expression of ``root`` at ``now`` depends on, without building it (the
    incremental refresh builds only the expression restricted to its candidates)."""
    c = Compiler(wh, now, lookup)
    c.node(root, "$", (name,) if name else ())
    return c.plan


def explain(expr: ir.Table) -> str:
    """The SQL the engine runs for a member expression."""
    return str(ibis.to_sql(expr))
