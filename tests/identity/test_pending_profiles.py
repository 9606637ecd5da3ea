"""A profile read before the profiles job has caught up holds what the event log already has.

The overlay (:mod:`touchpoint.profiles.pending`) must agree with the job: for random traits sent by
random people at random instants (older and newer than what is stored, identify ``traits`` and
``context.traits`` at the same instant), the traits a read shows before the update are the traits the
update then stores; an identifier only new events carry gets a provisional profile with those traits; the
timeline holds every event once, before and after the update.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint import profiles
from touchpoint.collect.store import write_messages
from touchpoint.errors import NotFound
from touchpoint.profiles import workflow
from touchpoint.profiles.timeline import timeline
from touchpoint.warehouse import Warehouse

PEOPLE = 4


def _identify(person: int, traits: dict[str, Any], day: int, hour: int, *, context: bool = False) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "identify",
        "userId": f"u{person}",
        "anonymousId": f"a{person}",
        "timestamp": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
    }
    if context:
        msg["context"] = {"traits": traits}
    else:
        msg["traits"] = traits
    return msg


def _shop() -> Warehouse:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(wh, [_identify(p, {"plan": "free", "email": f"p{p}@x.org"}, 10, 12) for p in range(PEOPLE)])
    workflow.update(wh)
    return wh


def _examples(wh: Warehouse) -> int:
    """How many examples have run on the shared shop (each adds one user id pair at most)."""
    n = getattr(wh, "_pending_examples", 0)
    wh._pending_examples = n + 1  # type: ignore[attr-defined]
    return int(n)


def _new(wh: Warehouse, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the log will store: one of each, none sent before (the collector derives a message id
    from a message's content when it has none, and keeps the first)."""
    sent: set[str] = wh.__dict__.setdefault("_pending_sent", set())
    fresh = {}
    for m in messages:
        fresh.setdefault(json.dumps(m, sort_keys=True), m)
    new = [m for key, m in fresh.items() if key not in sent]
    sent.update(fresh)
    return new


def _traits(p: dict[str, Any]) -> dict[str, Any]:
    return {k: (v, p["trait_sources"][k]["message_id"]) for k, v in p["traits"].items()}


writes = st.lists(
    st.tuples(
        st.integers(0, PEOPLE + 1),  # PEOPLE and PEOPLE + 1 are new people
        st.sampled_from(["plan", "tier", "email"]),
        st.sampled_from(["free", "pro", "team"]),
        st.integers(8, 12),  # days before, at and after the stored values' day
        st.sampled_from([0, 12]),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def shop() -> Warehouse:
    return _shop()


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(batch=writes)
def test_a_read_before_the_update_shows_the_traits_the_update_stores(
    shop: Warehouse, batch: list[tuple[Any, ...]]
) -> None:
    # one shop for every example (an update costs seconds): each example's people are new ones (ids from
    # PEOPLE up) or the stored ones, whose traits the earlier examples changed: the property holds either way
    wh, first_new = shop, PEOPLE + 2 * _examples(shop)
    workflow.update(wh)  # what an earlier example left pending (it failed, or the shrinker stopped it)
    messages = []
    for person, trait, value, day, hour, context in batch:
        person = person if person < PEOPLE else first_new + person - PEOPLE
        v = f"{value}{person}@x.org" if trait == "email" else value
        messages.append(_identify(person, {trait: v}, day, hour, context=context))
    write_messages(wh, messages)
    stored = _new(wh, messages)
    people = sorted({m["userId"] for m in messages} | {f"u{p}" for p in range(PEOPLE)})
    before = {u: profiles.get_profile(wh, u) for u in people}
    for u, p in before.items():
        assert p["pending"]["events"] == sum(m["userId"] == u for m in stored)
        assert p["pending"]["provisional"] == (int(u[1:]) >= PEOPLE)
        assert (p["profile_id"] is None) == p["pending"]["provisional"]
    workflow.update(wh)
    for u in people:
        after = profiles.get_profile(wh, u)
        assert after["pending"]["events"] == 0 and after["profile_id"] is not None
        assert _traits(before[u]) == _traits(after), u


def test_an_unknown_identifier_is_still_not_found() -> None:
    wh = _shop()
    write_messages(wh, [_identify(9, {"plan": "pro"}, 11, 0)])
    with pytest.raises(NotFound):
        profiles.get_profile(wh, "u77")
    with pytest.raises(NotFound):  # the dashboard shows resolved profiles only
        profiles.get_profile(wh, "u9", provisional=False)
    p = profiles.get_profile(wh, "a9", "anonymous_id")
    assert p["matched"] == {"type": "anonymous_id", "value": "a9", "redirected_from": None}
    assert {(i["type"], i["value"]) for i in p["identifiers"]} == {("user_id", "u9"), ("anonymous_id", "a9")}


def test_a_provisional_profile_before_any_build() -> None:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(wh, [_identify(1, {"plan": "pro"}, 11, 0)])
    p = profiles.get_profile(wh, "u1")
    assert p["profile_id"] is None and p["traits"] == {"plan": "pro"} and p["pending"]["watermark"] is None


def test_the_timeline_holds_each_event_once_before_and_after_the_update() -> None:
    wh = _shop()
    rng = random.Random(3)
    new = [
        {"type": "track", "userId": "u1", "event": "Product Viewed", "timestamp": f"2026-03-11T{h:02d}:00:00Z"}
        for h in range(5)
    ]
    new += [{"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": "2026-03-09T00:00:00Z"}]
    rng.shuffle(new)
    write_messages(wh, new)
    before = timeline(wh, "u1", limit=100)
    assert before["total"] == 7
    assert len({e["message_id"] for e in before["events"]}) == 7
    workflow.update(wh)
    after = timeline(wh, "u1", limit=100)
    assert [e["message_id"] for e in after["events"]] == [e["message_id"] for e in before["events"]]
