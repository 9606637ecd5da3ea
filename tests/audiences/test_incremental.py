"""Incremental refresh equals a full evaluation after random events and clock advances, and the
recorded history reproduces every past membership (``members --at``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from touchpoint.audiences import definition as d
from touchpoint.audiences import membership, store
from touchpoint.audiences.compile import carried, compile_members, plan_of
from touchpoint.audiences.refresh import refresh_one
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.schema import IDENTITY_MERGE_LOG

from .reference import EVENTS, NOW, World, definitions, event_rows, load, resolve, worlds

SETTINGS = settings(
    max_examples=int(os.environ.get("AUD_EXAMPLES", "12")),
    deadline=None,
    phases=[Phase.generate] if os.environ.get("AUD_NOSHRINK") else list(Phase),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ADVANCES = (0, 1, 3600, 86_400, 3 * 86_400, 7 * 86_400 + 1)


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


def _full(wh: Warehouse, node: d.Node, now: datetime) -> set[str]:
    expr, _ = compile_members(wh, node, now=now, lookup=store.lookup(wh))
    return set(wh.to_arrow(expr).column("profile_id").to_pylist())


def _open(wh: Warehouse, name: str, at: datetime | None = None) -> set[str]:
    got = membership.members(wh, name, at=at, limit=None)
    return {m["profile_id"] for m in got["members"]}


@st.composite
def new_events(draw: st.DrawFn, owners: list[str], now: datetime) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        hours = draw(st.integers(-10 * 24, 24))
        out.append(
            {
                "user_id": draw(st.sampled_from(owners)),
                "event": draw(st.sampled_from(EVENTS)),
                "timestamp": now + timedelta(hours=hours),
                "properties": draw(st.sampled_from([None, {"category": "lenses", "revenue": 40}, {"revenue": 10.5}])),
            }
        )
    return out


@st.composite
def rebuilds(draw: st.DrawFn, owners: list[str]) -> tuple[str, int | None, str | None]:
    """A profile rebuilt with another number of orders, or (``merged``: its survivor) merged away."""
    pid = draw(st.sampled_from(owners))
    merged = draw(st.one_of(st.none(), st.sampled_from([*owners, "log-less"])))
    return pid, draw(st.one_of(st.none(), st.integers(0, 5))), merged


def _rebuild(wh: Warehouse, pid: str, orders: int | None, built_at: datetime, merged: str | None) -> None:
    """As the profiles job leaves a profile it rebuilt: a new ``built_at`` (and ``orders``); or, merged
    into ``merged``, the profile gone, the survivor rebuilt and the merge logged ("log-less": gone
    without a log entry, as a full rebuild under new identity rules can leave it)."""
    p = wh.table("profiles")
    rows = wh.to_arrow(p.filter(p.profile_id == pid)).to_pylist()
    if not rows or merged == pid:
        return
    with wh.write() as tx:
        tx.delete("profiles", "profile_id", [pid])
        if merged is None:
            row = {**rows[0], "orders": orders, "built_at": built_at}
            tx.append("profiles", pa.Table.from_pylist([row], schema=schema.PROFILES.schema.to_pyarrow()))
            return
        if merged != "log-less":
            tx.update("profiles", {"built_at": built_at}, key="profile_id", value=merged)
            log = {"logged_at": built_at, "kind": "auto_merge", "profile_id": merged, "merged_profile_ids": pid}
            tx.append("identity_merge_log", pa.Table.from_pylist([log], schema=IDENTITY_MERGE_LOG.schema.to_pyarrow()))


@pytest.mark.timeout(1200)  # dozens of generated warehouses, each evaluated in DuckDB
@SETTINGS
@given(world=worlds(max_events=15), definition=definitions(), data=st.data())
def test_incremental_equals_full(wh: Warehouse, world: World, definition: dict[str, Any], data: st.DataObject) -> None:
    load(wh, world)
    if data.draw(st.booleans(), label="identities resolved"):  # events meet profiles via event_identities
        resolved = data.draw(st.lists(st.booleans(), min_size=1, max_size=3), label="events resolved")
        resolve(wh, resolved, data.draw(st.sampled_from([2, 3]), label="identity state version"))
    with wh.write() as tx:
        for table in ("audiences", "audience_versions", "audience_memberships", "audience_state"):
            tx.delete(table)
    node = d.parse(definition)
    store.save(wh, "a", definition)
    owners = [p["profile_id"] for p in world.profiles] or ["stranger"]
    now = NOW
    first = refresh_one(wh, "a", now=now)
    assert first["mode"] == "full"
    checkpoints = {now: _open(wh, "a")}  # two refreshes at one instant: the later one is what --at shows
    received = NOW + timedelta(days=400)
    sent = len(world.events)
    forward = plan_of(wh, node, now=now, lookup=store.lookup(wh), name="a").forward_dates
    for _ in range(data.draw(st.integers(1, 5))):
        events = data.draw(new_events(owners, now))
        if events:
            for e in events:
                received += timedelta(seconds=1)
                e["received_at"] = received
            wh.append("events", event_rows(events, start=sent))
            sent += len(events)
        # the profiles job rebuilt some profiles (their traits changed), or one went in a merge
        for pid, orders, merged in data.draw(st.lists(rebuilds(owners), max_size=2), label="rebuilt"):
            received += timedelta(seconds=1)
            _rebuild(wh, pid, orders, received, merged)
        before, now = now, now + timedelta(seconds=data.draw(st.sampled_from(ADVANCES)))
        out = refresh_one(wh, "a", now=now)
        # a profiles run no longer makes the refresh full: only a new day for forward-looking dates does
        assert out["mode"] == ("full" if forward and now.date() != before.date() else "incremental"), out
        assert _open(wh, "a") == _full(wh, node, now), (definition, out)
        assert out["members"] == len(_open(wh, "a"))
        checkpoints[now] = _open(wh, "a")
    for at, expected in checkpoints.items():  # members --at reproduces every past state
        assert _open(wh, "a", at) == expected


def test_a_window_that_expires_without_new_events(wh: Warehouse) -> None:
    world = World(
        profiles=[
            {"profile_id": "p", "user_id": "p", "email": None, "orders": None, "revenue": None, "last_order_at": None}
        ],
        events=[{"user_id": "p", "event": "Product Viewed", "timestamp": NOW - timedelta(days=1), "properties": None}],
    )
    load(wh, world)
    with wh.write() as tx:
        for table in ("audiences", "audience_versions", "audience_memberships", "audience_state"):
            tx.delete(table)
    store.save(wh, "recent", {"event": "Product Viewed", "within_days": 7})
    assert refresh_one(wh, "recent", now=NOW)["members"] == 1
    still = refresh_one(wh, "recent", now=NOW + timedelta(days=5))
    assert (still["mode"], still["members"], still["candidates"]) == ("incremental", 1, 0)
    gone = refresh_one(wh, "recent", now=NOW + timedelta(days=6, seconds=1))
    assert (gone["mode"], gone["members"], gone["exited"], gone["candidates"]) == ("incremental", 0, 1, 1)
    assert _open(wh, "recent", NOW + timedelta(days=6)) == {"p"}
    assert membership.changes(wh, NOW + timedelta(days=6))[0]["change"] == "exited"


def test_leaving_and_reentering_at_one_instant_keeps_one_stay(wh: Warehouse) -> None:
    world = World(
        profiles=[
            {"profile_id": "p", "user_id": "p", "email": None, "orders": 1, "revenue": None, "last_order_at": None}
        ]
    )
    load(wh, world)
    with wh.write() as tx:
        for table in ("audiences", "audience_versions", "audience_memberships", "audience_state"):
            tx.delete(table)
    store.save(wh, "buyers", {"trait": "orders", "gte": 1})
    assert refresh_one(wh, "buyers", now=NOW)["entered"] == 1
    store.save(wh, "buyers", {"trait": "orders", "gte": 2}, replace=True)
    assert refresh_one(wh, "buyers", now=NOW)["exited"] == 1
    store.save(wh, "buyers", {"trait": "orders", "gte": 1}, replace=True)
    assert refresh_one(wh, "buyers", now=NOW)["entered"] == 1
    stays = wh.to_arrow(wh.table("audience_memberships")).to_pylist()
    got = sorted((s["entered_at"], s["exited_at"] or datetime.max) for s in stays)
    assert got == [(NOW, datetime.max)]  # the zero-length exit was undone, not a second stay
    assert _open(wh, "buyers") == {"p"}


def test_events_read_from_event_identities_when_it_carries_them(wh: Warehouse) -> None:
    """Identity state version 3: resolved events are read from ``event_identities`` (their kind, times and
    properties), new ones from the log's tail by their user id; windows still expire, and both agree
    with a full evaluation."""
    row = {"email": None, "orders": None, "revenue": None, "last_order_at": None}
    world = World(
        profiles=[{"profile_id": p, "user_id": p, **row} for p in ("p", "q")],
        events=[
            {"user_id": "p", "event": "Product Viewed", "timestamp": NOW - timedelta(days=1), "properties": None},
            {"user_id": "q", "event": "Order Completed", "timestamp": NOW - timedelta(days=3), "properties": None},
        ],
    )
    load(wh, world)
    resolve(wh, [True], version=3)
    assert carried(wh) is not None
    with wh.write() as tx:
        for table in ("audiences", "audience_versions", "audience_memberships", "audience_state"):
            tx.delete(table)
    definition = {"event": "Product Viewed", "within_days": 7}
    store.save(wh, "recent", definition)
    assert refresh_one(wh, "recent", now=NOW)["members"] == 1
    new = [{"user_id": "q", "event": "Product Viewed", "timestamp": NOW + timedelta(hours=1), "properties": None}]
    wh.append("events", event_rows([{**new[0], "received_at": NOW + timedelta(hours=2)}], start=2))
    later = NOW + timedelta(hours=3)
    got = refresh_one(wh, "recent", now=later)
    assert (got["mode"], got["members"], got["candidates"]) == ("incremental", 2, 1)
    assert _open(wh, "recent") == _full(wh, d.parse(definition), later) == {"p", "q"}
    gone = refresh_one(wh, "recent", now=NOW + timedelta(days=6, seconds=1))
    assert (gone["mode"], gone["members"], gone["exited"]) == ("incremental", 1, 1)
    assert _open(wh, "recent") == {"q"}
