"""Keys can be rotated with a grace period and revoked; the API notices within seconds; uses are recorded."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import Server, events_in, run_cli

from touchpoint import keys
from touchpoint.api import deps
from touchpoint.api.app import create_app
from touchpoint.collect.normalize import utcnow
from touchpoint.config import Settings
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.warehouse import Warehouse

run = run_cli


def later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """Move the keys module's clock forward by ``delta``."""
    moved = utcnow() + delta
    monkeypatch.setattr(keys, "utcnow", lambda: moved)


def test_rotation_keeps_the_old_key_for_the_grace_period_only(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = keys.create_source(warehouse, "web")
    new, info = keys.rotate(warehouse, "sources", "web", grace=timedelta(hours=24))
    assert info.status == "rotating" and new != old and info.key_prefix == new[:8]
    assert keys.source_for_write_key(warehouse, old) == "web"
    assert keys.source_for_write_key(warehouse, new) == "web"
    later(monkeypatch, timedelta(hours=23, minutes=59))
    assert keys.source_for_write_key(warehouse, old) == "web"
    later(monkeypatch, timedelta(hours=24, seconds=1))
    assert keys.source_for_write_key(warehouse, old) is None
    assert keys.source_for_write_key(warehouse, new) == "web"
    assert keys.list_sources(warehouse)[0].status == "active"


def test_a_second_rotation_stops_the_first_old_key_and_grace_zero_stops_at_once(warehouse: Warehouse) -> None:
    first = keys.create_api_key(warehouse, "bi", "admin")
    second, _ = keys.rotate(warehouse, "api_keys", "bi", grace=timedelta(hours=1))
    third, info = keys.rotate(warehouse, "api_keys", "bi", grace=timedelta(0))
    assert third.startswith("tpk_a_") and info.scope == "admin" and info.status == "active"
    assert [keys.api_key_scope(warehouse, k) for k in (first, second, third)] == [None, None, "admin"]


def test_revoke_stops_every_key_and_rotate_brings_the_name_back(warehouse: Warehouse) -> None:
    old = keys.create_source(warehouse, "web")
    mid, _ = keys.rotate(warehouse, "sources", "web", grace=timedelta(days=1))
    info = keys.revoke(warehouse, "sources", "web")
    assert info.status == "revoked" and info.revoked_at is not None
    assert keys.source_for_write_key(warehouse, old) is None and keys.source_for_write_key(warehouse, mid) is None
    assert keys.revoke(warehouse, "sources", "web").revoked_at == info.revoked_at  # twice is harmless
    fresh, back = keys.rotate(warehouse, "sources", "web", grace=timedelta(days=1))
    assert back.status == "active"  # no grace for keys that were revoked
    assert [keys.source_for_write_key(warehouse, k) for k in (old, mid, fresh)] == [None, None, "web"]
    with pytest.raises(NotFound, match="no source named 'nope'"):
        keys.revoke(warehouse, "sources", "nope")
    with pytest.raises(NotFound, match="no API key named 'web'"):
        keys.rotate(warehouse, "api_keys", "web", grace=timedelta(0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", timedelta(hours=24)), ("30m", timedelta(minutes=30)), ("7d", timedelta(days=7)), ("0", timedelta(0))],
)
def test_grace_periods(text: str, expected: timedelta) -> None:
    assert keys.parse_grace(text) == expected


@pytest.mark.parametrize("text", ["24", "soon", "-1h", "91d", "1y"])
def test_bad_grace_periods_say_what_to_write(text: str) -> None:
    with pytest.raises(InvalidInput, match="grace period"):
        keys.parse_grace(text)


def test_cli_rotate_revoke_and_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    _, out, _ = run(capsys, "sources", "create", "web", "--data", data, "--json")
    old = json.loads(out)["write_key"]
    code, out, _ = run(capsys, "sources", "rotate", "web", "--grace", "2h", "--data", data, "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["status"] == "rotating" and rotated["write_key"] != old
    expires = datetime.fromisoformat(rotated["previous_key_expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - utcnow() <= timedelta(hours=2)
    code, out, _ = run(capsys, "sources", "rotate", "web", "--data", data)
    assert code == 0 and "keeps working until" in out
    code, out, _ = run(capsys, "sources", "list", "--data", data, "--json")
    listed = json.loads(out)
    assert listed[0]["status"] == "rotating" and listed[0]["last_used_at"] is None and "write_key" not in out
    code, out, _ = run(capsys, "sources", "revoke", "web", "--data", data, "--json")
    assert code == 0 and json.loads(out)["status"] == "revoked"
    code, out, _ = run(capsys, "sources", "list", "--data", data)
    assert "revoked" in out and "never" in out

    run(capsys, "keys", "create", "bi", "--scope", "read", "--data", data)
    code, out, _ = run(capsys, "keys", "rotate", "bi", "--grace", "0", "--data", data, "--json")
    assert code == 0 and json.loads(out)["key"].startswith("tpk_r_") and json.loads(out)["status"] == "active"
    code, out, _ = run(capsys, "keys", "revoke", "bi", "--data", data)
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "keys", "list", "--data", data, "--json")
    assert json.loads(out)[0]["status"] == "revoked"
    code, _, err = run(capsys, "keys", "rotate", "bi", "--grace", "tomorrow", "--data", data)
    assert code == 1 and "grace period 'tomorrow'" in err and "24h" in err
    code, _, err = run(capsys, "keys", "revoke", "ghost", "--data", data)
    assert code == 1 and "no API key named 'ghost'" in err


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(deps, "KEY_CACHE_SECONDS", 0.5)
    with TestClient(create_app(settings)) as c:
        yield c


def app_state(client: TestClient) -> deps.AppState:
    state: deps.AppState = client.app.state.touchpoint  # type: ignore[attr-defined]
    return state


def test_the_api_notices_a_revocation_within_seconds(client: TestClient) -> None:
    assert deps.KEY_CACHE_SECONDS == 0.5
    wh = app_state(client).warehouse
    write_key = keys.create_source(wh, "web")
    api_key = keys.create_api_key(wh, "bi", "read")
    event = {"userId": "u1", "event": "E"}
    assert client.post("/v1/track", json=event, headers=basic(write_key)).status_code == 200
    assert client.get("/v1/quarantine", headers={"X-API-Key": api_key}).status_code == 200
    keys.revoke(wh, "sources", "web")
    keys.revoke(wh, "api_keys", "bi")
    time.sleep(0.6)
    assert client.post("/v1/track", json=event, headers=basic(write_key)).status_code == 401
    assert client.get("/v1/quarantine", headers={"X-API-Key": api_key}).status_code == 401


def test_the_api_drops_an_old_key_when_its_grace_ends(client: TestClient) -> None:
    wh = app_state(client).warehouse
    old = keys.create_source(wh, "web")
    event = {"userId": "u1", "event": "E"}
    assert client.post("/v1/track", json=event, headers=basic(old)).status_code == 200
    new, _ = keys.rotate(wh, "sources", "web", grace=timedelta(seconds=1))
    time.sleep(0.6)  # the cache forgets the old key's answer...
    assert client.post("/v1/track", json=event, headers=basic(old)).status_code == 200
    time.sleep(0.6)  # ...and does not keep it past its expiry
    assert client.post("/v1/track", json=event, headers=basic(old)).status_code == 401
    assert client.post("/v1/track", json=event, headers=basic(new)).status_code == 200


def test_key_uses_are_recorded_coalesced_and_off_the_request_path(client: TestClient) -> None:
    state = app_state(client)
    assert state.usage is not None and state.usage._thread is not None
    state.usage._stop.set()  # its background flush off (every 5 s): this test flushes by hand, however slow
    state.usage._thread.join()
    wh = state.warehouse
    write_key = keys.create_source(wh, "web")
    api_key = keys.create_api_key(wh, "bi", "read")
    before = utcnow()
    for _ in range(20):
        assert client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic(write_key)).status_code == 200
    client.get("/v1/quarantine", headers={"Authorization": f"Bearer {api_key}"})
    assert keys.list_sources(wh)[0].last_used_at is None  # not written by the requests themselves
    assert state.usage.flush() == 2  # twenty uses, one write per key
    assert state.usage.flush() == 0
    used = keys.list_sources(wh)[0].last_used_at
    assert used is not None and before <= used <= utcnow()
    assert keys.list_api_keys(wh)[0].to_dict()["last_used_at"] is not None


def test_the_recorder_writes_in_the_background(warehouse: Warehouse) -> None:
    keys.create_source(warehouse, "web")
    recorder = keys.UsageRecorder(warehouse, every=60.0, flush_seconds=0.05).start()
    try:
        recorder.touch("sources", "web")
        deadline = time.monotonic() + 5
        while keys.list_sources(warehouse)[0].last_used_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keys.list_sources(warehouse)[0].last_used_at is not None
    finally:
        recorder.stop()


def test_a_real_server_records_last_use_by_the_time_it_stops(make_server: Callable[[], Server]) -> None:
    server = make_server()
    r = httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "E"}, auth=(server.write_key, ""))
    assert r.status_code == 200
    server.stop()
    with events_in(server.data_dir) as wh:
        (source,) = keys.list_sources(wh)
    assert source.last_used_at is not None and source.status == "active"


def test_keys_are_rotated_and_revoked_over_http_with_immediate_effect(client: TestClient) -> None:
    wh = app_state(client).warehouse
    admin = {"Authorization": f"Bearer {keys.create_api_key(wh, 'boss', 'admin')}"}
    reader = keys.create_api_key(wh, "bi", "read")
    write_key = keys.create_source(wh, "web")
    event = {"userId": "u1", "event": "E"}
    assert client.post("/v1/track", json=event, headers=basic(write_key)).status_code == 200  # cached now

    r = client.post("/v1/sources/web/rotate", params={"grace": "1h"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "rotating"
    new_key = r.json()["write_key"]
    assert client.post("/v1/track", json=event, headers=basic(write_key)).status_code == 200  # in its grace
    assert client.post("/v1/track", json=event, headers=basic(new_key)).status_code == 200

    assert client.post("/v1/sources/web/revoke", headers=admin).json()["status"] == "revoked"
    for key in (write_key, new_key):  # no waiting: the server dropped its cached answers
        assert client.post("/v1/track", json=event, headers=basic(key)).status_code == 401

    assert client.get("/v1/quarantine", headers={"X-API-Key": reader}).status_code == 200
    r = client.post("/v1/keys/bi/rotate", params={"grace": "0"}, headers=admin)
    assert r.status_code == 200 and r.json()["key"].startswith("tpk_r_") and r.json()["scope"] == "read"
    assert client.get("/v1/quarantine", headers={"X-API-Key": reader}).status_code == 401
    assert client.get("/v1/quarantine", headers={"X-API-Key": r.json()["key"]}).status_code == 200

    listed = client.get("/v1/sources", headers=admin).json()["sources"]
    assert [(s["name"], s["status"]) for s in listed] == [("web", "revoked")] and "write_key" not in str(listed)
    assert {k["name"] for k in client.get("/v1/keys", headers=admin).json()["keys"]} == {"boss", "bi"}
    assert client.post("/v1/keys/bi/revoke", headers={"X-API-Key": r.json()["key"]}).status_code == 403
    assert client.post("/v1/keys/ghost/revoke", headers=admin).status_code == 404
    assert client.post("/v1/sources/web/rotate", params={"grace": "forever"}, headers=admin).status_code == 400
    assert client.get("/v1/experiments", headers=admin).status_code == 200  # other /v1 routes are unaffected
