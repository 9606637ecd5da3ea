"""Refreshing only the profiles an identity update changed gives the rows a full build gives.

Events arrive in random batches (visits, identifies that merge an anonymous visitor into a known
customer, orders, traits, a shared device); after each batch the incremental refresh
(:func:`touchpoint.profiles.workflow.update`) runs, then a full build on the same identities, and both
tables must hold the same rows.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from touchpoint import profiles
from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow
from touchpoint.warehouse import Warehouse

AS_OF = "2026-06-01T00:00:00"


def _batch(rng: random.Random, size: int, start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(start, start + size):
        person = rng.randrange(40)
        anon = f"a{person}-{rng.randrange(3)}"
        ts = f"2026-0{1 + i % 5}-{1 + i % 27:02d}T{i % 24:02d}:00:00Z"
        kind = rng.random()
        if kind < 0.4:
            out.append({"type": "page", "anonymousId": anon, "name": "Home", "timestamp": ts})
        elif kind < 0.6:
            traits = {"email": f"p{person}@x.org", "plan": rng.choice(["free", "pro"])}
            out.append(
                {"type": "identify", "anonymousId": anon, "userId": f"u{person}", "traits": traits, "timestamp": ts}
            )
        elif kind < 0.85:
            props = {"order_id": f"o{i}", "revenue": rng.choice([10.0, 25.5, 99.0])}
            out.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"u{person}",
                    "properties": props,
                    "timestamp": ts,
                }
            )
        else:  # a shared device: two known people on one anonymous id (a refused link)
            out.append({"type": "identify", "anonymousId": "kiosk", "userId": f"u{person}", "timestamp": ts})
    return out


def _rows(wh: Warehouse, table: str) -> list[dict[str, Any]]:
    t = wh.table(table)
    keep = [c for c in t.columns if c not in ("built_at",)]
    return sorted((wh.to_arrow(t.select(*keep)).to_pylist()), key=repr)


@pytest.mark.parametrize("seed", [1])
def test_refreshing_the_changed_profiles_equals_a_full_build(seed: int) -> None:
    rng = random.Random(seed)
    wh = Warehouse.open("duckdb://:memory:")
    start = 0
    recomputed = []
    for _ in range(5):
        size = rng.choice([1, 5, 40])
        write_messages(wh, _batch(rng, size, start))
        start += size
        out = workflow.update(wh, as_of=AS_OF)
        recomputed.append(out["profiles"]["recomputed"])
        incremental = _rows(wh, "profiles"), _rows(wh, "profile_traits")
        profiles.build(wh, as_of=AS_OF)
        assert (_rows(wh, "profiles"), _rows(wh, "profile_traits")) == incremental
    assert min(recomputed[1:]) < max(recomputed)  # later refreshes recomputed only some profiles


def test_a_refresh_after_identities_changed_without_one_rebuilds_every_profile() -> None:
    """A stop between the identity update and the profile build leaves profiles behind; the next
    refresh sees it (profiles built before identities last changed) and builds every profile."""
    from touchpoint import identity

    wh = Warehouse.open("duckdb://:memory:")
    write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"plan": "free"}}])
    workflow.update(wh)
    write_messages(wh, [{"type": "identify", "userId": "u2", "traits": {"plan": "pro"}}])
    identity.update(wh)  # ... and the process stopped here
    write_messages(wh, [{"type": "page", "userId": "u1"}])
    out = workflow.update(wh)
    assert out["profiles"]["recomputed"] == out["profiles"]["profiles"] == 2
    assert {r["user_id"] for r in wh.to_arrow(wh.table("profiles")).to_pylist()} == {"u1", "u2"}


def test_live_traffic_extends_profiles_and_equals_a_full_build() -> None:
    """Events arriving in time order (the live case): known visitors' profiles are extended by their new
    events alone (sessions, channels, traits); orders and new identities are recomputed; same rows."""
    rng = random.Random(7)
    wh = Warehouse.open("duckdb://:memory:")
    minute = 0
    extended = []
    for batch in range(4):
        msgs: list[dict[str, Any]] = []
        for _ in range(30):
            minute += rng.choice([1, 5, 45])  # some gaps start a new session
            person = rng.randrange(12)
            ts = f"2026-03-{1 + minute // 1440:02d}T{(minute // 60) % 24:02d}:{minute % 60:02d}:00Z"
            base: dict[str, Any] = {"anonymousId": f"a{person}", "timestamp": ts}
            kind = rng.random()
            if kind < 0.5:
                campaign = rng.choice([None, "spring"])
                ctx = {"campaign": {"source": "news", "medium": "email", "name": campaign}} if campaign else {}
                msgs.append({"type": "page", "name": "Home", "context": ctx, **base})
            elif kind < 0.75:
                traits = {"plan": rng.choice(["free", "pro"]), "email": f"p{person}@x.org"}
                msgs.append({"type": "identify", "userId": f"u{person}", "traits": traits, **base})
            elif kind < 0.9:
                msgs.append({"type": "track", "event": "Product Viewed", **base})
            else:
                props = {"order_id": f"o{minute}", "revenue": 20.0}
                msgs.append({"type": "track", "event": "Order Completed", "properties": props, **base})
        write_messages(wh, msgs)
        out = workflow.update(wh, as_of=AS_OF)
        if batch:
            extended.append(out["profiles"]["extended"])
        incremental = _rows(wh, "profiles"), _rows(wh, "profile_traits")
        profiles.build(wh, as_of=AS_OF)
        assert (_rows(wh, "profiles"), _rows(wh, "profile_traits")) == incremental
    assert max(extended) > 0  # the extension path ran


@pytest.mark.parametrize("warehouse_url", ["duckdb", "postgresql"], indirect=True)
def test_later_events_of_a_known_profile_extend_it_on_every_engine(warehouse_url: str) -> None:
    """The extension path (a known profile's later events) on each engine: PostgreSQL sums a bigint into a
    numeric, read back as a float, and the second update failed there before it counted instead."""
    wh = Warehouse.open(warehouse_url)
    try:
        identify = {"type": "identify", "userId": "u1", "traits": {"email": "a@x.example"}}
        write_messages(wh, [identify | {"timestamp": "2026-05-01T10:00:00Z"}], source="t")
        workflow.update(wh)
        for day in (2, 3):
            track = {"type": "track", "userId": "u1", "event": "Viewed", "timestamp": f"2026-05-0{day}T10:00:00Z"}
            out = workflow.update(wh) if write_messages(wh, [track], source="t").stored else None
            assert out is not None and out["profiles"]["extended"] == 1
        row = wh.to_arrow(wh.table("profiles")).to_pylist()[0]
        assert (row["events"], row["sessions"], row["orders"]) == (3, 3, 0)
    finally:
        wh.close()
