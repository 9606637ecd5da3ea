"""Funnels, paths and retention on small hand-made journeys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from touchpoint.collect.store import write_messages
from touchpoint.errors import InvalidInput
from touchpoint.journeys.funnels import Step, funnel
from touchpoint.journeys.paths import paths
from touchpoint.journeys.retention import retention
from touchpoint.warehouse import Warehouse

STEPS = ["page:/product%", "Product Added", "Order Completed"]


@pytest.fixture(scope="module")
def shop(m) -> Iterator[Warehouse]:  # type: ignore[no-untyped-def]
    T0, page, track, mins = m.T0, m.page, m.track, m.minutes
    msgs = [
        # p1 converts through all steps, from email
        page("p1", T0, "/product/1", query="utm_source=news&utm_medium=email"),
        track("p1", "Product Added", T0 + mins(2)),
        track("p1", "Order Completed", T0 + mins(10), order_id="o1", revenue=30, plan="pro"),
        # p2 adds to cart but orders 8 days later: outside the 7-day window
        page("p2", T0, "/product/2", referrer="https://www.google.com/"),
        track("p2", "Product Added", T0 + mins(1)),
        track("p2", "Order Completed", T0 + timedelta(days=8), order_id="o2", revenue=10),
        # p3: events arrive out of order, and the order has the same timestamp as the add
        track("p3", "Order Completed", T0 + mins(5), order_id="o3", revenue=5, mid="z-order"),
        track("p3", "Product Added", T0 + mins(5), mid="a-add"),
        page("p3", T0 + mins(1), "/product/3", referrer="https://www.google.com/"),
        # p4 orders before adding: not in order, stops at step 2
        page("p4", T0, "/product/4"),
        track("p4", "Order Completed", T0 + mins(1), order_id="o4", revenue=5),
        track("p4", "Product Added", T0 + mins(2)),
        # p5 only looks, twice, a week apart (retention)
        page("p5", T0, "/product/5"),
        page("p5", T0 + timedelta(days=7), "/about"),
    ]
    # a heavy profile: 2,000 product views, then one add and one order
    msgs += [page("heavy", T0 + mins(i), f"/product/{i % 9}") for i in range(2000)]
    msgs += [
        track("heavy", "Product Added", T0 + mins(2001)),
        track("heavy", "Order Completed", T0 + mins(2002)),
    ]
    wh = Warehouse.open("duckdb://:memory:")
    assert write_messages(wh, msgs, source="test").quarantined == 0
    yield wh
    wh.close()


def test_funnel_counts_window_order_and_ties(shop: Warehouse) -> None:
    out = funnel(shop, STEPS, window_hours=24 * 7)
    people = [s["people"] for s in out["steps"]]
    # entered: p1 p2 p3 p4 p5 heavy; added after entry: p1 p2 p3 p4 heavy;
    # ordered after adding, inside the window: p1 p3 heavy
    assert people == [6, 5, 3]
    assert out["steps"][2]["from_previous"] == pytest.approx(3 / 5)
    lo, hi = out["steps"][2]["overall_ci"]
    assert lo < 0.5 < hi
    # a tighter window loses p1 (10 min) but keeps p3 (4 min from entry)
    narrow = funnel(shop, STEPS, window_hours=5 / 60)
    assert [s["people"] for s in narrow["steps"]] == [6, 4, 1]


def test_funnel_median_time_between_steps(shop: Warehouse) -> None:
    out = funnel(shop, ["page:/product/1", "Product Added", "Order Completed"])
    # p1: 2 min then 8 min; heavy: first /product/1 at minute 1, add at 2001, order a minute later
    assert out["steps"][1]["median_seconds_from_previous"] == pytest.approx((120 + 120_000) / 2)
    assert out["steps"][2]["median_seconds_from_previous"] == pytest.approx((480 + 60) / 2)


def test_funnel_breakdowns(shop: Warehouse) -> None:
    by_channel = funnel(shop, STEPS, breakdown="channel")
    groups = {g["breakdown"]: [s["people"] for s in g["steps"]] for g in by_channel["groups"]}
    assert groups == {"email": [1, 1, 1], "organic_search": [2, 2, 1], "direct": [3, 2, 1]}
    assert [s["people"] for s in by_channel["steps"]] == [6, 5, 3]
    by_source = funnel(shop, ["Product Added", "Order Completed"], breakdown="anonymous_id")
    assert len(by_source["groups"]) == 5
    by_prop = funnel(shop, ["Order Completed", "Product Added"], breakdown="properties.plan")
    assert {g["breakdown"] for g in by_prop["groups"]} == {"pro", None}


def test_funnel_errors(shop: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="2 to 20 steps"):
        funnel(shop, ["page"])
    with pytest.raises(InvalidInput, match="window"):
        funnel(shop, STEPS, window_hours=0)
    with pytest.raises(InvalidInput, match="cannot break a funnel down"):
        funnel(shop, STEPS, breakdown="shoe_size")
    assert Step.parse("screen:Home").value == "Home"


def test_paths_from_and_to(shop: Warehouse) -> None:
    to_order = paths(shop, "Order Completed", direction="to", depth=2)
    got = {p["path"]: p["people"] for p in to_order["paths"]}
    assert got == {
        "(start) > page:/product/1 > Product Added > Order Completed": 2,  # p1 and heavy
        "(start) > page:/product/3 > Product Added > Order Completed": 1,  # p3, sorted by timestamp and id
        "(start) > page:/product/4 > Order Completed": 1,
        "(start) > Order Completed": 1,  # p2 ordered in a later session
    }
    assert to_order["people"] == 5
    sk = to_order["sankey"]
    assert all(0 <= link["source"] < len(sk["nodes"]) for link in sk["links"])
    from_add = paths(shop, "Product Added", direction="from", depth=3)
    assert sum(p["people"] for p in from_add["paths"]) == 5
    assert any(p["path"] == "Product Added > Order Completed > (end)" for p in from_add["paths"])
    with pytest.raises(InvalidInput, match="depth"):
        paths(shop, "page", depth=0)


def test_retention_by_week(shop: Warehouse) -> None:
    out = retention(shop, period="week", cohort="first_seen", max_periods=2)
    cohort = out["cohorts"][0]
    assert cohort["size"] == 6
    assert [c["people"] for c in cohort["periods"]] == [6, 2, None]  # p5 and p2 came back in week 1
    orders = retention(shop, period="month", cohort="first_order", returning="order", max_periods=1)
    assert orders["cohorts"][0]["size"] == 5
    assert orders["cohorts"][0]["periods"][0]["share"] == 1.0
    with pytest.raises(InvalidInput, match="period"):
        retention(shop, period="fortnight")  # type: ignore[arg-type]
