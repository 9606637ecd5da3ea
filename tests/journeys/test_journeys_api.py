"""The HTTP endpoints, on a real app with a read key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from touchpoint.api.app import create_app
from touchpoint.api.routes import journeys as journeys_routes
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.keys import create_api_key
from touchpoint.warehouse import open_warehouse


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, m) -> Iterator[tuple[TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    root: Path = tmp_path_factory.mktemp("api")
    settings = Settings(data_dir=root)
    wh = open_warehouse(settings)
    msgs = []
    for i in range(6):
        t = m.T0 + timedelta(hours=i)
        q = "utm_source=google&utm_medium=cpc" if i % 2 else "utm_source=news&utm_medium=email"
        msgs.append(m.page(f"v{i}", t, "/product/1", query=q))
        if i < 4:
            msgs.append(m.track(f"v{i}", "Order Completed", t + m.minutes(2), order_id=f"o{i}", revenue=10))
    write_messages(wh, msgs, source="test")
    key = create_api_key(wh, "reader", "read")
    wh.close()
    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/v1/attribution" for r in app.routes):
        app.include_router(journeys_routes.router)  # until api/app.py registers it
    with TestClient(app) as c:
        yield c, {"Authorization": f"Bearer {key}"}


def test_endpoints_need_a_key(client) -> None:  # type: ignore[no-untyped-def]
    c, _ = client
    r = c.get("/v1/attribution")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_funnel_paths_retention(client) -> None:  # type: ignore[no-untyped-def]
    c, auth = client
    r = c.get("/v1/journeys/funnel", params={"steps": ["page", "Order Completed"]}, headers=auth)
    assert r.status_code == 200, r.text
    assert [s["people"] for s in r.json()["steps"]] == [6, 4]
    r = c.get("/v1/journeys/paths", params={"anchor": "Order Completed", "direction": "to"}, headers=auth)
    assert r.json()["paths"][0]["path"] == "(start) > page:/product/1 > Order Completed"
    r = c.get("/v1/journeys/retention", params={"period": "month", "periods": 1}, headers=auth)
    assert r.json()["cohorts"][0]["size"] == 6


def test_attribution(client) -> None:  # type: ignore[no-untyped-def]
    c, auth = client
    r = c.get("/v1/attribution", params={"model": ["markov", "last"], "order": 2}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["models"] == ["markov", "last"]
    assert body["total_conversions"] == 4
    assert "correlational" in body["caveat"]
    assert body["romi"]["rows"]


def test_attribution_of_posted_paths(client) -> None:  # type: ignore[no-untyped-def]
    c, auth = client
    rows = [{"path": "a > b", "conversions": 1}, {"path": "b", "nulls": 1}]
    r = c.post("/v1/attribution/paths", json={"rows": rows, "model": ["markov"]}, headers=auth)
    assert r.status_code == 200, r.text
    got = {row["channel"]: row["markov"] for row in r.json()["channels"]}
    assert got["a"] == pytest.approx(1 / 3) and got["b"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("get", "/v1/journeys/funnel", {"params": {"steps": ["page"]}}, 400, "invalid_input"),
        (
            "get",
            "/v1/journeys/funnel",
            {"params": {"steps": ["a", "b"], "breakdown": "zzz"}},
            400,
            "invalid_input",
        ),
        ("get", "/v1/attribution", {"params": {"model": "guess"}}, 422, "invalid_input"),
        ("get", "/v1/attribution", {"params": {"order": 9}}, 422, "invalid_input"),
        (
            "post",
            "/v1/attribution/paths",
            {"json": {"rows": [{"path": ">", "conversions": 1}]}},
            400,
            "invalid_input",
        ),
        (
            "post",
            "/v1/attribution/paths",
            {"json": {"rows": [{"path": "a", "nulls": 1}]}},
            400,
            "invalid_input",
        ),
    ],
)
def test_errors_have_the_one_shape(client, method, url, kwargs, status, code) -> None:  # type: ignore[no-untyped-def]
    c, auth = client
    r = getattr(c, method)(url, headers=auth, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and r.json()["success"] is False
