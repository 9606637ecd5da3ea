"""The Segment-compatible HTTP API, in process: paths, auth, encodings, limits, dedup, errors."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator

import msgspec
import pytest
from fastapi.testclient import TestClient

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.warehouse import Warehouse, open_warehouse


@pytest.fixture
def write_key(settings: Settings) -> str:
    wh = open_warehouse(settings)
    try:
        return keys.create_source(wh, "web")
    finally:
        wh.close()


@pytest.fixture
def client(settings: Settings, write_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def stored(client: TestClient) -> Warehouse:
    """The warehouse, once every acknowledged event is in it (with the collector log a 200 precedes the load)."""
    assert client.app.state.touchpoint.committer.flush(10)  # type: ignore[attr-defined]
    wh: Warehouse = client.app.state.touchpoint.warehouse  # type: ignore[attr-defined]
    return wh


def rows(client: TestClient, sql: str) -> list[dict]:
    return stored(client).query(sql).to_pylist()


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.mark.parametrize(
    "path", ["identify", "track", "page", "screen", "group", "alias", "i", "t", "p", "s", "g", "a"]
)
def test_every_event_path_stores_its_type(client: TestClient, write_key: str, path: str) -> None:
    event = {"userId": "u1", "event": "E", "groupId": "g1", "previousId": "old", "messageId": f"m-{path}"}
    r = client.post(f"/v1/{path}", json=event, headers=basic(write_key))
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 1, "quarantined": 0}
    kind = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}.get(path, path)
    assert rows(client, f"SELECT type, source FROM events WHERE message_id = 'm-{path}'") == [
        {"type": kind, "source": "web"}
    ]


def test_batch_merges_context_and_keeps_good_items_when_some_are_bad(client: TestClient, write_key: str) -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A", "messageId": "b1", "context": {"ip": "1.2.3.4"}},
            {"type": "track", "userId": "u1", "messageId": "b2"},
            {"type": "identify", "anonymousId": "a1", "messageId": "b3", "traits": {"email": "X@Y.io"}},
        ],
        "context": {"library": {"name": "test"}, "ip": "9.9.9.9"},
        "sentAt": "2026-01-01T00:00:00Z",
    }
    r = client.post("/v1/batch", json=body, headers=basic(write_key))
    assert r.status_code == 200
    payload = r.json()
    assert (payload["accepted"], payload["quarantined"]) == (2, 1)
    assert payload["errors"] == [{"index": 1, "field": "event", "reason": payload["errors"][0]["reason"]}]
    ctx = rows(client, "SELECT context FROM events WHERE message_id = 'b1'")[0]["context"]
    assert msgspec.json.decode(ctx) == {"library": {"name": "test"}, "ip": "1.2.3.4"}  # item wins over batch
    assert rows(client, "SELECT email FROM events WHERE message_id = 'b3'") == [{"email": "x@y.io"}]
    q = rows(client, "SELECT reason, field, origin, payload FROM quarantine")
    assert len(q) == 1 and q[0]["field"] == "event" and q[0]["origin"] == "http:batch"
    assert msgspec.json.decode(q[0]["payload"])["context"]["library"] == {"name": "test"}  # replayable as sent


def test_auth_by_basic_bearer_and_body_write_key(client: TestClient, write_key: str) -> None:
    event = {"userId": "u", "event": "E"}
    assert client.post("/v1/track", json=event, headers=basic(write_key)).status_code == 200
    assert client.post("/v1/track", json=event, headers={"Authorization": f"Bearer {write_key}"}).status_code == 200
    assert client.post("/v1/track", json={**event, "writeKey": write_key}).status_code == 200
    assert (
        client.post("/v1/batch", json={"batch": [{**event, "type": "track"}], "writeKey": write_key}).status_code == 200
    )
    assert rows(client, "SELECT count(*) AS n FROM events") == [{"n": 4}]


def test_a_body_nested_too_deeply_is_judged_by_its_write_key_not_refused_as_unsigned(
    client: TestClient, write_key: str
) -> None:
    """The decoder gives up 1,000 levels down; the key beside the deep value is still read (the top level is
    walked without recursion), so the body is quarantined for its source with the depth named, not a 401."""
    deep = "[" * 5000 + "]" * 5000
    single = f'{{"writeKey": "{write_key}", "userId": "u", "event": "E", "properties": {{"x": {deep}}}}}'
    r = client.post("/v1/track", content=single, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested deeper" in r.json()["error"]["message"], r.text
    item = f'{{"type": "track", "userId": "u", "event": "E", "properties": {deep}}}'
    batch = f'{{"writeKey": "{write_key}", "batch": [{item}]}}'
    r = client.post("/v1/batch", content=batch, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["quarantined"] == 1, r.text
    assert rows(client, "SELECT count(*) AS n FROM quarantine") == [{"n": 2}]
    unsigned = single.replace(f'"writeKey": "{write_key}", ', "")
    assert client.post("/v1/track", content=unsigned, headers={"Content-Type": "application/json"}).status_code == 401


def test_unknown_or_missing_key_is_401_with_the_error_shape(client: TestClient) -> None:
    for headers in ({}, basic("nope"), {"Authorization": "Basic !!!"}):
        r = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=headers)
        assert r.status_code == 401
        assert set(r.json()["error"]) == {"code", "message", "hint"} and r.json()["success"] is False


def test_text_plain_and_gzip_bodies(client: TestClient, write_key: str) -> None:
    raw = msgspec.json.encode({"userId": "u", "event": "E", "messageId": "plain"})
    r = client.post("/v1/t", content=raw, headers={**basic(write_key), "Content-Type": "text/plain"})
    assert r.status_code == 200
    zipped = gzip.compress(
        msgspec.json.encode({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "zipped"}]})
    )
    r = client.post(
        "/v1/batch",
        content=zipped,
        headers={**basic(write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert rows(client, "SELECT message_id FROM events ORDER BY 1") == [
        {"message_id": "plain"},
        {"message_id": "zipped"},
    ]
    bad = client.post("/v1/batch", content=b"not gzip", headers={**basic(write_key), "Content-Encoding": "gzip"})
    assert bad.status_code == 400 and "gzip" in bad.json()["error"]["message"]


def test_limits_name_the_limit(client: TestClient, write_key: str) -> None:
    big = {"userId": "u", "event": "E", "properties": {"x": "y" * 33_000}}
    r = client.post("/v1/track", json=big, headers=basic(write_key))
    assert r.status_code == 413 and "per event" in r.json()["error"]["message"]
    r = client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2501},
        headers=basic(write_key),
    )
    assert r.status_code == 400 and "2,500" in r.json()["error"]["message"]
    r = client.post("/v1/batch", json={"batch": [{**big, "type": "track"}] * 16}, headers=basic(write_key))
    assert r.status_code == 413 and "per request" in r.json()["error"]["message"]
    bomb = gzip.compress(b'{"batch": [' + b" " * 2_000_000 + b"]}")
    r = client.post("/v1/batch", content=bomb, headers={**basic(write_key), "Content-Encoding": "gzip"})
    assert r.status_code == 413
    r = client.post(
        "/v1/batch",
        json={"batch": [{**big, "type": "track"}, {"type": "track", "userId": "u", "event": "ok"}]},
        headers=basic(write_key),
    )
    assert r.status_code == 200 and r.json()["quarantined"] == 1  # an oversized item is kept aside, not lost


def test_duplicates_by_message_id_are_acknowledged_once_stored(client: TestClient, write_key: str) -> None:
    event = {"type": "track", "userId": "u", "event": "E", "messageId": "dup"}
    for _ in range(3):
        assert client.post("/v1/batch", json={"batch": [event, event]}, headers=basic(write_key)).status_code == 200
    assert rows(client, "SELECT count(*) AS n FROM events") == [{"n": 1}]


def test_invalid_single_event_is_400_and_quarantined(client: TestClient, write_key: str) -> None:
    r = client.post("/v1/track", json={"userId": "u"}, headers=basic(write_key))
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == "invalid_event" and body["field"] == "event" and body["quarantined"] == 1
    assert rows(client, "SELECT origin FROM quarantine") == [{"origin": "http:track"}]


def test_garbage_is_400(client: TestClient, write_key: str) -> None:
    for raw in (b"", b"\xff\xfe", b"[1,2]", b'{"batch": 5}', b"nul\x00l"):
        r = client.post("/v1/batch", content=raw, headers=basic(write_key))
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["error"]["message"]


def test_settings_endpoint_for_analytics_js(client: TestClient, write_key: str) -> None:
    r = client.get(f"/v1/projects/{write_key}/settings")
    assert r.status_code == 200
    segment = r.json()["integrations"]["Segment.io"]
    assert segment["apiKey"] == write_key and segment["apiHost"].endswith("/v1")
    assert client.get("/v1/projects/unknown/settings").status_code == 401


def test_cors_preflight_allows_browsers(client: TestClient) -> None:
    r = client.options("/v1/t", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] in ("*", "https://shop.example")


def test_read_endpoints_need_an_api_key_not_a_write_key(client: TestClient, write_key: str) -> None:
    assert client.get("/v1/quarantine").status_code == 401
    assert client.get("/v1/quarantine", headers={"Authorization": f"Bearer {write_key}"}).status_code == 401
    wh = stored(client)
    read = keys.create_api_key(wh, "reader", "read")
    admin = keys.create_api_key(wh, "boss", "admin")
    assert client.get("/v1/quarantine", headers={"Authorization": f"Bearer {read}"}).status_code == 200
    assert client.get("/v1/quarantine", headers={"X-API-Key": read}).status_code == 200
    assert client.post("/v1/quarantine/replay", headers={"Authorization": f"Bearer {read}"}).status_code == 403
    assert client.post("/v1/quarantine/replay", headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def test_quarantine_replay_over_http(client: TestClient, write_key: str) -> None:
    client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": "u", "event": "E", "timestamp": "soon"}]},
        headers=basic(write_key),
    )
    admin = keys.create_api_key(stored(client), "boss", "admin")
    h = {"Authorization": f"Bearer {admin}"}
    listed = client.get("/v1/quarantine", headers=h).json()
    assert listed["total"] == 1
    record = client.get(f"/v1/quarantine/{listed['records'][0]['id']}", headers=h).json()
    assert "ISO 8601" in record["reason"] and "soon" in record["payload"]
    assert client.get("/v1/quarantine/nope", headers=h).status_code == 404
    assert client.get("/v1/quarantine/a%00b", headers=h).status_code == 404  # NUL in an id: not found,
    for hostile in ("\x00", "a\x00b"):  # not a statement the engine cannot parse (a 500)
        assert client.post("/v1/quarantine/replay", json=[hostile], headers=h).status_code == 404
    r = client.post("/v1/quarantine/replay", headers=h).json()
    assert r["replayed"] == 0 and len(r["still_invalid"]) == 1


def test_every_error_has_the_one_shape(client: TestClient, write_key: str) -> None:
    """Walk each error path the API has and check the JSON shape and status (Datasette's habit)."""
    read = keys.create_api_key(stored(client), "reader", "read")
    cases = [
        (client.post("/v1/track", json={"userId": "u", "event": "E"}), 401),
        (client.post("/v1/track", json={"userId": "u"}, headers=basic(write_key)), 400),
        (client.post("/v1/batch", content=b"garbage", headers=basic(write_key)), 400),
        (client.post("/v1/track", content=b"x" * 40_000, headers=basic(write_key)), 413),
        (
            client.post("/v1/track", content=b"{}", headers={**basic(write_key), "Content-Encoding": "br"}),
            400,
        ),
        (client.get("/v1/quarantine"), 401),
        (
            client.get(
                "/v1/quarantine",
                headers={
                    "X-API-Key": read,
                },
                params={"limit": 0},
            ),
            422,
        ),
        (client.post("/v1/quarantine/replay", headers={"X-API-Key": read}), 403),
        (client.get("/v1/quarantine/none", headers={"X-API-Key": read}), 404),
        (client.get("/no/such/path"), 404),
        (client.delete("/v1/track"), 405),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["success"] is False
        assert set(body["error"]) == {"code", "message", "hint"}
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert "Traceback" not in response.text


def test_overload_answers_429_with_retry_after(settings: Settings, write_key: str) -> None:
    tight = settings.model_copy(update={"queue_max_events": 1, "commit_max_wait_ms": 200.0})
    with TestClient(create_app(tight)) as c:
        committer = c.app.state.touchpoint.committer  # type: ignore[attr-defined]
        committer._queued_events = 5  # as if a slow commit were still holding earlier events
        r = c.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic(write_key))
        committer._queued_events = 0
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"


def test_healthz_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/batch" in spec["paths"] and "/v1/track" in spec["paths"]
    schema = spec["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "userId" in schema["properties"]


def test_a_slow_write_key_lookup_does_not_hold_up_other_requests(
    client: TestClient, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key not cached is looked up in a thread: while one lookup waits on the warehouse, the event loop
    goes on answering (it stood still for the lookup before, about 10 ms a key, as long as the query took)."""
    import threading
    import time

    real = keys.match_key

    def slow(wh: Warehouse, kind: str, key: str) -> keys.KeyMatch | None:
        if key == "slow-key":
            time.sleep(1.5)
        return real(wh, kind, key)

    monkeypatch.setattr(keys, "match_key", slow)
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(client.post("/v1/track", auth=("slow-key", ""), json={"event": "x"}).status_code)
    )
    waiting.start()
    time.sleep(0.3)  # the slow lookup has begun
    started = time.monotonic()
    r = client.post("/v1/track", auth=(write_key, ""), json={"userId": "u1", "event": "Meanwhile"})
    took = time.monotonic() - started
    waiting.join()
    assert r.status_code == 200 and took < 1.0, took
    assert answers == [401]
