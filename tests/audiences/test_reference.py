"""The compiled expression agrees with a plain-Python evaluator on random data and definitions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from touchpoint.audiences import definition as d
from touchpoint.audiences.compile import compile_members
from touchpoint.warehouse import Warehouse

from .reference import NOW, World, definitions, load, members, resolve, worlds

SETTINGS = settings(
    max_examples=int(os.environ.get("AUD_EXAMPLES", "40")),
    deadline=None,
    phases=[Phase.generate] if os.environ.get("AUD_NOSHRINK") else list(Phase),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


def compiled(
    wh: Warehouse, definition: dict[str, Any], now: Any = NOW, saved: dict[str, d.Node] | None = None
) -> set[str]:
    node = d.parse(definition)
    expr, _ = compile_members(wh, node, now=now, lookup=(saved or {}).get)
    return set(wh.to_arrow(expr).column("profile_id").to_pylist())


@pytest.mark.timeout(1200)  # dozens of generated warehouses, each evaluated in DuckDB
@SETTINGS
@given(world=worlds(), definition=definitions(), shift=st.sampled_from([0, 1, -1, 3600]))
def test_compiled_equals_reference(wh: Warehouse, world: World, definition: dict[str, Any], shift: int) -> None:
    load(wh, world)
    now = NOW + timedelta(seconds=shift)
    node = d.parse(definition)
    assert compiled(wh, definition, now) == members(world, node, now), definition


@pytest.mark.timeout(1200)  # dozens of generated warehouses, each evaluated in DuckDB
@settings(SETTINGS, max_examples=int(os.environ.get("AUD_EXAMPLES", "15")))  # the test above covers the language
@given(
    world=worlds(),
    definition=definitions(),
    resolved=st.lists(st.booleans(), min_size=1, max_size=4),
    picked=st.lists(st.booleans(), min_size=1, max_size=4),
    version=st.sampled_from([2, 3]),
)
def test_compiled_equals_reference_with_identities_resolved(
    wh: Warehouse, world: World, definition: dict[str, Any], resolved: list[bool], picked: list[bool], version: int
) -> None:
    """Events meet their profiles through ``event_identities`` (some not yet resolved: through their
    user id), for every profile and for a subset (what an incremental refresh evaluates); with
    identity state version 3, the resolved events are read from ``event_identities`` itself."""
    load(wh, world)
    resolve(wh, resolved, version)
    node = d.parse(definition)
    expected = members(world, node, NOW)
    assert compiled(wh, definition) == expected, definition
    ids = [p["profile_id"] for p in world.profiles]
    subset = [pid for i, pid in enumerate(ids) if picked[i % len(picked)]]
    restrict = ibis.memtable(pa.table({"profile_id": pa.array(subset, pa.string())}))
    expr, _ = compile_members(wh, node, now=NOW, lookup={}.get, restrict=restrict)
    assert set(wh.to_arrow(expr).column("profile_id").to_pylist()) == expected & set(subset), definition


@pytest.mark.timeout(1200)  # dozens of generated warehouses, each evaluated in DuckDB
@SETTINGS
@given(world=worlds(), inner=definitions(), outer=definitions())
def test_audience_references_inline_the_other_definition(
    wh: Warehouse, world: World, inner: dict[str, Any], outer: dict[str, Any]
) -> None:
    load(wh, world)
    saved = {"inner": d.parse(inner)}
    definition = {"any": [{"audience": "inner"}, {"not": outer}]}
    assert compiled(wh, definition, saved=saved) == members(world, d.parse(definition), NOW, saved)


def test_empty_warehouse_has_no_members(wh: Warehouse) -> None:
    load(wh, World())
    assert compiled(wh, {"not": {"event": "Product Viewed"}}) == set()
    assert compiled(wh, {"trait": "country", "exists": False}) == set()


def test_window_edges_are_inclusive(wh: Warehouse) -> None:
    world = World(
        profiles=[
            {"profile_id": p, "user_id": p, "email": None, "orders": None, "revenue": None, "last_order_at": None}
            for p in ("a", "b", "c")
        ],
        events=[
            {"user_id": "a", "event": "Product Viewed", "timestamp": NOW - timedelta(days=7), "properties": None},
            {
                "user_id": "b",
                "event": "Product Viewed",
                "timestamp": NOW - timedelta(days=7, microseconds=1),
                "properties": None,
            },
            {
                "user_id": "c",
                "event": "Product Viewed",
                "timestamp": NOW + timedelta(microseconds=1),
                "properties": None,
            },
        ],
    )
    load(wh, world)
    assert compiled(wh, {"event": "Product Viewed", "within_days": 7}) == {"a"}
    assert compiled(wh, {"event": "Product Viewed", "count": {"lt": 1}}) == {"c"}  # c's event is in the future
    assert compiled(wh, {"event": "Product Viewed", "last": {"before_days_ago": 7}}) == {"b"}
