"""Lead scores: hand-computed points with half-life decay, caps and ceiling; bands entered once;
stages forward only with explicit demotion; explanations; errors naming the node; the HTTP routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from touchpoint import keys
from touchpoint.audiences import scores
from touchpoint.config import Settings
from touchpoint.errors import InvalidDefinition, InvalidInput
from touchpoint.warehouse import Warehouse

from .reference import NOW, World, load

DEFINITION: dict[str, Any] = {
    "fit": [
        {"name": "swede", "when": {"trait": "country", "eq": "SE"}, "points": 20},
        {"name": "buyer", "when": {"trait": "orders", "gte": 1}, "points": 50, "group": "fit"},
    ],
    "engagement": [
        {"name": "views", "event": "Product Viewed", "points": 10, "half_life_days": 7, "group": "web"},
        {"name": "carts", "event": "Signed Up", "points": 8, "half_life_days": 1, "within_days": 3, "group": "web"},
    ],
    "caps": {"web": 15},
    "ceiling": 60,
    "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 15}, {"name": "hot", "min": 30}],
    "stages": [
        {"name": "subscriber"},
        {"name": "lead", "min_points": 10},
        {"name": "marketing-qualified", "min_points": 30},
        {"name": "customer", "when": {"trait": "orders", "gte": 1}},
    ],
}


def _profile(pid: str, orders: int | None = None) -> dict[str, Any]:
    return {"profile_id": pid, "user_id": pid, "email": None, "orders": orders, "revenue": None, "last_order_at": None}


def _event(pid: str, event: str, days_ago: float) -> dict[str, Any]:
    return {"user_id": pid, "event": event, "timestamp": NOW - timedelta(days=days_ago), "properties": None}


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    w = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    world = World(
        profiles=[_profile("a"), _profile("b", orders=2), _profile("c")],
        traits={("a", "country"): "SE", ("b", "country"): "SE"},
        events=[_event("a", "Product Viewed", 7), _event("a", "Product Viewed", 14), _event("c", "Product Viewed", 0)]
        + [_event("c", "Product Viewed", 1) for _ in range(3)]
        + [_event("c", "Signed Up", 4)],
    )
    load(w, world)
    scores.save(w, "lead", DEFINITION)
    yield w
    w.close()


def test_points_decay_caps_and_ceiling(wh: Warehouse) -> None:
    out = scores.run(wh, "lead", now=NOW)
    assert out["profiles"] == 3
    a = scores.explain(wh, "lead", "a", now=NOW)
    assert a["points"] == pytest.approx(20 + 10 * 0.5 + 10 * 0.25)  # one half-life, two half-lives
    b = scores.explain(wh, "lead", "b", now=NOW)
    assert b["points"] == 60  # 20 + 50 capped by the ceiling
    c = scores.explain(wh, "lead", "c", now=NOW)
    raw_web = 10 + 3 * 10 * 0.5 ** (1 / 7)  # the Signed Up 4 days ago is outside its 3-day window
    assert {r["rule"]: r["points"] for r in c["rules"]}["views"] == pytest.approx(raw_web, abs=1e-3)
    assert c["groups"][-1]["counted"] == 15 and c["points"] == 15  # the web group's cap
    assert (a["band"], b["band"], c["band"]) == ("warm", "hot", "warm")


def test_every_profiles_explanation_at_once_is_each_ones_explanation(wh: Warehouse) -> None:
    scores.run(wh, "lead", now=NOW)
    scores.demote(wh, "lead", "b", "lead", reason="sales returned it")
    cached = scores.explain_all(wh, "lead", now=NOW)
    assert cached["at"] == NOW and cached["rows"].column("profile_id").to_pylist() == ["a", "b", "c"]
    for pid in ("a", "b", "c"):
        assert scores.explanation_of(cached, pid) == scores.explain(wh, "lead", pid, now=NOW)
    assert scores.explanation_of(cached, "b")["stage"] == "lead"  # the stored stage, demotion included
    assert scores.explanation_of(cached, "nobody") is None


def test_bands_are_entered_once_and_stages_move_forward_only(wh: Warehouse) -> None:
    scores.run(wh, "lead", now=NOW)
    again = scores.run(wh, "lead", now=NOW)
    assert again["band_entries"] == 0 and again["promotions"] == 0
    entries = scores.band_entries(wh, NOW - timedelta(days=1), score="lead")
    assert sorted((e["profile_id"], e["band"]) for e in entries) == [("a", "warm"), ("b", "hot"), ("c", "warm")]
    # two months later c's views have decayed: c falls to cold (a new band entry) but keeps its stage
    later = scores.run(wh, "lead", now=NOW + timedelta(days=60))
    assert later["band_entries"] == 1
    c = wh.to_arrow(wh.table("score_results").filter(wh.table("score_results").profile_id == "c")).to_pylist()[0]
    assert c["band"] == "cold" and c["points"] < 10 and c["stage"] == "lead"
    out = scores.demote(wh, "lead", "b", "lead", reason="sales returned it")
    assert (out["previous"], out["stage"]) == ("customer", "lead")
    with pytest.raises(InvalidInput, match="not before the current stage"):
        scores.demote(wh, "lead", "b", "customer", reason="x")
    changes = wh.to_arrow(wh.table("score_stages").filter(wh.table("score_stages").profile_id == "b")).to_pylist()
    assert [(c["kind"], c["stage"]) for c in changes] == [("promoted", "customer"), ("demoted", "lead")]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"fit": [{"when": {"trait": "orders", "eq": "x"}, "points": 1}]}, "$.fit[0].when.eq"),
        ({"fit": [{"when": {"colour": 1}, "points": 1}]}, "$.fit[0].when"),
        ({"engagement": [{"event": "X", "points": 1, "half_life_days": 0}]}, "$.engagement[0].half_life_days"),
        ({"engagement": [{"event": "X", "points": 1}], "caps": {"nope": 3}}, "$.caps.nope"),
        ({"engagement": [{"event": "X", "points": "ten"}]}, "$.engagement[0].points"),
        ({"fit": [], "engagement": []}, "$"),
        (
            {
                "engagement": [{"event": "X", "points": 1}],
                "bands": [{"name": "hot", "min": 5}, {"name": "cold", "min": 0}],
            },
            "$.bands",
        ),
    ],
)
def test_bad_score_definitions_name_the_node(wh: Warehouse, body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        scores.save(wh, "bad", body)
    assert info.value.path == path, info.value.message


def test_http_routes(wh: Warehouse, tmp_path: Path) -> None:
    from touchpoint.api.app import create_app

    read = keys.create_api_key(wh, "r", "read")
    admin = keys.create_api_key(wh, "a", "admin")
    wh.close()
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "wh.duckdb").rename(data / "warehouse.duckdb")
    with TestClient(create_app(Settings(data_dir=data))) as client:
        r = client.post("/v1/scores/lead/run", headers={"Authorization": f"Bearer {read}"})
        assert r.status_code == 403
        r = client.post("/v1/scores/lead/run", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200 and r.json()["profiles"] == 3
        r = client.get("/v1/scores/lead/explain/a", headers={"Authorization": f"Bearer {read}"})
        assert r.status_code == 200 and {x["rule"] for x in r.json()["rules"]} == {"swede", "buyer", "views", "carts"}
        r = client.get("/v1/scores/lead/profiles/b", headers={"Authorization": f"Bearer {read}"})
        got = r.json()
        assert r.status_code == 200 and (got["points"], got["band"], got["stage"]) == (60.0, "hot", "customer")
        assert got["fit"] == 70.0 and got["engagement"] == 0.0 and got["computed_at"]
        for path, message in (("lead/profiles/nobody", "no points for profile"), ("nope/profiles/b", "no score")):
            r = client.get(f"/v1/scores/{path}", headers={"Authorization": f"Bearer {read}"})
            assert r.status_code == 404 and message in r.json()["error"]["message"], r.text
        r = client.get(
            "/v1/scores/entries", params={"since": "2000-01-01T00:00:00Z"}, headers={"Authorization": f"Bearer {read}"}
        )
        assert len(r.json()["entries"]) == 3
        bad = client.post(
            "/v1/scores", json={"name": "x", "definition": {"fit": "no"}}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert bad.status_code == 400 and json.loads(bad.text)["error"]["code"] == "invalid_definition"


def test_a_changed_definition_rerun_at_the_same_instant(wh: Warehouse) -> None:
    scores.run(wh, "lead", now=NOW)
    changed = {**DEFINITION, "fit": [{"name": "swede", "when": {"trait": "country", "eq": "SE"}, "points": 40}]}
    scores.save(wh, "lead", changed, replace=True)
    out = scores.run(wh, "lead", now=NOW)  # the same instant: that instant's band entry is replaced, not doubled
    assert out["bands"]["hot"] == 2
    entries = scores.band_entries(wh, NOW - timedelta(days=1), score="lead")
    assert sorted((e["profile_id"], e["band"]) for e in entries) == [("a", "hot"), ("b", "hot"), ("c", "warm")]


def test_cli_shows_one_profiles_stored_score(wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    scores.run(wh, "lead", now=NOW)
    wh.close()
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "wh.duckdb").rename(data / "warehouse.duckdb")
    code, out, err = run_cli(capsys, "scores", "show", "lead", "--profile", "a", "--data", str(data), "--json")
    got = json.loads(out)
    assert code == 0 and (got["profile_id"], got["band"], got["stage"]) == ("a", "warm", "lead"), err
    assert got["points"] == got["fit"] + got["engagement"] == 20 + round(10 * 0.5 + 10 * 0.25, 2)
    code, _, err = run_cli(capsys, "scores", "show", "lead", "--profile", "nobody", "--data", str(data))
    assert code != 0 and "no points for profile 'nobody'" in err
    w = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    try:  # read like `explain`: audited with the profile as subject
        t = w.table("audit_log")
        rows = w.to_arrow(t.filter(t.action == "scores.read").order_by("seq")).to_pylist()
        assert [(r["surface"], r["subject"], r["outcome"]) for r in rows] == [
            ("cli", "lead/a", "ok"),
            ("cli", "lead/nobody", "not_found"),
        ]
    finally:
        w.close()
