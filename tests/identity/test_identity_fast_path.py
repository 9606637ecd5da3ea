"""The incremental update's fast paths (statistics only, components resolved in memory) give what a full
rebuild gives: the same profiles, the same refused links with their reasons, the same statistics of
every identifier and link, and the same ``event_identities`` (each event's node, so its profile), over
random event streams that arrive in random batches (late events, repeated visits, new links, a shared
device, a junk identifier, a manual split between batches). ``event_identities`` is also compared with
the mapping computed from the events themselves (:func:`touchpoint.identity.resolve_events`)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint import identity
from touchpoint.collect.store import write_messages
from touchpoint.identity import delta, store
from touchpoint.identity.quality import assignment, refused_pairs
from touchpoint.warehouse import Warehouse

USERS = ["u1", "u2", "u3"]
ANONS = ["a1", "a2", "a3", "a4", "kiosk", "anonymous"]  # "anonymous" is junk: alone, its event has no profile
EMAILS = ["x@y.org", "z@y.org"]


@st.composite
def event(draw: Any, minute: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["page", "page", "track", "identify"]))
    msg: dict[str, Any] = {"type": kind, "timestamp": f"2026-05-01T{minute // 60:02d}:{minute % 60:02d}:00Z"}
    if kind == "track":
        msg["event"] = "Product Viewed"
    anon = draw(st.sampled_from([None, *ANONS]))
    user = draw(st.sampled_from([None, None, *USERS])) if kind != "page" else None
    if anon is None and user is None:
        anon = draw(st.sampled_from(ANONS))
    if anon:
        msg["anonymousId"] = anon
    if user:
        msg["userId"] = user
    if kind == "identify" and draw(st.booleans()):
        msg["traits"] = {"email": draw(st.sampled_from(EMAILS))}
    return msg


@st.composite
def streams(draw: Any) -> tuple[list[dict[str, Any]], list[int], bool]:
    n = draw(st.integers(3, 14))
    events = [draw(event(i)) for i in range(n)]  # one minute each: first-seen ties never decide
    order = draw(st.permutations(list(range(n))))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=3, unique=True)))
    arrived = [events[i] for i in order]
    bounds = [0, *cuts, n]
    return [arrived[a:b] for a, b in itertools.pairwise(bounds)], cuts, draw(st.booleans())


def _nodes(wh: Warehouse) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = wh.to_arrow(wh.table("identity_nodes")).to_pylist()
    return {
        (r["id_type"], r["id_value"]): (r["rank"], r["first_seen"], r["last_seen"], r["events"], r["profile_id"])
        for r in rows
    }


def _links(wh: Warehouse) -> dict[tuple[tuple[str, str], ...], tuple[Any, ...]]:
    names = {
        r["node_id"]: (r["id_type"], r["id_value"])
        for r in wh.to_arrow(wh.table("identity_nodes").select("node_id", "id_type", "id_value")).to_pylist()
    }
    out = {}
    for r in wh.to_arrow(wh.table("identity_links")).to_pylist():
        key = tuple(sorted([names[r["src"]], names[r["dst"]]]))
        out[key] = (r["message_id"], r["first_seen"], r["last_seen"], r["events"], r["status"], r["reason"])
    return out


def _event_nodes(wh: Warehouse) -> dict[str, tuple[str, str]]:
    """Each event's node in ``event_identities``, by its identifier (node ids differ between runs)."""
    ei, n = wh.table("event_identities"), wh.table("identity_nodes")
    j = ei.join(n, "node_id").select(ei.message_id, n.id_type, n.id_value)
    rows = wh.to_arrow(j).to_pylist()
    out = {r["message_id"]: (r["id_type"], r["id_value"]) for r in rows}
    assert len(out) == len(rows) == wh.to_arrow(ei.count()).as_py()  # one row per event, each a stored node
    return out


def _event_profiles(wh: Warehouse) -> dict[str, str]:
    """The stored mapping (``event_profiles``), checked against the one computed from the events."""
    stored = {r["message_id"]: r["profile_id"] for r in wh.to_arrow(identity.event_profiles(wh)).to_pylist()}
    computed = {r["message_id"]: r["profile_id"] for r in wh.to_arrow(identity.resolve_events(wh)).to_pylist()}
    assert stored == computed
    return stored


def _check(batches: list[list[dict[str, Any]]], split_after_first: bool) -> list[str]:
    wh = Warehouse.open("duckdb://:memory:")
    paths = []
    for i, batch in enumerate(batches):
        write_messages(wh, batch)
        before = store.resolved(wh)
        result = identity.update(wh)
        paths.append(result.path if result.mode == "incremental" else result.mode)
        if not before:  # nothing resolved yet (e.g. only the junk id "anonymous"): a first resolution rebuilds
            paths[-1] = "first"
        if i == 0 and split_after_first:
            groups: dict[str, list[tuple[str, str]]] = {}
            for key, pid in assignment(wh).items():
                groups.setdefault(pid, []).append(key)
            big = sorted(sorted(g) for g in groups.values() if len(g) > 1)
            if big:
                id_type, value = big[0][0]
                identity.split(wh, assignment(wh)[(id_type, value)], value, id_type)
    incremental = assignment(wh), refused_pairs(wh), _nodes(wh), _links(wh), _event_nodes(wh), _event_profiles(wh)
    identity.rebuild(wh)  # from scratch, overrides kept
    assert incremental[0] == assignment(wh)
    assert incremental[1] == refused_pairs(wh)
    assert incremental[2] == _nodes(wh)
    assert incremental[3] == _links(wh)
    assert incremental[4] == _event_nodes(wh)
    assert incremental[5] == _event_profiles(wh)
    wh.close()
    return paths


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_fast_paths_give_the_rebuild(stream: tuple[list[list[dict[str, Any]]], list[int], bool]) -> None:
    batches, _, split = stream
    paths = _check(batches, split)
    assert paths[0] == "first"
    later = [p for p in paths if p != "first"]
    assert set(later) <= {"memory", "statistics", "noop"}  # small changes never reach the engine


@pytest.mark.slow
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_engine_path_for_large_changes_gives_the_rebuild(
    stream: tuple[list[list[dict[str, Any]]], list[int], bool],
) -> None:
    batches, _, split = stream
    with pytest.MonkeyPatch.context() as m:
        m.setattr(delta, "MEMORY_NODES", 0)
        paths = _check(batches, split)
    assert set(p for p in paths if p != "first") <= {"engine", "statistics", "noop"}


def test_repeat_visits_of_known_identifiers_only_update_statistics() -> None:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(
        wh,
        [
            {"type": "identify", "anonymousId": "a1", "userId": "u1", "timestamp": "2026-05-01T10:00:00Z"},
            {"type": "page", "anonymousId": "a2", "timestamp": "2026-05-01T10:00:00Z"},
        ],
    )
    identity.update(wh)
    before = _nodes(wh)
    write_messages(
        wh,
        [
            {"type": "page", "anonymousId": "a1", "timestamp": "2026-05-02T10:00:00Z"},
            {"type": "track", "event": "X", "userId": "u1", "anonymousId": "a1", "timestamp": "2026-05-02T11:00:00Z"},
            {"type": "page", "anonymousId": "a2", "timestamp": "2026-05-02T12:00:00Z"},
        ],
    )
    r = identity.update(wh)
    assert (r.path, r.components_recomputed, r.statistics_updated) == ("statistics", 0, 3)
    assert r.changed_profiles == [] and len(r.touched_profiles) == 2
    after = _nodes(wh)
    assert after[("anonymous_id", "a1")][2:4] == (before[("anonymous_id", "a1")][2].replace(day=2, hour=11), 3)
    # a late event (earlier than the identifier was first seen) may rename a profile: it is resolved
    write_messages(wh, [{"type": "page", "anonymousId": "a2", "timestamp": "2026-04-01T00:00:00Z"}])
    r = identity.update(wh)
    assert (r.path, r.components_recomputed) == ("memory", 1)


def test_identities_built_before_event_identities_are_read_as_before_then_rebuilt_once() -> None:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(
        wh,
        [
            {"type": "page", "anonymousId": "a1", "timestamp": "2026-05-01T10:00:00Z"},
            {"type": "identify", "anonymousId": "a1", "userId": "u1", "timestamp": "2026-05-01T10:01:00Z"},
            {"type": "page", "anonymousId": "anonymous", "timestamp": "2026-05-01T10:02:00Z"},
        ],
    )
    identity.update(wh)
    expected = _event_profiles(wh)
    assert len(expected) == 2 and len(set(expected.values())) == 1  # the junk-only event has no profile
    # as a warehouse resolved before migration 12 looks: state version 1, no event_identities rows
    state = identity.store.read_state(wh)
    identity.store.write_state(wh, state | {"version": 1})
    with wh.write() as tx:
        tx.delete("event_identities", "message_id", list(expected))
    assert not identity.store.events_indexed(wh)
    assert {r["message_id"]: r["profile_id"] for r in wh.to_arrow(identity.event_profiles(wh)).to_pylist()} == expected
    write_messages(wh, [{"type": "page", "anonymousId": "a1", "timestamp": "2026-05-01T11:00:00Z"}])
    r = identity.update(wh)
    assert r.mode == "rebuild" and "version 1" in r.notes[0]
    assert identity.store.events_indexed(wh)
    after = _event_profiles(wh)
    assert len(after) == 3 and set(after.values()) == set(expected.values())
