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


@dataclass
class _Plan:
    """What the leaves need: profile columns, trait tables, prediction columns, event aggregates."""

    now: datetime
    profile_columns: set[str] = field(default_factory=set)
    traits: dict[str, str] = field(default_factory=dict)  # trait -> column
    predictions: set[str] = field(default_factory=set)
    propensity: dict[tuple[str, int], str] = field(default_factory=dict)
    flags: list[tuple[str, Any]] = field(default_factory=list)  # (column, builder(ev) -> table of profile_id)
    aggregates: list[tuple[str, Any]] = field(default_factory=list)  # (column, builder(ev) -> agg expr)
    event_names: set[str] = field(default_factory=set)
    offsets: set[int] = field(default_factory=set)  # days: windows that move with the clock (incremental)
    trait_dates: set[tuple[str, bool, int]] = field(default_factory=set)  # (trait, a profiles column?, days)
    forward_dates: bool = False
    consents: set[str] = field(default_factory=set)  # purposes whose consent the definition tests
    counter: int = 0

    def column(self, prefix: str) -> str:
        self.counter += 1
        return f"tp_{prefix}_{self.counter}"


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


def _date_ops(value: ir.Value, ops: tuple, now: datetime, *, forward: bool = False) -> ir.BooleanValue:
    """Date operators on a timestamp (or, ``forward``, a date counted in days from today)."""
    out: ir.BooleanValue = ibis.literal(True)
    today = now.date()
    for op, n in ops:
        if forward:
            v = value.cast("date")
            if op in ("within_days", "within_next_days"):
                cond = (v >= ibis.literal(today)) & (v <= ibis.literal(today + timedelta(days=n)))
            elif op == "before_days_ago":
                cond = v < ibis.literal(today - timedelta(days=n))
            else:
                cond = _cmp(v, op, ibis.literal(date.fromisoformat(str(n)[:10])))
        elif op == "within_days":
            cond = (value >= ibis.literal(now - timedelta(days=n))) & (value <= ibis.literal(now))
        elif op == "within_next_days":
            cond = (value >= ibis.literal(now)) & (value <= ibis.literal(now + timedelta(days=n)))
        elif op == "before_days_ago":
            cond = value < ibis.literal(now - timedelta(days=n))
        else:
            cond = _cmp(value, op, ibis.literal(datetime.fromisoformat(str(n)), "timestamp"))
        out = out & cond
    return out


def _json_ops(v: ir.JSONValue, ops: tuple, now: datetime, path: str) -> ir.BooleanValue:
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


def _typed_ops(col: ir.Value, dtype: dt.DataType, ops: tuple, now: datetime, path: str, name: str) -> ir.BooleanValue:
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


def _where(ev: ir.Table, step: d.Step, now: datetime) -> ir.BooleanValue:
    cond = is_kind(ev, step.event)
    for prop, ops in step.where:
        cond = cond & _json_ops(ev.properties[prop], ops, now, prop)
    return cond


class Compiler:
    """Turns one parsed definition into a member expression; ``lookup`` resolves audience names."""

    def __init__(self, wh: Warehouse, now: datetime, lookup: Lookup) -> None:
        self.wh = wh
        self.plan = _Plan(now=now)
        self.lookup = lookup

    # -- leaves --------------------------------------------------------------------------------------
    def _trait(self, node: d.Trait, path: str) -> Pred:
        now = self.plan.now
        if node.trait in PROFILE_COLUMNS.names:
            dtype = PROFILE_COLUMNS[node.trait]
            col_name = node.trait
            self.plan.profile_columns.add(col_name)
            probe = now if dtype.is_timestamp() else 0 if dtype.is_numeric() else ""
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
            lit = ibis.literal(plan.now, "timestamp")
            m = m.filter((m.audience == name) & (m.entered_at <= lit) & (m.exited_at.isnull() | (m.exited_at > lit)))
            return m.select("profile_id").distinct()

        plan.flags.append((col, stays))
        return lambda t: t[col].notnull()

    def _prediction(self, node: d.Prediction, path: str) -> Pred:
        now = self.plan.now
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
        now = plan.now
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
            cond = _where(ev, node.step, now)
            if window is not None:
                cond = cond & (ev.timestamp >= ibis.literal(now - timedelta(days=window)))
            return cond

        if node.sum is not None:
            prop = node.sum_property
            plan.aggregates.append((col, lambda ev: ev.properties[prop].float.sum(where=matches(ev))))
            sum_ops = node.sum.ops
            return lambda t: _typed_ops(ibis.coalesce(t[col], 0.0), dt.float64, sum_ops, now, "", "sum")
        if node.first is not None or node.last is not None:
            first = node.first is not None
            date_ops: tuple = node.first or node.last or ()

            def when(ev: ir.Table) -> ir.Value:
                return ev.timestamp.min(where=matches(ev)) if first else ev.timestamp.max(where=matches(ev))

            plan.aggregates.append((col, when))
            return lambda t: _date_ops(t[col], date_ops, now)
        assert node.count is not None
        plan.aggregates.append((col, lambda ev: ev.count(where=matches(ev))))
        count_ops = node.count.ops
        return lambda t: _typed_ops(ibis.coalesce(t[col], 0), dt.int64, count_ops, now, "", "count")

    def _sequence(self, node: d.Sequence) -> Pred:
        plan = self.plan
        now = plan.now
        plan.offsets.add(0)
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
        """The visible events of the definition's kinds, each with the ``profile_id`` it belongs to."""
        from touchpoint.identity.people import customer_events

        e = self.wh.table("events")
        e = e.filter(of_kinds(e, self.plan.event_names) & (e.timestamp <= ibis.literal(self.plan.now)))
        ev = customer_events(self.wh, e, name="profile_id")
        ev = ev.select("profile_id", "type", "event", "timestamp", "properties")
        if restrict is not None:
            ev = ev.filter(ev.profile_id.isin(restrict.profile_id))
        return ev

    def table(self, restrict: ir.Table | None = None) -> ir.Table:
        """Profiles (all, or those in ``restrict``) with every feature the compiled leaves read."""
        plan = self.plan
        p = self.wh.table("profiles")
        t = p.select("profile_id", *sorted(plan.profile_columns - {"profile_id"}))
        if restrict is not None:
            t = t.filter(t.profile_id.isin(restrict.profile_id))
        joins: list[ir.Table] = []
        traits = self.wh.table("profile_traits")
        for trait, col in plan.traits.items():
            tr = traits.filter(traits.trait == trait)
            joins.append(tr.group_by("profile_id").agg(**{col: tr.value.max().cast("json")}))
        if plan.predictions:
            pr = self.wh.table("predictions")
            joins.append(
                pr.group_by(profile_id=pr.customer_id).agg(**{c: pr[c].max() for c in sorted(plan.predictions)})
            )
        if plan.propensity:
            ps = self.wh.table("propensity_scores")
            for (event, days), col in plan.propensity.items():
                s = ps.filter((ps.event == event) & (ps.days == days))
                joins.append(s.group_by(profile_id=s.customer_id).agg(**{col: s.score.max()}))
        ev = self.events(restrict) if plan.event_names else None
        if plan.aggregates:
            assert ev is not None
            joins.append(ev.group_by("profile_id").agg(**{col: build(ev) for col, build in plan.aggregates}))
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


def explain(expr: ir.Table) -> str:
    """The SQL the engine runs for a member expression."""
    return str(ibis.to_sql(expr))
