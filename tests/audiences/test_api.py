"""Audiences over HTTP on a real server on loopback: scopes, members now and in the past, exports,
hostile definitions, and reads in parallel with refreshes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

from .test_cli import MESSAGES


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    data = tmp_path_factory.mktemp("audiences-api") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    write_messages(wh, MESSAGES)
    profiles.rebuild(wh, as_of="2026-01-10T00:00:00")
    tokens = {scope: keys.create_api_key(wh, f"{scope}-key", scope) for scope in ("read", "admin")}
    wh.close()
    srv = Server(data, free_port(), write_key)
    srv.start()
    try:
        yield srv, tokens
    finally:
        srv.stop()


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_scopes_and_the_members_shape(server: tuple[Server, dict[str, str]]) -> None:
    srv, tokens = server
    body = {"name": "swedes", "definition": {"trait": "country", "eq": "SE"}}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.post("/v1/audiences", json=body).status_code == 401
        r = c.post("/v1/audiences", json=body, headers=_h(tokens["read"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = c.post("/v1/audiences", json=body, headers=_h(tokens["admin"]))
        assert r.status_code == 201, r.text
        assert r.json()["refresh"]["members"] == 2
        r = c.get("/v1/audiences/swedes/members", headers=_h(tokens["read"]))
        got = r.json()
        assert set(got) == {"audience", "count", "members"} and got["count"] == 2
        assert sorted(m["user_id"] for m in got["members"]) == ["u1", "u3"]
        past = c.get("/v1/audiences/swedes/members", params={"at": "2020-01-01T00:00:00Z"}, headers=_h(tokens["read"]))
        assert past.json()["count"] == 0
        r = c.post("/v1/audiences", json=body, headers=_h(tokens["admin"]))
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists"
        r = c.put(
            "/v1/audiences/swedes",
            json={"definition": {"trait": "country", "in": ["SE", "NO"]}},
            headers=_h(tokens["admin"]),
        )
        assert r.status_code == 200 and r.json()["audience"]["version"] == 2 and r.json()["refresh"]["members"] == 3
        shown = c.get("/v1/audiences/swedes", params={"explain": "true"}, headers=_h(tokens["read"])).json()
        assert [v["version"] for v in shown["versions"]] == [1, 2] and "SELECT" in shown["sql"]
        everyone = {"format": "csv", "purpose": "analytics"}  # opt-out, nobody denied it
        csv_text = c.get("/v1/audiences/swedes/export", params=everyone, headers=_h(tokens["read"])).text
        assert csv_text.splitlines()[0] == "profile_id,user_id,email,entered_at" and len(csv_text.splitlines()) == 4
        lines = c.get(
            "/v1/audiences/swedes/export",
            params={"format": "jsonl", "purpose": "marketing_email"},
            headers=_h(tokens["read"]),
        ).text.splitlines()
        assert [json.loads(x)["user_id"] for x in lines] == ["u1"]  # u2 never granted, u3 denied
        r = c.get("/v1/audiences/swedes/export", headers=_h(tokens["read"]))
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("purpose:")
        assert c.get("/v1/audiences/nope/export", params=everyone, headers=_h(tokens["read"])).status_code == 404
        hist = c.get("/v1/audiences/swedes/history", params={"days": 2}, headers=_h(tokens["read"])).json()
        assert hist["days"][-1]["size"] == 3
        assert c.delete("/v1/audiences/swedes", headers=_h(tokens["read"])).status_code == 403
        assert c.delete("/v1/audiences/swedes", headers=_h(tokens["admin"])).status_code == 200
        assert c.get("/v1/audiences/swedes", headers=_h(tokens["read"])).status_code == 404


HOSTILE: list[Any] = [
    {"all": []},
    {"not": None},
    {"trait": "country", "eq": {"$ne": 1}},
    {"trait": "x" * 10_000, "eq": 1},
    {"event": "Product Viewed", "within_days": 10**12},
    {"event": "Product Viewed", "where": {"category": {"regex": ".*"}}},
    {"trait": "country", "in": ["SE", 1]},
    {"trait": "country", "gt": float("inf")} if False else {"trait": "country", "gt": "not a date"},
    {"sequence": [{"event": "A"}], "within_days": 1},
    {"audience": "../../etc/passwd"},
    {"trait": "'; DROP TABLE profiles; --", "eq": "x"},
]


@pytest.mark.parametrize("depth", [40, 5000])
def test_deep_nesting_is_refused(server: tuple[Server, dict[str, str]], depth: int) -> None:
    srv, tokens = server
    text = '{"definition": ' + '{"not": ' * depth + '{"trait": "country", "eq": "SE"}' + "}" * depth + "}"
    headers = {**_h(tokens["read"]), "Content-Type": "application/json"}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.post("/v1/audiences/preview", content=text, headers=headers)
    assert r.status_code in (400, 422), r.text
    assert r.json()["success"] is False


@pytest.mark.parametrize("definition", HOSTILE)
def test_hostile_definitions_are_refused_with_a_path(server: tuple[Server, dict[str, str]], definition: Any) -> None:
    srv, tokens = server
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.post("/v1/audiences/preview", json={"definition": definition}, headers=_h(tokens["read"]))
    if definition.get("trait", "").startswith("'"):
        assert r.status_code == 200 and r.json()["count"] == 0  # a name is data, never SQL
        return
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] in ("invalid_definition", "invalid_input") and error["message"]


def test_parallel_reads_while_refreshing(server: tuple[Server, dict[str, str]]) -> None:
    srv, tokens = server
    body = {"name": "lens-viewers", "definition": {"event": "Product Viewed", "where": {"category": "lenses"}}}
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        assert c.post("/v1/audiences", json=body, headers=_h(tokens["admin"])).status_code == 201

    def read(i: int) -> int:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            if i % 4 == 0:
                return c.post("/v1/audiences/lens-viewers/refresh", headers=_h(tokens["admin"])).status_code
            r = c.get("/v1/audiences/lens-viewers/members", headers=_h(tokens["read"]))
            assert r.json()["count"] == 2, r.text
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(read, range(16))) == {200}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        changes = c.get(
            "/v1/audiences/changes",
            params={"since": "2000-01-01", "audience": "lens-viewers"},
            headers=_h(tokens["read"]),
        )
        assert [x["change"] for x in changes.json()["changes"]] == ["entered", "entered"]  # no duplicate entries
