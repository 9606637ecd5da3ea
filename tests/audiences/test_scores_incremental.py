"""Incremental lead-score runs: random events (and trait changes) applied in random chunks, each chunk
followed by an incremental run at one instant, give the points, band entries and stages a full run at
that instant gives for every profile they rescore; they rescore every profile that changed; and a full
run after them leaves exactly what one full run leaves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from touchpoint.audiences import scores
from touchpoint.audiences.scoredef import parse_score
from touchpoint.warehouse import Warehouse, schema

from .reference import EVENTS, NOW, World, definitions, event_rows, load, resolve, worlds

SETTINGS = settings(
    max_examples=int(os.environ.get("AUD_EXAMPLES", "12")),
    deadline=None,
    phases=[Phase.generate] if os.environ.get("AUD_NOSHRINK") else list(Phase),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ADVANCES = (0, 1, 3600, 86_400, 3 * 86_400)
TABLES = ("score_results", "score_band_entries", "score_stages", "score_state")


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


@st.composite
def score_definitions(draw: st.DrawFn) -> dict[str, Any]:
    points = st.sampled_from([-15, 5, 10, 25, 40])
    fit = [
        {"when": draw(definitions()), "points": draw(points), "group": draw(st.sampled_from(["fit", "who"]))}
        for _ in range(draw(st.integers(0, 2)))
    ]
    engagement = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {
            "event": draw(st.sampled_from(EVENTS)),
            "points": draw(points),
            "half_life_days": draw(st.sampled_from([0.5, 7, 30])),
            "group": draw(st.sampled_from(["web", "engagement"])),
        }
        window = draw(st.sampled_from([None, 1, 7]))
        if window is not None:
            rule["within_days"] = window
        if draw(st.booleans()):
            rule["where"] = {"category": draw(st.sampled_from(["lenses", "frames"]))}
        engagement.append(rule)
    groups = sorted({r["group"] for r in fit + engagement})
    caps = {g: draw(st.sampled_from([20, 50])) for g in groups if draw(st.booleans())}
    out: dict[str, Any] = {
        "fit": fit,
        "engagement": engagement,
        "caps": caps,
        "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 15}, {"name": "hot", "min": 30}],
        "stages": [
            {"name": "subscriber"},
            {"name": "lead", "min_points": 10},
            {"name": "marketing-qualified", "min_points": 30},
            {"name": "customer", "when": {"trait": "orders", "gte": draw(st.sampled_from([1, 3]))}},
        ],
    }
    if draw(st.booleans()):
        out["ceiling"] = draw(st.sampled_from([30, 60]))
    return out


@st.composite
def chunk(draw: st.DrawFn, owners: list[str], now: datetime) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """New events, and trait changes (a profile rebuilt with another number of orders)."""
    events = [
        {
            "user_id": draw(st.sampled_from(owners)),
            "event": draw(st.sampled_from(EVENTS)),
            "timestamp": now + timedelta(hours=draw(st.integers(-10 * 24, 24))),
            "properties": draw(st.sampled_from([None, {"category": "lenses"}, {"category": "frames"}])),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    traits = [(draw(st.sampled_from(owners)), draw(st.integers(0, 4))) for _ in range(draw(st.integers(0, 1)))]
    return events, traits


def _rows(wh: Warehouse, table: str) -> list[dict[str, Any]]:
    return wh.to_arrow(wh.table(table)).to_pylist()


def _snapshot(wh: Warehouse) -> dict[str, pa.Table]:
    return {t: wh.to_arrow(wh.table(t)) for t in TABLES}


def _restore(wh: Warehouse, saved: dict[str, pa.Table]) -> None:
    with wh.write() as tx:
        for table, rows in saved.items():
            tx.replace(table, rows)


def _results(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["profile_id"]: r for r in rows}


def _facts(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(sorted(r.items())) for r in rows}


def _points(wh: Warehouse, definition: dict[str, Any], at: datetime) -> dict[str, tuple[Any, ...]]:
    """Each profile's points, band and earned stage at ``at`` (the expression alone, nothing written)."""
    rows = wh.to_arrow(scores._compile(wh, parse_score(definition), at)).to_pylist()
    return {r["profile_id"]: (r["points"], r["band"], r["earned"]) for r in rows}


def _change_orders(wh: Warehouse, pid: str, orders: int, built_at: datetime) -> None:
    p = wh.table("profiles")
    rows = wh.to_arrow(p.filter(p.profile_id == pid)).to_pylist()
    if not rows:
        return
    row = {**rows[0], "orders": orders, "built_at": built_at}
    with wh.write() as tx:  # as the profiles job writes a rebuilt profile
        tx.delete("profiles", "profile_id", [pid])
        tx.append("profiles", pa.Table.from_pylist([row], schema=schema.PROFILES.schema.to_pyarrow()))


@pytest.mark.timeout(1200)  # dozens of generated warehouses, each scored in DuckDB
@SETTINGS
@given(world=worlds(max_events=15), definition=score_definitions(), data=st.data())
def test_incremental_runs_equal_a_full_run_at_the_same_instant(
    wh: Warehouse, world: World, definition: dict[str, Any], data: st.DataObject
) -> None:
    load(wh, world)
    if data.draw(st.booleans(), label="identities resolved"):
        resolved = data.draw(st.lists(st.booleans(), min_size=1, max_size=3), label="events resolved")
        resolve(wh, resolved, data.draw(st.sampled_from([2, 3]), label="identity state version"))
    with wh.write() as tx:
        for table in ("scores", *TABLES):
            tx.delete(table)
    scores.save(wh, "s", definition)
    first = scores.refresh(wh, "s", now=NOW)  # the history both sides share
    assert first["mode"] == "full"
    before = _snapshot(wh)
    at = NOW + timedelta(seconds=data.draw(st.sampled_from(ADVANCES), label="advance"))
    owners = [p["profile_id"] for p in world.profiles] or ["stranger"]
    received, sent = NOW + timedelta(days=400), len(world.events)
    # a rule on forward-looking dates (next purchase) is rerun in full on a new day
    new_day = scores._compiler(wh, parse_score(definition), at)[0].forward_dates and at.date() != NOW.date()
    unchanged = _points(wh, definition, at)  # what the profiles would score at `at` without the chunks
    for _ in range(data.draw(st.integers(1, 4), label="chunks")):
        events, traits = data.draw(chunk(owners, at), label="chunk")
        for e in events:
            received += timedelta(seconds=1)
            e["received_at"] = received
        if events:
            wh.append("events", event_rows(events, start=sent))
            sent += len(events)
        for pid, orders in traits:
            received += timedelta(seconds=1)
            _change_orders(wh, pid, orders, received)
        out = scores.refresh(wh, "s", now=at)
        assert out["mode"] == ("full" if new_day else "incremental"), out
        new_day = False  # the next runs are on the same day
    incremental = {t: _rows(wh, t) for t in TABLES}
    after_incremental = _snapshot(wh)

    _restore(wh, before)  # the other side: the same history, then one full run at the same instant
    scores.refresh(wh, "s", now=at, full=True)
    full = {t: _rows(wh, t) for t in TABLES}

    inc, ful, old = (
        _results(incremental["score_results"]),
        _results(full["score_results"]),
        _results(before["score_results"].to_pylist()),
    )
    assert set(inc) == set(ful) == set(old)  # the profiles are fixed here: each has a row on both sides
    rescored = {pid for pid, r in inc.items() if r["computed_at"] == at}
    moved = {pid for pid, row in _points(wh, definition, at).items() if row != unchanged.get(pid)}
    assert moved <= rescored, "a profile the chunks changed was not rescored"
    for pid in inc:
        assert inc[pid] == (ful[pid] if pid in rescored else old[pid]), (pid, definition)
    for table, column in (("score_band_entries", "entered_at"), ("score_stages", "changed_at")):
        i = [r for r in incremental[table] if r[column] != at or r["profile_id"] in rescored]
        f = [r for r in full[table] if r[column] != at or r["profile_id"] in rescored]
        assert _facts(i) == _facts(f), (table, definition)
        assert {r["profile_id"] for r in incremental[table] if r[column] == at} <= rescored

    _restore(wh, after_incremental)  # a full run after the incremental ones leaves what one full run leaves
    scores.refresh(wh, "s", now=at, full=True)
    for table in ("score_results", "score_band_entries", "score_stages"):
        assert _facts(_rows(wh, table)) == _facts(full[table]), (table, definition)


def test_a_merged_away_profile_loses_its_rows_and_a_trait_change_is_rescored(wh: Warehouse) -> None:
    def profile(pid: str, orders: int | None = None) -> dict[str, Any]:
        return {"profile_id": pid, "user_id": pid, "email": None, "orders": orders, "revenue": None,
                "last_order_at": None}  # fmt: skip

    load(wh, World(profiles=[profile("a"), profile("b"), profile("c")]))
    with wh.write() as tx:
        for table in ("scores", *TABLES):
            tx.delete(table)
    scores.save(wh, "s", {"fit": [{"when": {"trait": "orders", "gte": 1}, "points": 40}],
                          "bands": [{"name": "cold", "min": 0}, {"name": "hot", "min": 30}]})  # fmt: skip
    assert scores.refresh(wh, "s", now=NOW)["profiles"] == 3
    later = NOW + timedelta(minutes=1)
    _change_orders(wh, "a", 2, later)  # a's traits changed: the profiles job rebuilt it
    with wh.write() as tx:  # b was merged into c: b's row is gone, c was rebuilt, the merge logged
        tx.delete("profiles", "profile_id", ["b"])
        tx.append(
            "identity_merge_log",
            pa.Table.from_pylist(
                [{"logged_at": later, "kind": "auto_merge", "profile_id": "c", "merged_profile_ids": "b,c"}],
                schema=schema.IDENTITY_MERGE_LOG.schema.to_pyarrow(),
            ),
        )
    out = scores.refresh(wh, "s", now=later + timedelta(seconds=1))
    assert (out["mode"], out["candidates"], out["profiles"], out["band_entries"]) == ("incremental", 3, 2, 1)
    got = _results(_rows(wh, "score_results"))
    assert (
        sorted(got) == ["a", "c"]
        and got["a"]["band"] == "hot"
        and got["c"]["computed_at"] == later + timedelta(seconds=1)
    )
    hot = scores.band_entries(wh, NOW, score="s", band="hot")
    assert [(e["profile_id"], e["previous"]) for e in hot] == [("a", "cold")]


def test_runs_at_one_instant_leave_what_one_run_leaves(wh: Warehouse) -> None:
    """Two batches scored at one instant: warm then hot is one entry into hot from the band held before
    the instant; a stage reached and lost again at that instant is no promotion (as one full run)."""
    _one_instant(wh)


def test_incremental_runs_on_every_engine(warehouse_url: str) -> None:
    """The same on PostgreSQL: its upserts, deletes by instant and migration 18's table."""
    w = Warehouse.open(warehouse_url)
    try:
        _one_instant(w)
        assert scores.refresh(w, "s", now=NOW + timedelta(minutes=1))["mode"] == "incremental"
    finally:
        w.close()


def _one_instant(wh: Warehouse) -> None:
    profile = {"profile_id": "a", "user_id": "a", "email": None, "orders": None, "revenue": None,
               "last_order_at": None}  # fmt: skip
    load(wh, World(profiles=[profile]))
    with wh.write() as tx:
        for table in ("scores", *TABLES):
            tx.delete(table)
    scores.save(wh, "s", {
        "engagement": [{"event": "Product Viewed", "points": 10, "half_life_days": 1000},
                       {"event": "Signed Up", "points": -30, "half_life_days": 1000}],
        "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 15}, {"name": "hot", "min": 30}],
        "stages": [{"name": "subscriber"}, {"name": "lead", "min_points": 10}],
    })  # fmt: skip
    scores.refresh(wh, "s", now=NOW - timedelta(days=1))
    sent = 0

    def batch(*kinds: str) -> dict[str, Any]:
        nonlocal sent
        rows = [{"user_id": "a", "event": k, "timestamp": NOW - timedelta(hours=1), "properties": None,
                 "received_at": NOW + timedelta(seconds=sent + i)} for i, k in enumerate(kinds)]  # fmt: skip
        wh.append("events", event_rows(rows, start=sent))
        sent += len(rows)
        return scores.refresh(wh, "s", now=NOW)

    assert batch("Product Viewed", "Product Viewed")["band_entries"] == 1  # warm, and lead
    assert batch("Product Viewed", "Product Viewed")["band_entries"] == 1  # hot: that instant's entry replaced
    at_now = [e for e in scores.band_entries(wh, NOW - timedelta(seconds=1), score="s")]
    assert [(e["band"], e["previous"]) for e in at_now] == [("hot", "cold")]
    assert batch("Signed Up", "Signed Up")["mode"] == "incremental"  # -60: back to cold, lead not earned
    assert scores.band_entries(wh, NOW - timedelta(seconds=1), score="s") == []
    stages = [r for r in _rows(wh, "score_stages") if r["changed_at"] == NOW]
    assert stages == [] and scores.stored(wh, "s", "a")["stage"] == "subscriber"
