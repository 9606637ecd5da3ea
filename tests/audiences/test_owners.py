"""The compiler meets events with their profiles exactly as the one customer rule does
(:func:`touchpoint.identity.people.customer_events`), through ``event_identities`` once identities are
resolved, for all profiles and for a few (incremental refresh)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint.audiences.compile import IDS, owners
from touchpoint.identity.people import customer_events
from touchpoint.warehouse import Warehouse, schema

from .reference import NOW

SETTINGS = settings(
    max_examples=int(os.environ.get("AUD_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
USERS = ["u1", "u2", "u3", "P1", None]  # "P1": a raw id equal to a profile id
ANONS = ["a1", "a2", "a3", None]
PROFILES = ["P1", "P2", "P3"]


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


def _table(spec: Any, rows: list[dict[str, Any]]) -> pa.Table:
    s = spec.schema.to_pyarrow()
    return pa.Table.from_pylist([{c: r.get(c) for c in s.names} for r in rows], schema=s)


@st.composite
def identities(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """Events with user and anonymous ids; nodes for some of those ids (each in some profile); each
    event resolved to some node (possibly of another id, or a node that no longer exists) or not."""
    nodes = []
    for i, (kind, value) in enumerate([("user_id", u) for u in USERS if u] + [("anonymous_id", a) for a in ANONS if a]):
        if draw(st.booleans()):
            nodes.append(
                {"node_id": i, "id_type": kind, "id_value": value, "profile_id": draw(st.sampled_from(PROFILES))}
            )
    events, links = [], []
    for i in range(draw(st.integers(0, 12))):
        events.append(
            {
                "message_id": f"m{i}",
                "type": "track",
                "event": "Product Viewed",
                "user_id": draw(st.sampled_from(USERS)),
                "anonymous_id": draw(st.sampled_from(ANONS)),
                "timestamp": NOW - timedelta(hours=i),
                "received_at": NOW,
            }
        )
        target = draw(st.one_of(st.none(), st.integers(0, len(USERS) + len(ANONS))))
        if target is not None:
            links.append({"message_id": f"m{i}", "node_id": target})
    return {"nodes": nodes, "events": events, "links": links}


def _load(wh: Warehouse, world: dict[str, list[dict[str, Any]]]) -> None:
    with wh.write() as tx:
        tx.replace("events", _table(schema.EVENTS, world["events"]))
        tx.replace("identity_nodes", _table(schema.IDENTITY_NODES, world["nodes"]))
        tx.replace("event_identities", _table(schema.EVENT_IDENTITIES, world["links"]))
        tx.replace("identity_state", _table(schema.IDENTITY_STATE, [{"key": "version", "value": "2"}]))


def _pairs(wh: Warehouse, expr: Any) -> Counter[tuple[str | None, str]]:
    return Counter((r["profile_id"], r["mid"]) for r in wh.to_arrow(expr).to_pylist())


@SETTINGS
@given(world=identities(), picked=st.lists(st.sampled_from([*PROFILES, "u1", "a2", "nobody"]), max_size=3))
def test_owners_follow_the_customer_rule(
    wh: Warehouse, world: dict[str, list[dict[str, Any]]], picked: list[str]
) -> None:
    _load(wh, world)
    if not world["nodes"]:
        return  # identities not resolved: owners() is customer_events itself
    events = wh.table("events")
    rule = customer_events(wh, events, rule="profiles", name="profile_id").select("profile_id", mid="message_id")
    expected = _pairs(wh, rule)

    def keep(ev: Any) -> Any:
        return ev.select(*IDS, mid=ev.message_id)

    assert _pairs(wh, owners(wh, events, values=keep)) == expected
    restrict = ibis.memtable(pa.table({"profile_id": pa.array(picked, pa.string())}))
    got = _pairs(wh, owners(wh, events, restrict, keep))
    assert got == Counter({k: v for k, v in expected.items() if k[0] in set(picked)})
