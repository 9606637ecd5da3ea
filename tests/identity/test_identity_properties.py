"""Invariants of resolution, checked on random event streams (hypothesis)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint import identity
from touchpoint.collect.store import write_messages
from touchpoint.identity.quality import assignment, clusters, refused_pairs
from touchpoint.warehouse import Warehouse

USERS = ["u1", "u2", "u3", "0"]  # "0" is junk
ANONS = ["a1", "a2", "a3", "a4", "anonymous"]  # "anonymous" is junk
EMAILS = ["x@y.org", "z@y.org", "test@test.com"]  # the last is a placeholder


@st.composite
def event(draw: Any, minute: int) -> dict[str, Any]:
    user = draw(st.sampled_from([None, *USERS]))
    anon = draw(st.sampled_from([None, *ANONS])) if user else draw(st.sampled_from(ANONS))
    msg: dict[str, Any] = {"type": "identify", "timestamp": f"2026-05-01T00:{minute:02d}:00Z"}
    if user:
        msg["userId"] = user
    if anon:
        msg["anonymousId"] = anon
    email = draw(st.sampled_from([None, None, *EMAILS]))
    if email:
        msg["traits"] = {"email": email}
    return msg


@st.composite
def streams(draw: Any) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    n = draw(st.integers(2, 7))
    events = [draw(event(i)) for i in range(n)]
    order = draw(st.permutations(list(range(n))))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), max_size=2, unique=True))) if n > 1 else []
    return events, order, cuts


def _resolved(events: list[dict[str, Any]]) -> Warehouse:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(wh, events)
    identity.rebuild(wh)
    return wh


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_arrival_order_and_incremental_updates_give_the_rebuild_partition(
    stream: tuple[list[dict[str, Any]], list[int], list[int]],
) -> None:
    events, order, cuts = stream
    reference = _resolved(events)
    wh = Warehouse.open("duckdb://:memory:")
    arrived = [events[i] for i in order]
    bounds = [0, *cuts, len(arrived)]
    for lo, hi in itertools.pairwise(bounds):
        write_messages(wh, arrived[lo:hi])
        identity.update(wh)
    assert assignment(wh) == assignment(reference)
    assert refused_pairs(wh) == refused_pairs(reference)
    # and no profile ever holds two user ids
    for group in clusters(wh):
        assert sum(1 for t, _ in group if t == "user_id") <= 1


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 1000), min_size=3, max_size=8), st.integers(0, 100))
def test_split_then_merge_returns_the_same_profile(seeds: list[int], pick: int) -> None:
    events = []
    for i, s in enumerate(seeds):
        events.append(
            {
                "type": "identify",
                "userId": USERS[s % 3],
                "anonymousId": ANONS[(s // 3) % 4],
                "traits": {"email": EMAILS[(s // 12) % 2]},
                "timestamp": f"2026-05-01T00:{i:02d}:00Z",
            }
        )
    wh = _resolved(events)
    before = assignment(wh)
    groups = [g for g in clusters(wh) if len(g) > 1]
    if not groups:
        return
    group = sorted(sorted(g) for g in groups)[pick % len(groups)]
    id_type, value = group[pick % len(group)]
    pid = before[(id_type, value)]
    out = identity.split(wh, pid, value, id_type)
    after = assignment(wh)
    alone = [k for k, p in after.items() if p == after[(id_type, value)]]
    assert alone == [(id_type, value)]  # every link of the split identifier is cut
    identity.merge(wh, out["split_profile_id"], out["profile_id"] or pid)
    assert assignment(wh) == before
