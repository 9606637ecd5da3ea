"""Every HTTP route that returns or changes personal data writes an audit entry: the test walks the running
server's OpenAPI spec, fails on a route nobody classified, and calls every audited route; many requests at
once leave one unbroken chain."""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.conftest import Server, free_port
from tests.web.conftest import csrf_of, sign_in

from touchpoint import keys, users
from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

EMAIL = "ann.audit@example.com"
PASSWORD = "admin password 1"
ME = f"cli:{getpass.getuser()}"
MESSAGES: list[dict[str, Any]] = [
    {
        "type": "identify",
        "userId": "u1",
        "traits": {"country": "SE", "email": EMAIL},
        "timestamp": "2026-01-01T10:00:00Z",
    },
    {"type": "identify", "userId": "u2", "traits": {"country": "NO"}, "timestamp": "2026-01-01T10:00:00Z"},
    {"type": "track", "userId": "u1", "event": "Product Viewed", "timestamp": "2026-01-05T10:00:00Z"},
]

#: Paths that hold personal data: an operation on one of them must be audited (unless listed in MAINTENANCE).
PERSONAL = [
    r"^/v1/profiles",
    r"^/v1/identit",
    r"^/v1/audiences/(preview|changes)$",
    r"^/v1/audiences/\{name\}/(members|export)$",
    r"/outbox$",
    r"^/v1/automations/\{name\}/replay$",
    r"^/v1/quarantine",
    r"^/v1/query$",
    r"^/v1/predictions(/\{customer_id\})?$",
    r"^/v1/scores/(entries|\{name\}/explain/.*|\{name\}/profiles/.*)$",
    r"^/v1/experiments/\{key\}/assign$",
    r"^/v1/(privacy|consent|suppression|email)",
    r"^/v1/(keys|sources|users)/.+",
]
#: Recomputations the job runner also makes (recorded in job_runs): they neither return nor hand out anyone's data.
MAINTENANCE = {"POST /v1/profiles/rebuild", "POST /v1/profiles/update"}
#: Every other operation, by name: a new route fails the test until it is audited or listed here.
NOT_PERSONAL = {
    *(f"POST /v1/{kind}" for kind in ("identify", "track", "page", "screen", "group", "alias", "batch")),
    "GET /v1/projects/{write_key}/settings",
    "GET /healthz",
    "GET /metrics",
    "GET /v1/sources",
    "GET /v1/keys",
    "GET /v1/experiments",
    "POST /v1/experiments",
    "POST /v1/holdouts",
    "GET /v1/experiments/{key}",
    "PUT /v1/experiments/{key}/weights",
    "POST /v1/experiments/{key}/analysis",
    "POST /v1/experiments/analysis",
    "GET /v1/experiments/plan/sample-size",
    "GET /v1/journeys/funnel",
    "GET /v1/journeys/paths",
    "GET /v1/journeys/retention",
    "GET /v1/attribution",
    "POST /v1/attribution/paths",
    "GET /v1/predictions/summary",
    "POST /v1/mmm/fit",
    "GET /v1/mmm/model",
    "POST /v1/mmm/plan",
    "POST /v1/mmm/case",
    "POST /v1/mmm/case.pdf",
    "GET /v1/mmm/charts/{name}.png",
    "POST /v1/mmm/calibrate",  # lifts of experiments (aggregates) as calibration of the model
    "GET /v1/mmm/calibrations",
    "POST /v1/mmm/calibrations/{calibration_id}/withdraw",
    "GET /v1/jobs",
    "GET /v1/jobs/{name}",
    "POST /v1/jobs/{name}/run",
    "GET /v1/kpis",
    "GET /v1/map",  # the data-flow map: tables, jobs and destinations, nobody's data
    "GET /v1/consent/purposes",  # the configured purposes and their defaults
    "GET /v1/plans",
    "POST /v1/plans",
    "GET /v1/plans/{plan_id}",
    "GET /v1/plans/{plan_id}/review",
    "GET /v1/plans/{plan_id}/export",
    "POST /v1/plans/{plan_id}/reviews",
    "GET /v1/audiences",
    "POST /v1/audiences",
    "POST /v1/audiences/refresh",
    "GET /v1/audiences/{name}",
    "PUT /v1/audiences/{name}",
    "DELETE /v1/audiences/{name}",
    "POST /v1/audiences/{name}/refresh",
    "GET /v1/audiences/{name}/history",
    "GET /v1/scores",
    "POST /v1/scores",
    "GET /v1/scores/{name}",
    "POST /v1/scores/{name}/run",
    "GET /v1/automations",
    "POST /v1/automations",
    "GET /v1/automations/{name}",
    "POST /v1/automations/{name}/pause",
    "POST /v1/automations/{name}/resume",
    "GET /v1/automations/{name}/lift",
    "GET /v1/automations/{name}/split",  # goal rates per arm
    "GET /v1/automations-programme/lift",  # the whole programme against the global control group
    "GET /v1/unsubscribe",  # a page with a button; it changes nothing
    "GET /v1/audit",  # the log itself: key and user names, no customer's data
    "GET /v1/audit/verify",
    "POST /v1/cli/run",  # the relay runs CLI commands, which audit themselves (surface cli)
}
#: Request bodies for the audited operations that take one.
BODIES: dict[str, Any] = {
    "POST /v1/quarantine/replay": [],
    "POST /v1/profiles/{profile}/split": {"identifier": "u2"},
    "POST /v1/profiles/merge": {"first": "u1", "second": "nobody"},  # refused: the data stays as it is
    "POST /v1/query": {"sql": "SELECT user_id FROM events"},
    "POST /v1/audiences/preview": {"definition": {"trait": "country", "eq": "SE"}},
    "POST /v1/scores/{name}/profiles/{profile_id}/demote": {"to": "lead", "reason": "test"},
    "POST /v1/automations/{name}/replay": {"outbox_ids": []},
    "POST /v1/experiments/{key}/assign": {"units": ["u1"]},
    "POST /v1/consent": {"identifier": "u1", "purposes": ["marketing_email"], "granted": True},
    "POST /v1/email/events": {"events": [{"type": "soft_bounce", "email": "u1@example.test"}]},
    "POST /v1/privacy/export": {"identifier": "u1"},
    "POST /v1/privacy/erase": {"identifier": "nobody-at-all"},  # refused (not_found): the data stays
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    data = tmp_path_factory.mktemp("audit-api") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    write_messages(wh, MESSAGES)
    profiles.rebuild(wh, as_of="2026-01-10T00:00:00")
    admin = keys.create_api_key(wh, "auditor", "admin")
    reader = keys.create_api_key(wh, "reader", "read")
    users.create_user(wh, "ada", PASSWORD, "admin")
    wh.close()
    srv = Server(data, free_port(), write_key)
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            basic = base64.b64encode(f"{write_key}:".encode()).decode()
            c.post("/v1/track", json={"userId": "u1"}, headers={"Authorization": f"Basic {basic}"})  # quarantined
            h = {"Authorization": f"Bearer {admin}"}
            r = c.post(
                "/v1/audiences", json={"name": "swedes", "definition": {"trait": "country", "eq": "SE"}}, headers=h
            )
            assert r.status_code == 201, r.text
        yield srv, admin, reader
    finally:
        srv.stop()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def _path_values(c: httpx.Client, h: dict[str, str]) -> dict[str, str]:
    profile_id = c.get("/v1/profiles/u1", headers=h).json()["profile_id"]
    record_id = c.get("/v1/quarantine", headers=h).json()["records"][0]["id"]
    return {
        "identifier": "u1",
        "customer_id": "u1",
        "profile": profile_id,
        "profile_id": profile_id,
        "record_id": record_id,
        "name": "swedes",
        "key": "no-such-experiment",
    }


def test_every_route_is_classified_and_every_personal_one_is_audited(served: tuple[Server, str, str]) -> None:
    srv, admin, _ = served
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        spec = c.get("/openapi.json").json()
        values = _path_values(c, h)
        unclassified, unaudited, silent = [], [], []
        audited_ops = 0
        for method, path, op in _operations(spec):
            name = f"{method} {path}"
            action = op.get("x-audit")
            if action is None:
                if any(re.search(p, path) for p in PERSONAL) and name not in MAINTENANCE | NOT_PERSONAL:
                    unaudited.append(name)
                elif name not in NOT_PERSONAL and name not in MAINTENANCE:
                    unclassified.append(name)
                continue
            audited_ops += 1
            before = _head(c, admin)
            url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            params = {
                p["name"]: _query_value(p["name"])
                for p in op.get("parameters", [])
                if p["in"] == "query" and p.get("required")
            }
            if "requestBody" in op:
                assert name in BODIES, f"{name} takes a body: add one to BODIES"
            r = c.request(method, url, params=params, json=BODIES.get(name), headers=h)
            assert r.status_code != 401, (name, r.text)
            new = c.get("/v1/audit", params={"limit": 5}, headers=h).json()["entries"]
            mine = [e for e in new if e["seq"] > before and e["action"] == action]
            if len(mine) != 1:
                silent.append(f"{name} ({r.status_code})")
                continue
            entry = mine[0]
            assert entry["actor"] in ("key:auditor", "link:unsubscribe") and entry["surface"] == "api"
            assert entry["outcome"] == ("ok" if r.status_code < 400 else r.json()["error"]["code"]), (name, entry)
        assert unclassified == [], "classify these routes: audited(...) if they return or change personal data"
        assert unaudited == [], "these routes touch personal data but write no audit entry: add **audited(...)"
        assert silent == [], "these routes are marked x-audit but wrote no single entry"
        assert audited_ops >= 20
        log = c.get("/v1/audit", params={"limit": 1000}, headers=h).json()["entries"]
        assert c.get("/v1/audit/verify", headers=h).json()["ok"] is True
    text = str(log)
    assert EMAIL not in text and "SELECT" not in text  # subjects are ids and pseudonyms, never the data
    reads = [e for e in log if e["action"] == "profiles.read" and e["outcome"] == "ok"]
    assert reads and all(e["subject"] == values["profile_id"] and e["rows"] == 1 for e in reads)
    (query,) = [e for e in log if e["action"] == "query.run"]
    assert query["rows"] == len(MESSAGES)  # the rows returned, not the statement
    members = next(e for e in log if e["action"] == "audiences.members")
    assert (members["subject"], members["rows"]) == ("swedes", 1)


def _query_value(name: str) -> str:
    return {"since": "2020-01-01T00:00:00Z", "token": "not-a-valid-token", "identifier": "u1"}[name]


def test_the_log_needs_an_admin_key_and_refused_calls_are_not_access(served: tuple[Server, str, str]) -> None:
    srv, admin, reader = served
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/v1/audit").status_code == 401
        assert c.get("/v1/audit", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
        h = {"Authorization": f"Bearer {admin}"}
        before = _head(c, admin)
        assert c.get("/v1/profiles/u1").status_code == 401  # no key: nobody to name, nothing disclosed
        assert c.get("/v1/profiles/u1", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
        new = c.get("/v1/audit", params={"limit": 5}, headers=h).json()["entries"]
        assert [(e["actor"], e["action"]) for e in new if e["seq"] > before] == [("key:reader", "profiles.read")]
        by_actor = c.get("/v1/audit", params={"actor": "key:reader"}, headers=h).json()["entries"]
        assert by_actor and {e["actor"] for e in by_actor} == {"key:reader"}


def test_many_concurrent_requests_leave_one_unbroken_chain(served: tuple[Server, str, str]) -> None:
    srv, admin, reader = served
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        before = _head(c, admin)

    def call(i: int) -> int:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            path = ("/v1/profiles/u1", "/v1/profiles/u2/events", "/v1/audiences/swedes/members")[i % 3]
            return c.get(path, headers={"Authorization": f"Bearer {reader}"}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(32)))
    assert codes == [200] * 32
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        result = c.get("/v1/audit/verify", headers=h).json()
        assert result["ok"] is True and result["broken"] is None
        assert result["head"]["seq"] == before + 32
        new = c.get("/v1/audit", params={"limit": 32, "actor": "key:reader"}, headers=h).json()["entries"]
    assert sorted(e["seq"] for e in new) == list(range(before + 1, before + 33))  # no gap, no duplicate


def _head(c: httpx.Client, admin: str) -> int:
    entries = c.get("/v1/audit", params={"limit": 1}, headers={"Authorization": f"Bearer {admin}"}).json()["entries"]
    return int(entries[0]["seq"]) if entries else 0


def _since(c: httpx.Client, admin: str, before: int) -> list[tuple[Any, ...]]:
    h = {"Authorization": f"Bearer {admin}"}
    new = [e for e in c.get("/v1/audit", params={"limit": 50}, headers=h).json()["entries"] if e["seq"] > before]
    return [(e["actor"], e["surface"], e["action"], e["subject"], e["rows"]) for e in reversed(new)]


def test_a_cli_command_relayed_to_the_server_is_recorded_once_as_the_cli_user(
    served: tuple[Server, str, str],
) -> None:
    srv, admin, _ = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    argv = [sys.executable, "-m", "touchpoint.cli.main", "profiles", "events", "u1", "--data", str(srv.data_dir)]
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        before = _head(c, admin)
        done = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        profile_id = json.loads(done.stdout)["profile_id"]
        assert _since(c, admin, before) == [(ME, "cli", "profiles.events", profile_id, 2)]


def test_dashboard_pages_of_personal_data_are_recorded_as_the_user(served: tuple[Server, str, str]) -> None:
    srv, admin, _ = served
    with httpx.Client(base_url=srv.url, timeout=60, follow_redirects=False) as c:
        before = _head(c, admin)
        assert sign_in(c, "ada", PASSWORD).status_code == 303
        found = c.get("/customers", params={"q": EMAIL})
        assert found.status_code == 303, found.text  # one match: straight to the customer's page
        assert c.get(found.headers["location"]).status_code == 200
        profile_id = found.headers["location"].rsplit("/", 1)[1]
        assert c.get("/data").status_code == 200
        form = {"csrf": csrf_of(c.get("/users").text), "name": "newbie", "password": "a long password 1"}
        assert c.post("/users", data=form).status_code == 303
        log = _since(c, admin, before)
        assert c.get("/v1/audit/verify", headers={"Authorization": f"Bearer {admin}"}).json()["ok"] is True
    assert log == [
        ("user:ada", "web", "profiles.search", None, 1),
        ("user:ada", "web", "profiles.read", profile_id, 1),
        ("user:ada", "web", "quarantine.list", None, 1),  # the one event the fixture's source got wrong
        ("user:ada", "web", "users.create", "newbie", None),
    ]
    assert EMAIL not in str(log)
