"""No stack trace, SQL or file path reaches a client when the server fails (issue 21, part 7).

A real server whose warehouse is broken under it (tables dropped and renamed behind its back) and a route
that raises with a path and SQL in its message: every 5xx must be the one generic error shape with a
request id (the same in the ``X-Request-ID`` header and in the server log next to the traceback), and
no answer may carry engine text, SQL, a traceback or a file path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.api.live import LiveApp, live_app

from touchpoint.api import deps

LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|SELECT .* FROM|INSERT INTO|CREATE TABLE|[Dd]uck[Dd][Bb]|Error:|Exception|"
    r"/tmp/|/home/|/etc/|/usr/|/srv/|site-packages"
)


def _boom(app: Any) -> None:
    @app.get("/test/boom")
    def boom() -> None:
        raise RuntimeError('SELECT secret FROM users; File "/srv/touchpoint/app.py", line 3')


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(tmp_path_factory.mktemp("leaks") / "data", app_hook=_boom) as served:
        yield served


def _assert_clean(response: Any, data_dir: str) -> None:
    text = response.text
    assert not LEAKS.search(text), f"{response.request.url} leaked: {text[:400]}"
    assert data_dir not in text
    if response.status_code < 400:
        return
    body = response.json()
    assert body["success"] is False and set(body["error"]) == {"code", "message", "hint"}
    if response.status_code >= 500:
        assert body["request_id"] == response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])


def test_a_raising_route_answers_the_generic_shape_with_a_request_id(
    live: LiveApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        r = live.http.get("/test/boom")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    _assert_clean(r, str(live.settings.data_dir))
    rid = r.json()["request_id"]
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert logged and logged[0].exc_info is not None, "the log line with the request id carries the traceback"
    given = live.http.get("/test/boom", headers={"X-Request-ID": "proxy-abc.123"})
    assert given.json()["request_id"] == "proxy-abc.123"  # a proxy's id is kept, to join the logs
    hostile = live.http.get("/test/boom", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.json()["request_id"])


def test_a_broken_warehouse_leaks_nothing(live: LiveApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deps, "ERASE_WAIT_S", 2.0)  # the loader cannot load into the broken table: refuse sooner
    admin, read, write = live.auth("admin"), live.auth("read"), live.auth("write")
    ok = live.http.post("/v1/track", headers=write, json={"userId": "u-1", "event": "Before", "messageId": "m-1"})
    assert ok.status_code == 200
    con = live.warehouse.ibis.con
    for table in ("events", "profiles", "identity_nodes", "consent_history", "quarantine"):
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_moved")  # behind the server's back:
        con.execute(f"CREATE TABLE {table} (broken INTEGER)")  # every query of it now fails in the engine
    calls = [
        ("POST", "/v1/track", write, {"userId": "u-2", "event": "After", "messageId": "m-2"}),
        ("GET", "/v1/profiles/u-1", read, None),
        ("GET", "/v1/profiles?plan=pro", read, None),
        ("GET", "/v1/profiles/u-1/events", read, None),
        ("GET", "/v1/profiles/u-1/consent", read, None),
        ("GET", "/v1/privacy/export?identifier=u-1", admin, None),
        ("POST", "/v1/privacy/erase", admin, {"identifier": "u-1"}),
        ("POST", "/v1/consent", admin, {"identifier": "u-1", "purpose": "analytics", "granted": True}),
        ("GET", "/v1/quarantine", read, None),
        ("GET", "/v1/journeys/funnel?steps=A&steps=B", read, None),
        ("POST", "/v1/query", read, {"sql": "SELECT * FROM events"}),
    ]
    failed = 0
    for method, path, headers, body in calls:
        r = live.http.request(method, path, headers=headers, json=body)
        _assert_clean(r, str(live.settings.data_dir))
        failed += r.status_code >= 500
    assert failed >= 4, "the broken warehouse should have failed several of these calls"
    assert live.http.get("/healthz").status_code in (200, 503)  # still answering
