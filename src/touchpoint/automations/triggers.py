"""Deciding who enters: triggers since the watermark become entries (with their arm) and outbox rows.

One evaluation of an automation, under ``Warehouse.exclusive("automation:NAME")``:

1. **Select** the triggers received since the watermark (an event of the trigger's name whose
   properties match ``where``, or an entry to / exit from the audience), each with its profile and,
   in the same query, whether the profile consents to each action's purpose.
2. **Key** each by the re-entry policy: ``once`` keys every trigger of a profile as ``"once"``;
   ``every_time`` and ``once_per_days`` key it by the trigger itself (the event's ``messageId``, the
   audience change and its instant); ``once_per_days`` drops a profile that entered fewer than N days
   before.
3. **Assign** the arm: ``holdout`` when the profile's hash bucket for ``automation:NAME`` is below the
   holdout share (sticky: the same profile is always in the same arm of one automation).
4. **Write**, in one transaction: the entries, an outbox row per action step for each treated entry
   (``pending``, or ``suppressed`` without consent, due after the waits before it), and the watermark.
   Entries and outbox rows are keyed with a unique key, so the same trigger evaluated twice decides once.

A new automation starts from its creation: triggers received before it existed never enter. The
scan looks back ``OVERLAP`` before the watermark, so an event acknowledged late (received earlier, committed
after the last evaluation) is still seen; the unique keys make the re-read harmless. A paused automation
moves its watermark on without entering anyone, and raises its ``floor`` with it: triggers passed over
while paused stay passed over (the look-back never reaches below the floor).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.automations import consent, dates, flows, outbox, pacing, schedules, store
from touchpoint.automations.definition import Automation, Trigger
from touchpoint.experiments.assignment import bucket
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.prepared import joined, listed

ENTRIES = schema.AUTOMATION_ENTRIES.name
STATE = schema.AUTOMATION_STATE.name
OVERLAP = timedelta(minutes=10)
MAX_TRIGGERS = 200_000  # per evaluation; the rest wait for the next one (the watermark says where)


def holdout_key(name: str) -> str:
    return f"automation:{name}"


def in_holdout(auto: Automation, profile_id: str) -> bool:
    return auto.holdout > 0 and bucket(holdout_key(auto.name), profile_id) < auto.holdout


def _state_read(wh: Warehouse, name: str) -> ir.Table:
    t = wh.table(STATE)
    return t.filter(t.automation == name)


def _state(wh: Warehouse, name: str) -> dict[str, Any] | None:
    rows = wh.prepared(_state_read, name).to_pylist()
    return rows[0] if rows else None


def _ts(value: str) -> ir.TimestampValue:
    """A builder's timestamp value (an ISO text bound as a parameter, cast in the engine)."""
    return ibis.literal(value, "string").cast("timestamp")


def _comparable(value: Any, operand: Any) -> bool:
    """Numbers compare with numbers and strings with strings; nothing else is ordered."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int | float) and isinstance(operand, int | float):
        return True
    return isinstance(value, str) and isinstance(operand, str)


def _matches(props: dict[str, Any], where: dict[str, Any]) -> bool:
    for key, cond in where.items():
        present = key in props
        value = props.get(key)
        if not isinstance(cond, dict):
            if not present or value != cond:
                return False
            continue
        for op, operand in cond.items():
            if op == "exists":
                if present != operand:
                    return False
                continue
            if op == "eq" and value != operand:
                return False
            if op == "ne" and value == operand:
                return False
            if op == "in" and value not in operand:
                return False
            if op in ("gt", "gte", "lt", "lte"):
                if not _comparable(value, operand):
                    return False
                ok = {"gt": value > operand, "gte": value >= operand, "lt": value < operand, "lte": value <= operand}
                if not ok[op]:
                    return False
    return True


def _selected(
    wh: Warehouse, trigger: Trigger, since: datetime, until: datetime, *, floor: datetime, anchor: datetime
) -> ir.Table:
    """Triggers in ``(since, until]`` as ``profile_id, trigger, at, properties`` (an expression)."""
    lo, hi = ibis.literal(since, "timestamp"), ibis.literal(until, "timestamp")
    if trigger.event is not None:
        return _event_triggers(wh, ibis.literal(trigger.event), lo, hi)
    if trigger.kind == "score":
        b = wh.table(schema.SCORE_BANDS.name)
        b = b.filter((b.score == trigger.score) & (b.band == trigger.band) & (b.entered_at > lo) & (b.entered_at <= hi))
        return b.select(
            "profile_id",
            trigger=ibis.literal(f"band:{trigger.score}:{trigger.band}:") + b.entered_at.cast("string"),
            at=b.entered_at,
            properties=ibis.null("string"),
        )
    if trigger.kind == "date":
        return dates.selected(wh, trigger, floor=floor, now=until)
    if trigger.kind == "schedule":
        assert trigger.schedule is not None and trigger.audience is not None
        run = schedules.latest_run(trigger.schedule, anchor, since, until)
        return schedules.members_at(wh, trigger.audience, run)
    m = wh.table(schema.AUDIENCE_MEMBERSHIPS.name)
    col = "entered_at" if trigger.on == "enter" else "exited_at"
    m = m.filter((m.audience == trigger.audience) & (m[col] > lo) & (m[col] <= hi))
    return m.select(
        "profile_id",
        trigger=ibis.literal(f"{trigger.on}:") + m[col].cast("string"),
        at=m[col],
        properties=ibis.null("string"),
    )


def _event_triggers(
    wh: Warehouse, event: ir.StringValue, lo: ir.TimestampValue, hi: ir.TimestampValue, rule: str = "auto"
) -> ir.Table:
    """``track`` events named ``event`` received in ``(lo, hi]`` as ``profile_id, trigger, at, properties``."""
    from touchpoint.identity.people import customer_events

    e = wh.table("events")
    e = e.filter((e.type == "track") & (e.event == event) & (e.received_at > lo) & (e.received_at <= hi))
    ce = customer_events(wh, e, rule=rule, name="profile_id")
    return ce.select("profile_id", trigger=ce.message_id, at=ce.received_at, properties=ce.properties.cast("string"))


def _chosen(wh: Warehouse, expr: ir.Table, purposes: list[str], at: ir.TimestampValue | None = None) -> ir.Table:
    """The selected triggers with each purpose's consent (``tp_consent_I``), in order, at most :data:`MAX_TRIGGERS`."""
    for i, purpose in enumerate(purposes):
        expr = consent.with_consent(wh, expr, purpose, column=f"tp_consent_{i}", at=at)
    return expr.filter(expr.profile_id.notnull()).order_by(["at", "trigger"]).limit(MAX_TRIGGERS)


def _not_yet(wh: Warehouse, triggers: ir.Table, name: str) -> ir.Table:
    """``triggers`` without those that entered automation ``name`` already (an event's ``messageId`` is its
    trigger, unique): the look-back and the fast lane read a trigger many times, and only new ones reach Python."""
    t = wh.table(ENTRIES)
    t = t.filter(t.automation == ibis.literal(name, "string")).select(tp_trigger="trigger")
    return triggers.anti_join(t, triggers.trigger == t.tp_trigger)


def _event_read(
    wh: Warehouse, key: tuple[Any, ...], name: str, event: str, since: str, until: str, now: str
) -> ir.Table:
    """The prepared read of an event trigger's selection (:func:`_chosen` over :func:`_event_triggers`, without
    the triggers entered already): the hot path of every run, compiled once per process; ``key`` is the
    purposes, how consent reads each (:func:`consent.shape`) and whether events' identities are indexed."""
    purposes = list(key[0])
    triggers = _event_triggers(wh, ibis.literal(event, "string"), _ts(since), _ts(until), "profiles")
    return _chosen(wh, _not_yet(wh, triggers, name), purposes, _ts(now))


#: how far before the profiles' caught-up instant the fast lane looks for events identity resolution has not
#: taken yet (an event is stamped when received and committed within a second or so; see :func:`_fast_read`)
PENDING_MARGIN = timedelta(seconds=60)


def _fast_triggers(
    wh: Warehouse,
    event: ir.StringValue,
    lo: ir.TimestampValue,
    hi: ir.TimestampValue,
    done: ir.TimestampValue,
    rules: Any,
) -> ir.Table:
    """The fast lane: ``track`` events named ``event`` received in ``(lo, hi]`` (after the profiles caught up)
    whose profile is already known and cannot change with the events not resolved yet, as ``profile_id,
    trigger, at, properties``.

    An event qualifies when its ``user_id`` is an identity node (its profile is the node's), its
    ``anonymous_id`` is absent or a node of the same profile, it carries no email, no traits (``traits`` or
    ``context.traits``) and no identifier in its JSON, and neither identifier is *touched* by an unresolved
    event (received after ``done`` minus :data:`PENDING_MARGIN` and not in ``identity_recent``) that could
    link or merge or bring traits: any event other than ``track``, or one with an unknown or conflicting
    identifier, an email, traits or JSON identifiers. Everything else waits for the profiles job (the slow
    path). Consent is read through the identity nodes (a consent row recorded with an event under a known
    identifier counts at once)."""
    from touchpoint.identity import tables as identity_tables
    from touchpoint.identity.extract import json_mentioned

    e = wh.table("events")
    nodes = wh.table(identity_tables.NODES)
    users = nodes.filter(nodes.id_type == "user_id").select(tp_uid=nodes.id_value, tp_up=nodes.profile_id)
    anons = nodes.filter(nodes.id_type == "anonymous_id").select(tp_aid=nodes.id_value, tp_ap=nodes.profile_id)
    recent = wh.table(identity_tables.RECENT).select("message_id")
    margin = ibis.interval(seconds=int(PENDING_MARGIN.total_seconds()))
    pending = e.filter(e.received_at > done - margin).anti_join(recent, "message_id")
    pj = pending.left_join(users, pending.user_id == users.tp_uid)
    pj = pj.left_join(anons, pj.anonymous_id == anons.tp_aid)
    unsafe = pj.filter(
        (pj.type != "track")
        | pj.email.notnull()
        | _brings_traits(pj)
        | json_mentioned(pj, rules)
        | (pj.user_id.notnull() & pj.tp_up.isnull())
        | (pj.anonymous_id.notnull() & pj.tp_ap.isnull())
        | (pj.user_id.notnull() & pj.anonymous_id.notnull() & (pj.tp_up != pj.tp_ap))
    )
    touched = unsafe.filter(unsafe.user_id.notnull()).select(tp_b=unsafe.user_id)
    for col in ("anonymous_id", "previous_id"):
        touched = touched.union(unsafe.filter(unsafe[col].notnull()).select(tp_b=unsafe[col]))
    t = e.filter((e.type == "track") & (e.event == event) & (e.received_at > lo) & (e.received_at <= hi))
    t = t.filter(t.email.isnull() & ~_brings_traits(t) & ~json_mentioned(t, rules))
    tj = t.join(users, t.user_id == users.tp_uid)
    tj = tj.left_join(anons, tj.anonymous_id == anons.tp_aid)
    tj = tj.filter(tj.anonymous_id.isnull() | (tj.tp_ap == tj.tp_up))
    tj = tj.filter(~tj.user_id.isin(touched.tp_b), tj.anonymous_id.isnull() | ~tj.anonymous_id.isin(touched.tp_b))
    return tj.select(
        profile_id=tj.tp_up, trigger=tj.message_id, at=tj.received_at, properties=tj.properties.cast("string")
    )


def _brings_traits(t: ir.Table) -> ir.BooleanValue:
    """Whether an event may set traits (``traits``, or ``context.traits`` on any call: the profiles read both),
    judged on the raw JSON text: a template must not render a trait the profiles job has not built yet."""
    mentions = ibis.coalesce(t.context.cast("string").contains('"traits"'), False)
    return t.traits.notnull() | mentions


def _fast_read(
    wh: Warehouse, key: tuple[Any, ...], name: str, event: str, lo: str, hi: str, done: str, now: str
) -> ir.Table:
    """The prepared read of the fast lane (:func:`_fast_triggers` with consent, like :func:`_event_read`);
    ``key`` is :func:`_event_read`'s and the merge rules' fingerprint (the rules are the saved ones)."""
    from touchpoint.identity import saved_rules

    rules = saved_rules(wh)
    triggers = _fast_triggers(wh, ibis.literal(event, "string"), _ts(lo), _ts(hi), _ts(done), rules)
    return _chosen(wh, _not_yet(wh, triggers, name), list(key[0]), _ts(now))


def _latest_received(wh: Warehouse) -> ir.Scalar:
    e = wh.table("events")
    return e.received_at.max()


def _latest_built(wh: Warehouse) -> ir.Scalar:
    p = wh.table("profiles")
    return p.built_at.max()


def _watermark_source(wh: Warehouse, trigger: Trigger, now: datetime) -> datetime | None:
    """The latest instant a trigger of this kind can be evaluated up to: events received and already
    reflected in the profiles (resolved to their profile, traits built), memberships changed, band entries
    recorded, or (dates and schedules) the clock."""
    if trigger.clock:
        return now
    if trigger.kind == "score":
        b = wh.table(schema.SCORE_BANDS.name)
        return wh.to_arrow(b.filter(b.score == trigger.score).entered_at.max()).as_py()
    if trigger.event is not None:
        latest: datetime | None = wh.prepared(_latest_received).as_py()
        return _profiles_caught_up(wh, latest)
    m = wh.table(schema.AUDIENCE_MEMBERSHIPS.name)
    m = m.filter(m.audience == trigger.audience)
    return wh.to_arrow(ibis.greatest(m.entered_at.max(), m.exited_at.max())).as_py()


def _profiles_caught_up(wh: Warehouse, latest: datetime | None) -> datetime | None:
    """``latest``, held back to what identity resolution and the profiles have processed: a trigger is
    evaluated once its profile id is final and its consent traits are built, so a person who signs up and
    consents in one batch is not entered under a provisional id, or without the consent that came with the
    trigger. Before identities were ever resolved (the profiles job, `touchpoint profiles rebuild`), nothing is."""
    from touchpoint.identity import store as identity_store

    if latest is None or not identity_store.resolved(wh):
        return None
    resolved = identity_store.read_state(wh).get("watermark")
    built = wh.prepared(_latest_built).as_py()
    if resolved is None or built is None:
        return None
    return min(latest, datetime.fromisoformat(str(resolved)), built)


def evaluate(
    wh: Warehouse, name: str, *, now: datetime | None = None, default_timezone: str = "UTC", control: float = 0.0
) -> dict[str, Any]:
    """Evaluate one automation's trigger since its watermark, then advance its flows (a flow with waits for
    a time or an event, branches, splits, trait or audience steps); returns what was decided. ``control`` is
    the global control group's share (:mod:`~touchpoint.automations.pacing`): its profiles enter, never
    contacted."""
    at = now or store.now()
    with wh.exclusive(f"automation:{name}"):
        saved, auto = store.read(wh, name)
        out = _decide(wh, saved, auto, at, control)
        if saved["status"] == "active" and not auto.linear:
            out["flows"] = flows.advance(wh, auto, at, default_timezone=default_timezone)
        return out


def _decide(wh: Warehouse, saved: dict[str, Any], auto: Automation, at: datetime, control: float) -> dict[str, Any]:
    name = auto.name
    state = _state(wh, name)
    watermark: datetime = state["watermark"] if state and state["watermark"] else saved["created_at"]
    floor: datetime = state["floor"] if state and state["floor"] else saved["created_at"]
    since = max(watermark - OVERLAP, floor)
    out: dict[str, Any] = {"automation": name, "triggers": 0, "entered": 0, "held_out": 0, "outbox": 0, "suppressed": 0}
    latest: datetime | None = None
    if auto.trigger.event is not None:
        latest = wh.prepared(_latest_received).as_py()
        until = _profiles_caught_up(wh, latest)
    else:
        until = _watermark_source(wh, auto.trigger, at)
    # the fast lane (event triggers of an active automation): events received after the profiles caught up,
    # whose profile is known and stays so, decided now rather than after the next profiles run
    fast = (
        auto.trigger.event is not None
        and saved["status"] == "active"
        and until is not None
        and latest is not None
        and latest > max(since, until)
    )
    if (until is None or until <= since) and not fast:
        return out
    assert until is not None  # fast implies it
    new_mark = max(watermark, until)
    if saved["status"] != "active":  # passed over: the floor moves up with the watermark
        _save_state(wh, name, new_mark, new_mark, at)
        return {**out, "paused": True}
    purposes = sorted({s.purpose for _, s, _ in auto.actions() if s.purpose}) if auto.linear else []
    rows: list[dict[str, Any]] = []
    if auto.trigger.event is not None:  # the hot path (a trigger per event): compiled once per process
        from touchpoint.identity import store as identity_store

        indexed = identity_store.events_indexed(wh)
        key = (tuple(purposes), tuple(consent.shape(p) for p in purposes), indexed)
        now_iso = consent.now().isoformat()
        if until > since:
            values = (name, auto.trigger.event, since.isoformat(), until.isoformat(), now_iso)
            rows = wh.prepared(_event_read, *values, key=key).to_pylist()
        if fast and indexed and len(rows) < MAX_TRIGGERS:
            from touchpoint.identity import saved_rules

            assert latest is not None
            span = (max(since, until).isoformat(), latest.isoformat(), until.isoformat())
            rules = saved_rules(wh).fingerprint()
            quick = wh.prepared(_fast_read, name, auto.trigger.event, *span, now_iso, key=(*key, rules))
            rows += quick.to_pylist()[: MAX_TRIGGERS - len(rows)]
            out["fast"] = quick.num_rows
    else:
        expr = _selected(wh, auto.trigger, since, until, floor=floor, anchor=saved["created_at"])
        rows = wh.to_arrow(_chosen(wh, expr, purposes)).to_pylist()
    if len(rows) == MAX_TRIGGERS:
        new_mark = min(new_mark, rows[-1]["at"])
    if auto.trigger.where:
        rows = [r for r in rows if _matches(_props(r["properties"]), auto.trigger.where)]
    out["triggers"] = len(rows)
    decided = _entries(wh, auto, rows, purposes, at, control)
    rows_out: list[dict[str, Any]] = []
    with wh.write() as tx:
        fresh = _not_entered(wh, name, decided, by_trigger=auto.trigger.event is not None)
        entries = [e for e, _ in fresh]
        if entries:
            tx.insert_new(ENTRIES, pa.Table.from_pylist(entries, schema=schema.AUTOMATION_ENTRIES.schema.to_pyarrow()))
        if auto.linear:  # every message decided now; otherwise the flow decides each step when it is reached
            rows_out = [
                r for e, consents in fresh if e["arm"] == "treated" for r in outbox.rows_for(auto, e, consents, at)
            ]
            if rows_out:
                tx.insert_new(outbox.TABLE, outbox.to_arrow(rows_out))
        else:
            started = flows.start_rows(entries, at)
            if started:
                tx.insert_new(flows.TABLE, flows.to_arrow(started))
        _save_state(wh, name, new_mark, floor, at)
    out["entered"] = len(entries)
    out["held_out"] = sum(e["arm"] == "holdout" for e in entries)
    out["outbox"] = sum(r["status"] == "pending" for r in rows_out)
    out["suppressed"] = sum(r["status"] == "suppressed" for r in rows_out)
    return out


def _props(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _entries(
    wh: Warehouse, auto: Automation, rows: list[dict[str, Any]], purposes: list[str], at: datetime, control: float = 0.0
) -> list[tuple[dict[str, Any], dict[str, bool]]]:
    """Each trigger as an entry (keyed by the re-entry policy) with the profile's consent per purpose."""
    policy = auto.reentry.policy
    seen: set[str] = set()
    out = []
    recent: set[str] = set()
    if policy == "once_per_days" and rows:
        assert auto.reentry.days is not None
        t = wh.table(ENTRIES)
        ids = sorted({r["profile_id"] for r in rows})
        since = ibis.literal(at - timedelta(days=auto.reentry.days), "timestamp")
        near = t.filter((t.automation == auto.name) & t.profile_id.isin(ids) & (t.entered_at > since))
        recent = set(wh.to_arrow(near.select("profile_id")).column("profile_id").to_pylist())
    for r in rows:
        pid = str(r["profile_id"])
        if policy != "every_time":
            if pid in seen or pid in recent:
                continue
            seen.add(pid)
        occurrence = "once" if policy == "once" else str(r["trigger"])
        entry = {
            "automation": auto.name,
            "profile_id": pid,
            "occurrence": occurrence,
            "arm": pacing.CONTROL_ARM
            if pacing.in_control(pid, control)
            else ("holdout" if in_holdout(auto, pid) else "treated"),
            "trigger": str(r["trigger"]),
            "entered_at": at,
        }
        out.append((entry, {p: bool(r[f"tp_consent_{i}"]) for i, p in enumerate(purposes)}))
    return out


def _not_entered(
    wh: Warehouse, name: str, decided: list[tuple[dict[str, Any], dict[str, bool]]], *, by_trigger: bool = False
) -> list[tuple[dict[str, Any], dict[str, bool]]]:
    """The decided entries whose key is not stored yet (read inside the writing transaction). ``by_trigger``
    (event triggers, whose trigger is the event's unique ``messageId``): also those whose trigger entered
    already, under whichever profile: the fast lane decided it under the profile its identifier had then,
    and a merge since may name another (the same trigger decides once)."""
    if not decided:
        return []
    if by_trigger:
        done = _triggers_entered(wh, name, sorted({e["trigger"] for e, _ in decided}))
        decided = [(e, c) for e, c in decided if e["trigger"] not in done]
        if not decided:
            return []
    occurrences = joined(sorted({e["occurrence"] for e, _ in decided}))
    ids = joined(sorted({e["profile_id"] for e, _ in decided}))
    if occurrences is not None and ids is not None:
        have = wh.prepared(_entered_read, name, occurrences, ids)
    else:  # an identifier holding the separator: the same read, built for these lists
        lists = _values(decided, "occurrence"), _values(decided, "profile_id")
        have = wh.to_arrow(_entered(wh, ibis.literal(name), *lists))
    known = {(r["profile_id"], r["occurrence"]) for r in have.to_pylist()}
    return [(e, c) for e, c in decided if (e["profile_id"], e["occurrence"]) not in known]


def _triggers_entered(wh: Warehouse, name: str, triggers: list[str]) -> set[str]:
    """Which of ``triggers`` entered automation ``name`` already."""
    listed_triggers = joined(triggers)
    if listed_triggers is not None:
        have = wh.prepared(_by_trigger_read, name, listed_triggers)
    else:  # a trigger holding the separator: the same read, built for this list
        values = ibis.memtable(pa.table({"tp_v": pa.array(triggers, pa.string())}))
        have = wh.to_arrow(_by_trigger(wh, ibis.literal(name), values))
    return set(have.column("trigger").to_pylist())


def _by_trigger(wh: Warehouse, name: ir.StringValue, triggers: ir.Table) -> ir.Table:
    t = wh.table(ENTRIES)
    t = t.filter(t.automation == name)
    return t.semi_join(triggers, t.trigger == triggers.tp_v).select("trigger")


def _by_trigger_read(wh: Warehouse, name: str, triggers: str) -> ir.Table:
    return _by_trigger(wh, ibis.literal(name, "string"), listed(triggers, "tp_v"))


def _values(decided: list[tuple[dict[str, Any], dict[str, bool]]], column: str) -> ir.Table:
    return ibis.memtable(pa.table({"tp_v": pa.array(sorted({e[column] for e, _ in decided}), pa.string())}))


def _entered(wh: Warehouse, name: ir.StringValue, occurrences: ir.Table, ids: ir.Table) -> ir.Table:
    """``profile_id, occurrence`` of the entries of automation ``name`` among ``occurrences`` and ``ids``
    (one-column tables ``tp_v``)."""
    t = wh.table(ENTRIES)
    t = t.filter(t.automation == name)
    t = t.semi_join(occurrences, t.occurrence == occurrences.tp_v).semi_join(ids, t.profile_id == ids.tp_v)
    return t.select("profile_id", "occurrence")


def _entered_read(wh: Warehouse, name: str, occurrences: str, ids: str) -> ir.Table:
    return _entered(wh, ibis.literal(name, "string"), listed(occurrences, "tp_v"), listed(ids, "tp_v"))


def _save_state(wh: Warehouse, name: str, watermark: datetime, floor: datetime, at: datetime) -> None:
    row = {"automation": name, "watermark": watermark, "floor": floor, "evaluated_at": at}
    wh.upsert(
        STATE, pa.Table.from_pylist([row], schema=schema.AUTOMATION_STATE.schema.to_pyarrow()), key=["automation"]
    )


def evaluate_all(
    wh: Warehouse,
    *,
    now: datetime | None = None,
    default_timezone: str = "UTC",
    clock: bool = False,
    control: float = 0.0,
    events_only: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate every saved automation (the jobs' entry point); ``clock``: only those the clock moves;
    ``events_only``: only those with an event trigger."""
    out = []
    for a in store.list_all(wh):
        if clock or events_only:
            auto = store.of(a)
            if clock and auto.linear and not auto.trigger.clock:
                continue
            if events_only and auto.trigger.event is None:
                continue
        out.append(evaluate(wh, a["name"], now=now, default_timezone=default_timezone, control=control))
    return out
