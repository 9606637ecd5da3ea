"""A plain-Python audience evaluator and random data for it, to check the compiled expression against.

It reads the same rows the warehouse holds (profiles, traits, predictions, events) as Python lists and
decides membership profile by profile, written from the semantics in docs/audiences.md, not from the
compiler's code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from touchpoint.audiences import definition as d
from touchpoint.warehouse import Warehouse, schema

NOW = datetime(2026, 3, 1, 12, 0, 0)
EVENTS = ("Product Viewed", "Order Completed", "Signed Up")
CATEGORIES = ("lenses", "frames", "Lenses")
TRAIT_COLUMNS = {"orders": "number", "revenue": "number", "last_order_at": "date", "email": "text"}
PREDICTION_NUMBERS = ("p_alive", "clv")
WINDOWS = (0, 1, 3, 7)


@dataclass
class World:
    """The rows of one generated warehouse."""

    profiles: list[dict[str, Any]] = field(default_factory=list)
    traits: dict[tuple[str, str], Any] = field(default_factory=dict)  # (profile, trait) -> JSON value
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    propensity: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # user_id, event, timestamp, properties
    consents: list[dict[str, Any]] = field(default_factory=list)  # profile_id, granted, valid_from, valid_until


# -- the reference -------------------------------------------------------------------------------------
def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _when(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return datetime.fromisoformat(v).replace(tzinfo=None)
    except ValueError:
        return None


def _cmp(a: Any, op: str, b: Any) -> bool:
    return {
        "eq": a == b,
        "neq": a != b,
        "gt": a > b,
        "gte": a >= b,
        "lt": a < b,
        "lte": a <= b,
    }[op]


def _date_op(v: datetime | date | None, op: str, n: Any, now: datetime, forward: bool = False) -> bool:
    if v is None:
        return False
    if forward:
        today = now.date()
        v = v if not isinstance(v, datetime) else v.date()
        if op in ("within_days", "within_next_days"):
            return today <= v <= today + timedelta(days=n)
        if op == "before_days_ago":
            return v < today - timedelta(days=n)
        return _cmp(v, op, date.fromisoformat(n[:10]))
    assert isinstance(v, datetime)
    if op == "within_days":
        return now - timedelta(days=n) <= v <= now
    if op == "within_next_days":
        return now <= v <= now + timedelta(days=n)
    if op == "before_days_ago":
        return v < now - timedelta(days=n)
    return _cmp(v, op, datetime.fromisoformat(n))


def _json_op(v: Any, op: str, operand: Any, now: datetime) -> bool:
    """One operator on a JSON value; ``v`` is None when the key is missing or JSON null."""
    if op == "exists":
        return (v is not None) == operand
    if v is None:
        return False
    if op == "contains":
        return isinstance(v, str) and operand in v
    if op in d.DATE_OPS:
        return _date_op(_when(v), op, operand, now)
    if op in ("eq", "neq", "in"):
        sample = operand[0] if op == "in" else operand
        if isinstance(sample, bool):
            ok = isinstance(v, bool)
        elif isinstance(sample, str):
            ok = isinstance(v, str)
        else:
            ok = _number(v)
        if not ok:
            return False
        if op == "in":
            return any(v == x for x in operand)
        return _cmp(v, op, operand)
    if isinstance(operand, str):
        w = _when(v)
        return w is not None and _cmp(w, op, datetime.fromisoformat(operand))
    return _number(v) and _cmp(float(v), op, operand)


def _typed_op(v: Any, kind: str, op: str, operand: Any, now: datetime) -> bool:
    if op == "exists":
        return (v is not None) == operand
    if v is None:
        return False
    if kind == "date":
        return _date_op(v, op, operand, now)
    if op == "in":
        return v in operand
    if op == "contains":
        return operand in v
    return _cmp(v, op, operand)


def _matches(e: dict[str, Any], step: d.Step, now: datetime) -> bool:
    if e["event"] != step.event:
        return False
    props = e["properties"] or {}
    return all(all(_json_op(props.get(p), op, x, now) for op, x in ops) for p, ops in step.where)


def _visible(world: World, pid: str, now: datetime) -> list[dict[str, Any]]:
    return [e for e in world.events if e["user_id"] == pid and e["timestamp"] <= now]


def _sequence(times: list[list[datetime]], span: timedelta) -> bool:
    def extend(i: int, start: datetime, at: datetime) -> bool:
        if i == len(times):
            return True
        return any(t > at and t <= start + span and extend(i + 1, start, t) for t in times[i])

    return any(extend(1, t, t) for t in times[0])


def holds(world: World, node: d.Node, pid: str, now: datetime, saved: dict[str, d.Node]) -> bool:
    """Whether profile ``pid`` satisfies ``node`` at ``now``."""
    if isinstance(node, d.All):
        return all(holds(world, i, pid, now, saved) for i in node.items)
    if isinstance(node, d.AnyOf):
        return any(holds(world, i, pid, now, saved) for i in node.items)
    if isinstance(node, d.Not):
        return not holds(world, node.item, pid, now, saved)
    if isinstance(node, d.Audience):
        return holds(world, saved[node.audience], pid, now, saved)
    if isinstance(node, d.Consent):  # marketing_email, opt-in: the latest in force wins, a denial wins a tie
        live = [
            c
            for c in world.consents
            if c["profile_id"] == pid
            and c["valid_from"] <= now
            and (c["valid_until"] is None or c["valid_until"] > now)
        ]
        if not live:
            return False
        latest = max(c["valid_from"] for c in live)
        return all(c["granted"] for c in live if c["valid_from"] == latest)
    if isinstance(node, d.Trait):
        if node.trait in TRAIT_COLUMNS:
            row = next(p for p in world.profiles if p["profile_id"] == pid)
            kind = TRAIT_COLUMNS[node.trait]
            return all(_typed_op(row[node.trait], kind, op, x, now) for op, x in node.ops)
        v = world.traits.get((pid, node.trait))
        return all(_json_op(v, op, x, now) for op, x in node.ops)
    if isinstance(node, d.Prediction):
        if node.prediction == "propensity":
            s = world.propensity.get(pid)
            return s is not None and all(_cmp(s, op, x) for op, x in node.ops)
        p = world.predictions.get(pid, {})
        v = p.get(node.prediction)
        if node.prediction in d.FORWARD_DATES:
            return all(_date_op(v, op, x, now, forward=True) for op, x in node.ops)
        return v is not None and all(_cmp(v, op, x) for op, x in node.ops)
    events = _visible(world, pid, now)
    if isinstance(node, d.Sequence):
        times = [sorted({e["timestamp"] for e in events if _matches(e, s, now)}) for s in node.steps]
        return _sequence(times, timedelta(days=node.within_days))
    hits = [e for e in events if _matches(e, node.step, now)]
    if node.within_days is not None:
        hits = [e for e in hits if e["timestamp"] >= now - timedelta(days=node.within_days)]
    if node.sum is not None:
        values = [(e["properties"] or {}).get(node.sum_property) for e in hits]
        total = math.fsum(float(v) for v in values if _number(v))
        return all(_cmp(total, op, x) for op, x in node.sum.ops)
    if node.first is not None or node.last is not None:
        if not hits:
            return False
        when = min(e["timestamp"] for e in hits) if node.first is not None else max(e["timestamp"] for e in hits)
        return all(_date_op(when, op, x, now) for op, x in (node.first or node.last or ()))
    assert node.count is not None
    return all(_cmp(len(hits), op, x) for op, x in node.count.ops)


def members(world: World, node: d.Node, now: datetime, saved: dict[str, d.Node] | None = None) -> set[str]:
    return {p["profile_id"] for p in world.profiles if holds(world, node, p["profile_id"], now, saved or {})}


# -- writing a world into a warehouse --------------------------------------------------------------------
def _table(spec: schema.TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    s = spec.schema.to_pyarrow()
    return pa.Table.from_pylist([{c: r.get(c) for c in s.names} for r in rows], schema=s)


def event_rows(events: list[dict[str, Any]], start: int = 0) -> pa.Table:
    rows = [
        {
            "message_id": f"m{start + i}",
            "type": "track",
            "event": e["event"],
            "user_id": e["user_id"],
            "timestamp": e["timestamp"],
            "received_at": e.get("received_at", NOW),
            "properties": None if e["properties"] is None else json.dumps(e["properties"]),
        }
        for i, e in enumerate(events)
    ]
    s = schema.EVENTS.schema.to_pyarrow()
    s = s.set(s.get_field_index("properties"), pa.field("properties", pa.string()))
    return pa.Table.from_pylist([{c: r.get(c) for c in s.names} for r in rows], schema=s)


def load(wh: Warehouse, world: World) -> None:
    """Replace the warehouse's profiles, traits, predictions and events with ``world``'s."""
    built = NOW - timedelta(days=30)
    profiles = [{**p, "built_at": built} for p in world.profiles]
    traits = [
        {"profile_id": pid, "trait": t, "value": json.dumps(v), "timestamp": built, "message_id": "x"}
        for (pid, t), v in world.traits.items()
    ]
    preds = [{"customer_id": pid, "run_at": built, **v} for pid, v in world.predictions.items()]
    props = [
        {"customer_id": pid, "event": "Order Completed", "days": 30, "score": s, "run_at": built}
        for pid, s in world.propensity.items()
    ]
    with wh.write() as tx:
        tx.replace("profiles", _table(schema.PROFILES, profiles))
        tx.replace("profile_traits", _table(schema.PROFILE_TRAITS, traits))
        tx.replace("predictions", _table(schema.PREDICTIONS, preds))
        tx.replace("propensity_scores", _table(schema.PROPENSITY_SCORES, props))
        tx.delete("events")
        tx.append("events", event_rows(world.events))
        tx.delete("consent_history")
        tx.append("consent_history", _table(schema.CONSENT_HISTORY, consent_rows(world.consents, built)))
        # identities not resolved, and no merges logged (a test's merges must not reach the next example)
        for table in ("identity_nodes", "event_identities", "identity_state", "identity_merge_log"):
            tx.delete(table)


def resolve(wh: Warehouse, resolved: list[bool], version: int = 2) -> None:
    """Record identities as resolved the way ``touchpoint profiles rebuild`` leaves them: one
    ``user_id`` node per user id (its profile: the user id, as :func:`members` reads events), and the
    ``i``-th event (by message id) in ``event_identities`` when ``resolved[i]`` (cycled); the others
    are as if stored since the last identity update. ``version`` 3: the rows carry the events' kind,
    times and properties, and the watermark is just before the events' arrival when some are not
    resolved (so the resolved ones are also in the log's tail, as when an update commits during a read)."""
    carried = ("type", "event", "timestamp", "received_at", "properties")
    cols = ("message_id", "user_id", *carried)
    ev = wh.to_arrow(wh.table("events").select(*cols).order_by("message_id")).to_pylist()
    users = sorted({e["user_id"] for e in ev if e["user_id"] is not None})
    node = {u: i for i, u in enumerate(users)}
    nodes = [{"node_id": i, "id_type": "user_id", "id_value": u, "profile_id": u} for u, i in node.items()]
    flags = resolved or [False]
    links = [
        {"message_id": e["message_id"], "node_id": node[e["user_id"]], **{c: e[c] for c in carried}}
        for i, e in enumerate(ev)
        if e["user_id"] is not None and flags[i % len(flags)]
    ]
    state = [{"key": "version", "value": str(version)}]
    if version >= 3 and ev:
        arrived = max(e["received_at"] for e in ev)
        mark = arrived - timedelta(seconds=1) if len(links) < len(ev) else arrived
        state.append({"key": "watermark", "value": json.dumps(mark.isoformat())})
    with wh.write() as tx:
        tx.append("identity_nodes", _table(schema.IDENTITY_NODES, nodes))
        tx.append("event_identities", _table(schema.EVENT_IDENTITIES, links))
        tx.append("identity_state", _table(schema.IDENTITY_STATE, state))


def consent_rows(consents: list[dict[str, Any]], recorded_at: datetime) -> list[dict[str, Any]]:
    """The consent history rows of ``consents`` (recorded under the profile id, purpose marketing_email)."""
    return [
        {
            "consent_id": f"c{i}",
            "identifier_type": "profile_id",
            "identifier": c["profile_id"],
            "purpose": "marketing_email",
            "granted": c["granted"],
            "source": "api",
            "proof": f"c{i}",
            "valid_from": c["valid_from"],
            "valid_until": c["valid_until"],
            "recorded_at": recorded_at,
        }
        for i, c in enumerate(consents)
    ]


# -- strategies -------------------------------------------------------------------------------------------
# Times near the window edges: exactly N days before NOW, a second either side, or anywhere in 20 days.
def _instant() -> st.SearchStrategy[datetime]:
    edge = st.builds(
        lambda n, s: NOW - timedelta(days=n) + timedelta(seconds=s),
        st.sampled_from((*WINDOWS, 30, 90)),
        st.sampled_from((-1, 0, 1)),
    )
    anywhere = st.integers(-20 * 24, 2 * 24).map(lambda h: NOW + timedelta(hours=h))
    return st.one_of(edge, anywhere)


json_scalar = st.one_of(
    st.sampled_from(["SE", "NO", "se", "12", "2026-02-20T12:00:00", "2025-11-01T00:00:00"]),
    st.sampled_from([0, 1, 2.5, 12, -3]),
    st.booleans(),
)


@st.composite
def worlds(draw: st.DrawFn, max_profiles: int = 6, max_events: int = 25) -> World:
    w = World()
    n = draw(st.integers(0, max_profiles))
    ids = [f"p{i}" for i in range(n)]
    for pid in ids:
        w.profiles.append(
            {
                "profile_id": pid,
                "user_id": pid,
                "email": draw(st.sampled_from([None, f"{pid}@example.com", "x@shop.se"])),
                "orders": draw(st.one_of(st.none(), st.integers(0, 5))),
                "revenue": draw(st.sampled_from([None, 0.0, 10.5, 100.0])),
                "last_order_at": draw(st.one_of(st.none(), _instant())),
            }
        )
        for _ in range(draw(st.integers(0, 2))):
            start = draw(_instant())
            end = draw(st.one_of(st.none(), _instant().filter(lambda t, s=start: t > s)))
            w.consents.append(
                {"profile_id": pid, "granted": draw(st.booleans()), "valid_from": start, "valid_until": end}
            )
        for trait in ("country", "age", "signup", "vip", "consent_email"):
            if draw(st.booleans()):
                w.traits[(pid, trait)] = draw(json_scalar)
        if draw(st.booleans()):
            w.predictions[pid] = {
                "p_alive": draw(st.sampled_from([0.1, 0.3, 0.9])),
                "clv": draw(st.sampled_from([0.0, 250.0, 500.0, 900.0])),
                "next_purchase_at": NOW.date() + timedelta(days=draw(st.integers(-3, 10))),
            }
        if draw(st.booleans()):
            w.propensity[pid] = draw(st.sampled_from([0.05, 0.5, 0.8]))
    owners = [*ids, "stranger"] if ids else ["stranger"]
    for _ in range(draw(st.integers(0, max_events))):
        props = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "category": st.sampled_from(CATEGORIES),
                        "revenue": st.sampled_from([5, 10.5, 40, "12", True]),
                    },
                ),
            )
        )
        w.events.append(
            {
                "user_id": draw(st.sampled_from(owners)),
                "event": draw(st.sampled_from(EVENTS)),
                "timestamp": draw(_instant()),
                "properties": props,
            }
        )
    return w


def _ops(values: st.SearchStrategy[Any], names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda op, v: {op: v}, st.sampled_from(names), values)


def _where() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({}),
        st.builds(lambda c: {"where": {"category": c}}, st.sampled_from(CATEGORIES)),
        st.builds(lambda v: {"where": {"revenue": {"gte": v}}}, st.sampled_from([5, 10.5])),
        st.builds(lambda b: {"where": {"category": {"exists": b}}}, st.booleans()),
        st.builds(lambda c: {"where": {"category": {"in": c}}}, st.sampled_from([["lenses", "frames"], ["Lenses"]])),
    )


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    number = st.sampled_from([0, 1, 2, 2.5, 12, 100.0])
    text = st.sampled_from(["SE", "NO", "12", "se"])
    trait_json = st.one_of(
        st.builds(
            lambda t, o: {"trait": t, **o},
            st.sampled_from(["country", "age", "vip"]),
            _ops(text, ("eq", "neq", "contains")),
        ),
        st.builds(
            lambda t, o: {"trait": t, **o},
            st.sampled_from(["age", "country"]),
            _ops(number, ("eq", "neq", "gt", "gte", "lt", "lte")),
        ),
        st.builds(lambda t, b: {"trait": t, "eq": b}, st.sampled_from(["vip", "age"]), st.booleans()),
        st.builds(
            lambda t, b: {"trait": t, "exists": b}, st.sampled_from(["country", "signup", "nope"]), st.booleans()
        ),
        st.builds(lambda v: {"trait": "country", "in": v}, st.sampled_from([["SE", "NO"], ["12"], [0, 12]])),
        st.builds(lambda o: {"trait": "signup", **o}, _ops(st.sampled_from((*WINDOWS, 30, 90)), d.DATE_OPS)),
        st.builds(lambda o: {"trait": "signup", **o}, _ops(st.just("2026-02-01T00:00:00"), ("gt", "lt"))),
    )
    trait_typed = st.one_of(
        st.builds(
            lambda t, o: {"trait": t, **o},
            st.sampled_from(["orders", "revenue"]),
            _ops(number, ("eq", "neq", "gt", "gte", "lt", "lte")),
        ),
        st.builds(lambda o: {"trait": "last_order_at", **o}, _ops(st.sampled_from((*WINDOWS, 30)), d.DATE_OPS)),
        st.builds(
            lambda o: {"trait": "email", **o}, _ops(st.sampled_from(["example", "x@shop.se"]), ("eq", "contains"))
        ),
        st.builds(lambda t, b: {"trait": t, "exists": b}, st.sampled_from(["orders", "last_order_at"]), st.booleans()),
    )
    prediction = st.one_of(
        st.builds(
            lambda p, o: {"prediction": p, **o},
            st.sampled_from(PREDICTION_NUMBERS),
            _ops(st.sampled_from([0.3, 500, 0]), ("gte", "lt")),
        ),
        st.builds(lambda n: {"prediction": "next_purchase_at", "within_days": n}, st.sampled_from([0, 1, 7])),
        st.builds(lambda n: {"prediction": "next_purchase_at", "before_days_ago": n}, st.sampled_from([0, 1])),
        st.builds(
            lambda o: {"prediction": "propensity", "event": "Order Completed", "days": 30, **o},
            _ops(st.sampled_from([0.5, 0.05]), ("gte", "lt")),
        ),
    )
    window = st.one_of(st.just({}), st.builds(lambda n: {"within_days": n}, st.sampled_from(WINDOWS)))
    event = st.one_of(
        st.builds(
            lambda e, w, wn, c: {"event": e, **w, **wn, "count": c},
            st.sampled_from(EVENTS),
            _where(),
            window,
            _ops(st.sampled_from([0, 1, 2, 3]), ("gte", "lt", "eq")),
        ),
        st.builds(lambda e, w, wn: {"event": e, **w, **wn}, st.sampled_from(EVENTS), _where(), window),
        st.builds(
            lambda e, wn, o: {"event": e, **wn, "sum": {"property": "revenue", **o}},
            st.sampled_from(EVENTS),
            window,
            _ops(st.sampled_from([0, 10.5, 40]), ("gte", "lt")),
        ),
        st.builds(
            lambda e, k, o: {"event": e, k: o},
            st.sampled_from(EVENTS),
            st.sampled_from(["first", "last"]),
            _ops(st.sampled_from(WINDOWS), d.DATE_OPS),
        ),
    )
    sequence = st.builds(
        lambda a, b, c, n: {"sequence": [{"event": a}, {"event": b}, *([{"event": c}] if c else [])], "within_days": n},
        st.sampled_from(EVENTS),
        st.sampled_from(EVENTS),
        st.sampled_from([None, *EVENTS]),
        st.sampled_from(WINDOWS),
    )
    consent = st.just({"consent": "marketing_email"})
    return st.one_of(trait_json, trait_typed, prediction, event, sequence, consent)


def _combine(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    items = st.lists(inner, min_size=1, max_size=3)
    return st.one_of(
        items.map(lambda xs: {"all": xs}),
        items.map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    )


DEFINITIONS = st.recursive(_leaf(), _combine, max_leaves=5)


def definitions() -> st.SearchStrategy[dict[str, Any]]:
    return DEFINITIONS
