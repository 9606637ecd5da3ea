"""Least privilege per scope, checked on every route of the app (issue 21, part 7).

Every HTTP route is walked (the OpenAPI spec's and the hidden ones) and called on a real server:

* without a key, and with a source's write key (which may only send events): 401, except the few routes
  that are public by design (listed below with the credential they take instead);
* with a read key: 403 on every route that changes something or hands over a person's whole record
  (privacy export, erasure, consent changes, keys, the audit log), and not refused elsewhere.

A route is expected to need the admin scope when it is not a GET (unless it is listed as a computation
that changes nothing), when its audit action is a privacy request or a key change, or when it is listed
in ``ADMIN_READS``. A new route therefore needs no entry to be held to the strict rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.api.live import LiveApp, api_routes, live_app

from touchpoint.api.deps import AUDIT_EXTRA
from touchpoint.api.routes import collect

#: Routes that take no API key, and what authenticates them instead.
PUBLIC = {
    ("GET", "/healthz"): "liveness for load balancers; says nothing about anyone",
    ("GET", "/v1/projects/{write_key}/settings"): "analytics.js's settings; the write key is in the path",
    ("GET", "/v1/unsubscribe"): "shows a button; the signed token is the credential, and a GET changes nothing",
    ("POST", "/v1/unsubscribe"): "the signed token of the email's link is the credential",
    **{("POST", path): "the collector: a source's write key" for path in collect.PATHS},
}
#: POST routes that compute an answer and change nothing: a read key may call them.
READ_POSTS = {
    "/v1/query",  # one read-only statement in the sandbox (no credential tables; tests/cli/test_query_sandbox.py)
    "/v1/audiences/preview",
    "/v1/experiments/{key}/analysis",
    "/v1/experiments/analysis",
    "/v1/attribution/paths",
    "/v1/mmm/plan",
    "/v1/mmm/case",
    "/v1/mmm/case.pdf",
}
#: GET routes only an admin may call: who holds which key, who accessed what, the erasures.
ADMIN_READS = {"/v1/keys", "/v1/sources", "/v1/audit", "/v1/audit/verify", "/v1/privacy/erasures"}
#: Audit actions that hand over or change a person's record as a whole, or change a key.
ADMIN_ACTIONS = re.compile(r"^(privacy\.|consent\.set$|keys\.|sources\.|profiles\.(split|merge)$)")


def _routes(app: object) -> list[tuple[str, str, str | None]]:
    found = []
    for route in api_routes(app.routes):  # type: ignore[attr-defined]
        if not route.include_in_schema and not route.path.startswith("/v1/"):
            continue  # the dashboard's pages: signed-in sessions with roles (tests/web)
        action = (route.openapi_extra or {}).get(AUDIT_EXTRA)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, route.path, action))
    return found


def needs_admin(method: str, path: str, action: str | None) -> bool:
    if action is not None and ADMIN_ACTIONS.match(action):
        return True
    if method == "GET":
        return path in ADMIN_READS
    return path not in READ_POSTS


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(tmp_path_factory.mktemp("scopes") / "data") as served:
        yield served


def _call(live: LiveApp, method: str, path: str, who: str) -> int:
    url = re.sub(r"\{[^}]+\}", "x", path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return live.http.request(method, url, headers=live.auth(who), json=body).status_code


def test_the_walk_sees_every_kind_of_route(live: LiveApp) -> None:
    routes = _routes(live.app)
    assert len(routes) > 80
    assert ("POST", "/v1/privacy/erase", "privacy.erase") in routes
    assert ("POST", "/v1/consent", "consent.set") in routes
    assert ("GET", "/v1/profiles/{identifier}", "profiles.read") in routes
    assert ("POST", "/v1/t", None) in routes  # a hidden short path of analytics.js
    assert set(PUBLIC) <= {(m, p) for m, p, _ in routes}, "a public route listed here no longer exists"


def test_no_key_and_a_write_key_open_nothing_but_the_public_routes(live: LiveApp) -> None:
    wrong = []
    for method, path, _ in _routes(live.app):
        if (method, path) in PUBLIC:
            continue
        for who in ("none", "write"):
            status = _call(live, method, path, who)
            if status != 401:
                wrong.append(f"{method} {path} with {who} key: {status}")
    assert not wrong, "\n".join(wrong)


def test_personal_data_routes_all_need_a_key(live: LiveApp) -> None:
    audited = [(m, p) for m, p, a in _routes(live.app) if a is not None]
    assert len(audited) >= 25
    public = [r for r in audited if r in PUBLIC]
    assert public == [("POST", "/v1/unsubscribe")], "only the signed unsubscribe link acts without a key"


def test_a_read_key_cannot_export_erase_change_consent_or_keys(live: LiveApp) -> None:
    wrong = []
    admin_routes = []
    for method, path, action in _routes(live.app):
        if (method, path) in PUBLIC:
            continue
        status = _call(live, method, path, "read")
        if needs_admin(method, path, action):
            admin_routes.append(f"{method} {path}")
            if status != 403:
                wrong.append(f"{method} {path} ({action}) with a read key: {status}, expected 403")
        elif status in (401, 403):
            wrong.append(f"{method} {path} with a read key: {status}, but reading is what the key is for")
    assert not wrong, "\n".join(wrong)
    for must in (
        "GET /v1/privacy/export",
        "POST /v1/privacy/export",
        "POST /v1/privacy/erase",
        "GET /v1/privacy/erasures",
        "POST /v1/consent",
        "POST /v1/profiles/merge",
        "GET /v1/audit",
        "POST /v1/keys/{name}/rotate",
    ):
        assert must in admin_routes


def test_the_query_sandbox_hides_credentials_from_all_and_the_audit_log_from_read_keys(live: LiveApp) -> None:
    def run(who: str, sql: str) -> Any:
        return live.http.post("/v1/query", headers=live.auth(who), json={"sql": sql})

    assert run("admin", "SELECT count(*) AS n FROM audit_log").status_code == 200
    refused = run("read", "SELECT count(*) AS n FROM audit_log")
    assert refused.status_code == 400 and "only an admin key reads it" in refused.json()["error"]["message"]
    assert run("read", "SELECT count(*) AS n FROM privacy_erasures").status_code == 400
    for table in ("api_keys", "sources", "users", "web_sessions"):
        answer = run("admin", f"SELECT * FROM {table}")
        assert answer.status_code == 400 and "holds credentials" in answer.json()["error"]["message"], table
    assert run("read", "SELECT count(*) AS n FROM events").status_code == 200
