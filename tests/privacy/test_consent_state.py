"""The consent state derived from the history: the rule, identity merges and splits, defaults, and a
property test against a plain-Python reference over random histories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint import identity
from touchpoint.collect.store import write_messages
from touchpoint.errors import InvalidInput
from touchpoint.privacy import consent
from touchpoint.warehouse import Warehouse, schema

T0 = datetime(2026, 3, 1)


def _row(i: int, who: tuple[str, str], purpose: str, granted: bool, start: datetime, end: datetime | None) -> dict:
    return {
        "consent_id": f"c{i}",
        "identifier_type": who[0],
        "identifier": who[1],
        "purpose": purpose,
        "granted": granted,
        "source": "api",
        "proof": f"p{i}",
        "actor": None,
        "valid_from": start,
        "valid_until": end,
        "recorded_at": T0,
    }


def _load(wh: Warehouse, rows: list[dict[str, Any]], nodes: dict[tuple[str, str], str]) -> None:
    node_rows = [
        {"node_id": i, "id_type": k, "id_value": v, "rank": 1, "profile_id": p}
        for i, ((k, v), p) in enumerate(sorted(nodes.items()))
    ]
    ns = schema.IDENTITY_NODES.schema.to_pyarrow()
    hs = schema.CONSENT_HISTORY.schema.to_pyarrow()
    with wh.write() as tx:
        tx.replace("identity_nodes", pa.Table.from_pylist([{c: r.get(c) for c in ns.names} for r in node_rows], ns))
        tx.delete("consent_history")
        tx.append("consent_history", pa.Table.from_pylist(rows, hs))


def _state(wh: Warehouse, at: datetime) -> dict[tuple[str, str], bool]:
    return {(r["profile_id"], r["purpose"]): r["granted"] for r in wh.to_arrow(consent.state(wh, at=at)).to_pylist()}


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    w = Warehouse.open(f"duckdb://{tmp_path_factory.mktemp('consent-state') / 'wh.duckdb'}")
    yield w
    w.close()


def test_latest_in_force_wins_a_denial_wins_a_tie_and_expired_or_future_rows_do_not_count(wh: Warehouse) -> None:
    u = ("user_id", "u1")
    nodes = {u: "P1", ("email", "a@x.test"): "P1", ("user_id", "u2"): "P2"}
    rows = [
        _row(1, u, "marketing_email", True, T0, None),
        _row(2, ("email", "a@x.test"), "marketing_email", False, T0 + timedelta(days=2), T0 + timedelta(days=5)),
        _row(3, u, "marketing_email", True, T0 + timedelta(days=9), None),  # not yet in force on day 6
        _row(4, ("user_id", "u2"), "advertising", True, T0, None),
        _row(5, ("user_id", "u2"), "advertising", False, T0, None),  # the same instant: the denial wins
        _row(6, ("user_id", "nobody"), "advertising", True, T0, None),  # no profile holds it
    ]
    _load(wh, rows, nodes)
    assert _state(wh, T0 + timedelta(days=1)) == {("P1", "marketing_email"): True, ("P2", "advertising"): False}
    assert _state(wh, T0 + timedelta(days=3))[("P1", "marketing_email")] is False  # via another identifier
    assert _state(wh, T0 + timedelta(days=6))[("P1", "marketing_email")] is True  # the denial expired
    assert _state(wh, T0 - timedelta(days=1)) == {}
    people = ibis.memtable({"profile_id": ["P1", "P2", "P3"]})
    got = wh.to_arrow(consent.with_consent(wh, people, "analytics", at=T0).order_by("profile_id")).to_pylist()
    assert [r["consent"] for r in got] == [True, True, True]  # opt-out: holds until denied
    got = wh.to_arrow(consent.with_consent(wh, people, "advertising", at=T0).order_by("profile_id")).to_pylist()
    assert [r["consent"] for r in got] == [False, False, False]  # P2 denied, the others never granted (opt-in)
    kept = wh.to_arrow(consent.consenting(wh, people, "marketing_email", at=T0 + timedelta(days=1))).to_pylist()
    assert kept == [{"profile_id": "P1"}]
    with pytest.raises(InvalidInput, match="'spam' is not a consent purpose"):
        consent.with_consent(wh, people, "spam")


def test_a_merge_gathers_consent_and_a_split_separates_it(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    day = "2026-02-0{}T10:00:00Z"
    write_messages(
        wh,
        [
            {
                "type": "identify",
                "anonymousId": "a1",
                "traits": {"consent_marketing_email": True},
                "timestamp": day.format(1),
            },
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"consent_marketing_email": False},
                "timestamp": day.format(2),
            },
            {
                "type": "identify",
                "userId": "u9",
                "traits": {"consent_marketing_email": True},
                "timestamp": day.format(1),
            },
        ],
    )
    identity.rebuild(wh)
    a1, u1 = identity.resolve(wh, "a1"), identity.resolve(wh, "u1")
    assert a1 != u1 and _state(wh, T0)[(a1, "marketing_email")] is True
    write_messages(
        wh, [{"type": "track", "anonymousId": "a1", "userId": "u1", "event": "Signed In", "timestamp": day.format(3)}]
    )
    identity.update(wh)
    one = identity.resolve(wh, "a1")
    assert identity.resolve(wh, "u1") == one
    assert _state(wh, T0)[(one, "marketing_email")] is False  # the later denial under u1 now binds a1 too
    identity.split(wh, one, "a1", "anonymous_id")
    alone = identity.resolve(wh, "a1")
    assert alone != identity.resolve(wh, "u1") and _state(wh, T0)[(alone, "marketing_email")] is True
    wh.close()


# -- the property test ------------------------------------------------------------------------------------
PURPOSES = ["marketing_email", "analytics"]
IDS = [("user_id", "u1"), ("user_id", "u2"), ("email", "e@x.test"), ("anonymous_id", "a1"), ("profile_id", "P9")]
instant = st.integers(0, 12).map(lambda d: T0 + timedelta(days=d))


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[tuple[str, str], str], list[dict[str, Any]], datetime]:
    nodes = {who: draw(st.sampled_from(["P1", "P2", "P3"])) for who in IDS[:-1] if draw(st.booleans())}
    rows = []
    for i in range(draw(st.integers(0, 12))):
        start = draw(instant)
        end = draw(st.one_of(st.none(), st.integers(1, 5).map(lambda d, s=start: s + timedelta(days=d))))
        rows.append(
            _row(i, draw(st.sampled_from(IDS)), draw(st.sampled_from(PURPOSES)), draw(st.booleans()), start, end)
        )
    return nodes, rows, draw(instant)


def reference(
    nodes: dict[tuple[str, str], str], rows: list[dict[str, Any]], at: datetime
) -> dict[tuple[str, str], bool]:
    """The rule in plain Python: per profile and purpose, of the rows in force, the latest start wins;
    a denial wins a tie. A profile id stands for itself; an identifier no profile holds counts for nobody."""
    live: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        who = (r["identifier_type"], r["identifier"])
        pid = r["identifier"] if who[0] == "profile_id" else nodes.get(who)
        in_force = r["valid_from"] <= at and (r["valid_until"] is None or r["valid_until"] > at)
        if pid is not None and in_force:
            live.setdefault((pid, r["purpose"]), []).append(r)
    out = {}
    for key, rs in live.items():
        latest = max(r["valid_from"] for r in rs)
        out[key] = all(r["granted"] for r in rs if r["valid_from"] == latest)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=histories())
def test_the_derived_state_matches_the_reference(wh: Warehouse, case: Any) -> None:
    nodes, rows, at = case
    _load(wh, rows, nodes)
    expected = reference(nodes, rows, at)
    assert _state(wh, at) == expected
    people = ibis.memtable({"profile_id": ["P1", "P2", "P3", "P9"]})
    got = wh.to_arrow(consent.with_consent(wh, people, "marketing_email", at=at)).to_pylist()
    assert {r["profile_id"]: r["consent"] for r in got} == {
        p: expected.get((p, "marketing_email"), False) for p in ("P1", "P2", "P3", "P9")
    }


# -- defaults by region -------------------------------------------------------------------------------------
REGIONAL = {"marketing_email": {"EU": "opt-in", "US": "opt_out"}}  # opt-in elsewhere (the purpose's default)
COUNTRIES = [None, "SE", "de", "US", "BR", "NO"]  # NO: EEA, so EU; BR: its own region, no entry: the default


def _traits(wh: Warehouse, traits: dict[str, dict[str, str]]) -> None:
    import json

    ts = schema.PROFILE_TRAITS.schema.to_pyarrow()
    rows = [
        {"profile_id": p, "trait": name, "value": json.dumps(value), "source": "t", "timestamp": T0, "message_id": "m"}
        for p, found in sorted(traits.items())
        for name, value in sorted(found.items())
    ]
    with wh.write() as tx:
        if wh.has_table("profile_traits"):
            tx.delete("profile_traits")
            tx.append("profile_traits", pa.Table.from_pylist(rows, ts))
        else:
            tx.replace("profile_traits", pa.Table.from_pylist(rows, ts))


def reference_region(traits: dict[str, str], settings_: Any) -> str | None:
    """The rule in plain Python: ``consent_region`` as written, else the country's region, else none."""
    if traits.get("consent_region"):
        return traits["consent_region"].upper()
    country = traits.get("country")
    if not country:
        return None
    return settings_.consent_regions.get(country.upper(), country.upper())


@st.composite
def regional_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    nodes, rows, at = draw(histories())
    traits: dict[str, dict[str, str]] = {}
    for p in ("P1", "P2", "P3", "P9"):
        found = {}
        country = draw(st.sampled_from(COUNTRIES))
        if country is not None:
            found["country"] = country
        if draw(st.integers(0, 4)) == 0:
            found["consent_region"] = draw(st.sampled_from(["eu", "US", "APAC"]))
        traits[p] = found
    return nodes, rows, at, traits


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=regional_cases())
def test_defaults_by_region_match_the_reference(wh: Warehouse, case: Any) -> None:
    from touchpoint.config import override_settings

    conf = override_settings(consent_region_defaults=REGIONAL)
    nodes, rows, at, traits = case
    _load(wh, rows, nodes)
    _traits(wh, traits)
    expected = reference(nodes, rows, at)
    people = ibis.memtable({"profile_id": ["P1", "P2", "P3", "P9"]})
    got = wh.to_arrow(consent.with_consent(wh, people, "marketing_email", at=at, settings=conf)).to_pylist()
    want = {}
    for p in ("P1", "P2", "P3", "P9"):
        region = reference_region(traits[p], conf)
        default = {"EU": False, "US": True}.get(region or "", False)  # stated consent wins; else the region's
        want[p] = expected.get((p, "marketing_email"), default)
    assert {r["profile_id"]: r["consent"] for r in got} == want
    # analytics has no regional default: opt-out for everybody who never said
    got = wh.to_arrow(consent.with_consent(wh, people, "analytics", at=at, settings=conf)).to_pylist()
    assert {r["profile_id"]: r["consent"] for r in got} == {
        p: expected.get((p, "analytics"), True) for p in ("P1", "P2", "P3", "P9")
    }


def test_region_settings_are_checked_and_documented_sources_decide() -> None:
    from touchpoint.config import Settings
    from touchpoint.privacy import purposes

    s = Settings(consent_region_defaults={"analytics": {"eu": "opt-in"}}, consent_regions={"gb": "uk"})
    assert s.consent_region_defaults == {"analytics": {"EU": "opt_in"}}
    assert purposes.region_of("gb", s) == "UK" and purposes.region_of("FR", Settings()) == "EU"
    assert not purposes.granted_everywhere("analytics", s) and purposes.granted_everywhere("analytics", Settings())
    listed = {d["purpose"]: d for d in purposes.describe(s)}
    assert listed["analytics"]["default_by_region"] == {"EU": "opt_in"}
    assert purposes.region_of("FR", s) == "EU"  # a table given is merged over the EU/EEA default
    for bad, word in [
        ({"consent_region_defaults": {"analytics": {"EU": "maybe"}}}, "opt_in"),
        ({"consent_region_defaults": {"spam": {"EU": "opt_in"}}}, "not in consent_purposes"),
        ({"consent_regions": {"GER": "EU"}}, "two-letter"),
    ]:
        with pytest.raises(ValueError, match=word):
            Settings(**bad)
