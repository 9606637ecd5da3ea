"""Profiles as people use them: computed traits, timeline, search, the CLI and the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from touchpoint import identity, keys, profiles
from touchpoint.api.app import create_app
from touchpoint.api.routes import profiles as routes
from touchpoint.cli import profiles as cli
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.profiles.lookup import get_profile, search
from touchpoint.profiles.timeline import timeline
from touchpoint.warehouse import Warehouse, open_warehouse


def at(day: int, minute: int = 0) -> str:
    return f"2026-02-{day:02d}T10:{minute:02d}:00Z"


def shop_events() -> list[dict[str, Any]]:
    return [
        # Ann reads anonymously (from a newsletter), signs up, buys twice; the 2nd order has only her email
        {
            "type": "page",
            "anonymousId": "ann-web",
            "timestamp": at(1),
            "context": {"campaign": {"source": "newsletter", "medium": "email", "name": "feb"}},
        },
        {"type": "page", "anonymousId": "ann-web", "timestamp": at(1, 5)},
        {
            "type": "identify",
            "anonymousId": "ann-web",
            "userId": "ann",
            "timestamp": at(1, 6),
            "traits": {"email": "Ann@Shop.org", "plan": "free", "city": "Leeds"},
        },
        {
            "type": "track",
            "userId": "ann",
            "event": "Order Completed",
            "timestamp": at(2),
            "properties": {"order_id": "A-1", "revenue": 20.0},
        },
        {"type": "identify", "userId": "ann", "timestamp": at(3), "traits": {"plan": "pro"}},
        {
            "type": "track",
            "anonymousId": "till-4",
            "event": "Order Completed",
            "timestamp": at(5),
            "properties": {"order_id": "A-2", "revenue": 100.0, "email": "ann@shop.org"},
        },
        # Bob: one small order; Cy: one big order
        {"type": "identify", "userId": "bob", "timestamp": at(2), "traits": {"plan": "pro"}},
        {
            "type": "track",
            "userId": "bob",
            "event": "Order Completed",
            "timestamp": at(2, 1),
            "properties": {"order_id": "B-1", "revenue": 5.0},
        },
        {
            "type": "track",
            "userId": "cy",
            "event": "Order Completed",
            "timestamp": at(9),
            "properties": {"order_id": "C-1", "revenue": 500.0},
        },
        {
            "type": "track",
            "userId": "cy",
            "event": "Order Completed",
            "timestamp": at(9, 1),
            "properties": {"order_id": "C-1", "revenue": 500.0},
        },  # the same order sent twice counts once
    ]


@pytest.fixture
def shop() -> Warehouse:
    wh = Warehouse.open("duckdb://:memory:")
    write_messages(wh, shop_events())
    identity.rebuild(wh)
    profiles.build(wh, as_of="2026-02-11T10:00:00")
    return wh


def test_computed_traits_and_last_write_wins(shop: Warehouse) -> None:
    ann = get_profile(shop, "ann@shop.org")
    c = ann["computed"]
    assert (c["orders"], c["revenue"], c["average_order_value"]) == (2, 120.0, 60.0)
    assert c["days_since_last_order"] == 6
    assert c["first_seen"].isoformat() == "2026-02-01T10:00:00"
    assert c["sessions"] == 4  # 1 Feb (3 events within 30 minutes), 2, 3 and 5 Feb
    assert "email" in c["channels"].split(",")
    assert ann["traits"]["plan"] == "pro"  # the later identify wins
    assert ann["traits"]["city"] == "Leeds"
    assert ann["trait_sources"]["plan"]["timestamp"].isoformat() == "2026-02-03T10:00:00"
    assert ann["trait_sources"]["plan"]["source"] == "python:traits"
    # RFM quintiles among the three buyers: cy bought most recently and spent most
    cy = get_profile(shop, "cy")["computed"]
    bob = get_profile(shop, "bob")["computed"]
    assert cy["recency_score"] == 5 and cy["monetary_score"] == 5 and cy["orders"] == 1
    assert bob["monetary_score"] < c["monetary_score"] < cy["monetary_score"]
    assert c["frequency_score"] == 5


def test_timeline_spans_every_identifier_and_pages(shop: Warehouse) -> None:
    page = timeline(shop, "ann", limit=4)
    assert page["total"] == 6
    assert [e["timestamp"].day for e in page["events"]] == [5, 3, 2, 1]
    rest = timeline(shop, "till-4", limit=4, offset=4)
    assert [e["type"] for e in rest["events"]] == ["page", "page"]
    assert rest["events"][0]["context"] is None or isinstance(rest["events"][0]["context"], dict)
    orders = timeline(shop, "ann-web", event_type="track")
    assert orders["total"] == 2
    with pytest.raises(InvalidInput):
        timeline(shop, "ann", limit=0)


def test_search_by_trait_and_computed_trait(shop: Warehouse) -> None:
    pros = search(shop, {"plan": "pro"})
    assert pros["total"] == 2
    assert {p["user_id"] for p in pros["profiles"]} == {"ann", "bob"}
    assert [p["user_id"] for p in search(shop, {"plan": "pro", "orders": "2"})["profiles"]] == ["ann"]
    with pytest.raises(InvalidInput, match="orders"):
        search(shop, {"orders": "many"})
    with pytest.raises(InvalidInput):
        search(shop, {})


def _data_dir(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    wh = open_warehouse(settings)
    try:
        write_messages(wh, shop_events())
    finally:
        wh.close()
    return settings


def test_cli_rebuild_show_events_search_split_merge(tmp_path: Path) -> None:
    _data_dir(tmp_path)
    run = CliRunner().invoke
    data = ["--data", str(tmp_path), "--json"]
    r = run(cli.app, ["rebuild", *data])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["identity"]["profiles"] == 3
    shown = json.loads(run(cli.app, ["show", "ann@shop.org", *data]).output)
    pid = shown["profile_id"]
    assert {i["value"] for i in shown["identifiers"]} == {"ann", "ann-web", "ann@shop.org", "till-4"}
    events = json.loads(run(cli.app, ["events", "ann", "--limit", "2", *data]).output)
    assert events["total"] == 6 and len(events["events"]) == 2
    found = json.loads(run(cli.app, ["search", "plan=pro", *data]).output)
    assert found["total"] == 2
    split = json.loads(run(cli.app, ["split", pid, "--identifier", "till-4", "--note", "shop till", *data]).output)
    assert split["split_profile_id"] != split["profile_id"]
    log = json.loads(run(cli.app, ["log", *data]).output)
    assert log[0]["kind"] == "manual_split" and log[0]["note"] == "shop till"
    merged = json.loads(run(cli.app, ["merge", "ann", "till-4", *data]).output)
    assert merged["profile_id"] == pid
    assert json.loads(run(cli.app, ["stats", *data]).output)["profiles"] == 3
    human = run(cli.app, ["show", "ann", "--data", str(tmp_path)])
    assert human.exit_code == 0 and pid in human.output
    missing = run(cli.app, ["show", "nobody", *data])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotFound)


def test_http_api_needs_a_read_key_and_resolves_any_identifier(tmp_path: Path) -> None:
    settings = _data_dir(tmp_path)
    wh = open_warehouse(settings)
    try:
        identity.rebuild(wh)
        profiles.build(wh)
        read = keys.create_api_key(wh, "reader", "read")
        admin = keys.create_api_key(wh, "boss", "admin")
        write = keys.create_source(wh, "web")
    finally:
        wh.close()
    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/v1/profiles" for r in app.routes):
        app.include_router(routes.router)  # until api/app.py registers it
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {read}"}
        assert client.get("/v1/profiles/ann").status_code == 401
        denied = client.get("/v1/profiles/ann", headers={"Authorization": f"Bearer {write}"})
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
        ids = {
            client.get(f"/v1/profiles/{key}", headers=auth).json()["profile_id"]
            for key in ("ann", "ann-web", "ANN@shop.org", "till-4")
        }
        assert len(ids) == 1
        pid = ids.pop()
        page = client.get(f"/v1/profiles/{pid}/events", params={"limit": 2, "offset": 2}, headers=auth).json()
        assert page["total"] == 6 and len(page["events"]) == 2
        found = client.get("/v1/profiles", params={"plan": "pro", "limit": 10}, headers=auth).json()
        assert found["total"] == 2
        missing = client.get("/v1/profiles/nobody", headers=auth)
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]["message"]
        bad = client.get("/v1/profiles", params={"orders": "x"}, headers=auth)
        assert bad.status_code == 400
        assert client.post("/v1/profiles/update", headers=auth).status_code == 403
        up = client.post("/v1/profiles/update", headers={"Authorization": f"Bearer {admin}"})
        assert up.status_code == 200 and up.json()["identity"]["mode"] == "noop"
