"""Limits on request sizes and rates (issue 21, part 7; docs/security.md, Limits), on a real server.

The server here runs with small limits so that the tests can reach them: a body limit of 2,000 bytes,
30 requests a minute per API key, 10 a minute per address without a valid key, and two failed sign-ins
per user name. Each test starts from full buckets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from tests.api.live import LiveApp, live_app

from touchpoint import users
from touchpoint.api.limits import Rates

PER_KEY, PER_ADDRESS = 30, 10


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(
        tmp_path_factory.mktemp("limits") / "data",
        max_request_bytes=2000,
        rate_limit_per_key=PER_KEY,
        rate_limit_per_address=PER_ADDRESS,
        signin_failures_per_user=2,
    ) as served:
        users.create_user(served.warehouse, "ada", "correct horse battery", "admin")
        yield served


@pytest.fixture
def fresh(live: LiveApp) -> LiveApp:
    live.app.state.touchpoint.rates = Rates(PER_KEY, PER_ADDRESS)
    return live


def _is_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["success"] is False and body["error"]["code"] == code  # type: ignore[index]
    return body


def test_a_body_over_the_limit_is_refused_on_any_route(fresh: LiveApp) -> None:
    admin = fresh.auth("admin")
    big = {"identifier": "u-1", "purpose": "analytics", "granted": True, "proof": "x" * 900, "type": "y" * 1200}
    answer = fresh.http.post("/v1/consent", headers=admin, json=big)
    body = _is_error(answer, 413, "payload_too_large")
    assert "2,000 bytes" in str(body["error"]) and "max_request_bytes" in str(body["error"])

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"identifier": "u-1", "proof": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}'

    chunked = fresh.http.post(
        "/v1/privacy/erase", headers={**admin, "Content-Type": "application/json"}, content=chunks()
    )
    _is_error(chunked, 413, "payload_too_large")
    form = fresh.http.post("/signin", data={"username": "ada", "password": "p" * 3000})
    assert form.status_code == 413
    small = fresh.http.post("/v1/consent", headers=admin, json={**big, "proof": "ok", "type": None})
    assert small.status_code in (200, 404), small.text  # under the limit it is judged on its content


def test_the_collector_keeps_its_own_limits(fresh: LiveApp) -> None:
    batch = {
        "batch": [{"type": "track", "userId": f"u-{i}", "event": "Seen", "messageId": f"lim-{i}"} for i in range(60)]
    }
    assert len(json.dumps(batch)) > 2000
    answer = fresh.http.post("/v1/batch", headers=fresh.auth("write"), json=batch)
    assert answer.status_code == 200 and answer.json()["accepted"] == 60


def test_an_api_key_is_held_to_its_rate_and_told_when_to_come_back(fresh: LiveApp) -> None:
    read = fresh.auth("read")
    statuses = [fresh.http.get("/v1/consent/purposes", headers=read).status_code for _ in range(PER_KEY)]
    assert statuses == [200] * PER_KEY
    over = fresh.http.get("/v1/consent/purposes", headers=read)
    body = _is_error(over, 429, "rate_limited")
    assert 1 <= int(over.headers["retry-after"]) <= 3  # 30 a minute: one more in 2 s
    assert "30 a minute" in str(body["error"])
    assert fresh.http.get("/v1/consent/purposes", headers=fresh.auth("admin")).status_code == 200  # its own bucket


def test_a_refused_call_writes_no_audit_entry(fresh: LiveApp) -> None:
    read = fresh.auth("read")
    for _ in range(PER_KEY):
        fresh.http.get("/v1/profiles/nobody", headers=read)
    # on a busy machine those calls take seconds and the bucket refills one call every 2 s: spend the rest
    limiter = fresh.app.state.touchpoint.rates.per_key
    (who,) = list(limiter._buckets)
    while limiter.take(who) == 0.0:
        pass
    before = fresh.warehouse.count("audit_log")
    assert fresh.http.get("/v1/profiles/nobody", headers=read).status_code == 429
    assert fresh.warehouse.count("audit_log") == before


def test_calls_without_a_valid_key_are_held_per_address(fresh: LiveApp) -> None:
    statuses = [
        fresh.http.get("/v1/profiles/x", headers={"Authorization": "Bearer tpk_r_guess"}).status_code
        for _ in range(PER_ADDRESS)
    ]
    assert statuses == [401] * PER_ADDRESS
    over = fresh.http.post("/v1/track", headers={"Authorization": "Bearer tpw_guess"}, json={"userId": "u"})
    _is_error(over, 429, "rate_limited")
    assert int(over.headers["retry-after"]) >= 1
    assert fresh.http.get("/v1/consent/purposes", headers=fresh.auth("read")).status_code == 200  # keys unaffected


def _sign_in(live: LiveApp, password: str) -> int:
    page = live.http.get("/signin")
    token = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert token is not None
    form = {"csrf": token.group(1), "username": "ada", "password": password, "next": "/"}
    return live.http.post("/signin", data=form, follow_redirects=False).status_code


def test_sign_in_is_strict_per_user_and_per_address(fresh: LiveApp) -> None:
    assert [_sign_in(fresh, "wrong password") for _ in range(2)] == [401, 401]
    third = _sign_in(fresh, "correct horse battery")  # two failures for 'ada': even the right one waits
    assert third == 429
    fresh.app.state.touchpoint_web.auth.limit._failures.clear()
    assert _sign_in(fresh, "correct horse battery") == 303
    fresh.http.cookies.clear()
    statuses = [_sign_in(fresh, "wrong password") for _ in range(PER_ADDRESS)]
    assert 429 in statuses  # every try from an address counts, failed or not
