"""Bad input finds no 500 and loses nothing: each item is stored, quarantined with a reason, or refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from tests.conftest import Server

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.warehouse import open_warehouse

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
maybe = lambda strategy: st.one_of(st.none(), strategy, json_values)  # noqa: E731
timestamps = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.just("2026-01-01T00:00:00Z"),
    st.text(max_size=25),
)
items = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "TRACK", "nope"])),
        "userId": maybe(st.text(max_size=20)),
        "anonymousId": maybe(st.text(max_size=20)),
        "event": maybe(st.text(max_size=20)),
        "messageId": maybe(st.uuids().map(str)),
        "timestamp": maybe(timestamps),
        "sentAt": maybe(timestamps),
        "groupId": maybe(st.text(max_size=5)),
        "previousId": maybe(st.text(max_size=5)),
        "properties": maybe(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
        "traits": maybe(st.dictionaries(st.sampled_from(["email", "name", "x"]), json_values, max_size=3)),
        "context": maybe(
            st.dictionaries(st.sampled_from(["page", "campaign", "traits", "ip"]), json_values, max_size=4)
        ),
    },
)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    cfg = Settings(data_dir=tmp_path_factory.mktemp("fuzz"))
    wh = open_warehouse(cfg)
    key = keys.create_source(wh, "fuzz")
    wh.close()
    with TestClient(create_app(cfg)) as client:
        yield client, key


def _count(client: TestClient, sql: str) -> int:
    assert client.app.state.touchpoint.committer.flush(10)  # type: ignore[attr-defined]  # (the collector log)
    return int(client.app.state.touchpoint.warehouse.query(sql).to_pylist()[0]["n"])  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.one_of(items, json_values), min_size=1, max_size=8))
def test_batch_items_are_stored_or_quarantined_never_dropped(app_client: tuple[TestClient, str], batch: list) -> None:
    client, key = app_client
    before_events = _count(client, "SELECT count(*) AS n FROM events")
    before_quarantine = _count(client, "SELECT count(*) AS n FROM quarantine")
    r = client.post(
        "/v1/batch",
        content=msgspec.json.encode({"batch": batch}),
        headers={"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
    )
    assert r.status_code in (200, 400, 413), r.text
    if r.status_code != 200:
        assert r.json()["error"]["message"]
        return
    body = r.json()
    assert body["accepted"] + body["quarantined"] == len(batch)
    new_quarantine = _count(client, "SELECT count(*) AS n FROM quarantine") - before_quarantine
    # A reject already recorded (the same bad item sent again within the window) adds no record.
    assert new_quarantine <= body["quarantined"]
    new_events = _count(client, "SELECT count(*) AS n FROM events") - before_events
    # Accepted items are stored unless their messageId was already stored (a duplicate, acknowledged).
    assert new_events <= body["accepted"]
    ids = [i["messageId"] for i in batch if isinstance(i, dict) and isinstance(i.get("messageId"), str)]
    for message_id in ids:
        stored = _count(client, f"SELECT count(*) AS n FROM events WHERE message_id = '{message_id}'")
        quarantined = _count(client, f"SELECT count(*) AS n FROM quarantine WHERE message_id = '{message_id}'")
        assert stored + quarantined >= 1, f"{message_id} vanished"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=200), json_values.map(msgspec.json.encode), items.map(msgspec.json.encode)),
    path=st.sampled_from(["/v1/track", "/v1/i", "/v1/batch", "/v1/p", "/v1/alias"]),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", ""]),
)
def test_any_body_gets_a_clear_answer_not_a_500(
    app_client: tuple[TestClient, str], body: bytes, path: str, encoding: str | None
) -> None:
    client, key = app_client
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    r = client.post(path, content=body, headers=headers)
    assert r.status_code in (200, 400, 413), r.text
    if r.status_code != 200:
        error = r.json()["error"]
        assert error["message"] and error["code"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from tests.conftest import free_port

    from touchpoint.warehouse import Warehouse

    data = tmp_path_factory.mktemp("schemathesis") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    key = keys.create_source(wh, "fuzz")
    read = keys.create_api_key(wh, "fuzz-reader", "admin")
    wh.close()
    server = Server(data, free_port(), key)
    server.start()
    server.read_key = read  # type: ignore[attr-defined]
    yield server
    server.stop()


def _schema() -> Any:
    app = create_app(Settings())
    return schemathesis.openapi.from_dict(app.openapi())


schema = _schema()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_schema_driven_fuzz_finds_no_500(case: Any, live: Server) -> None:
    collector = case.path.startswith("/v1/") and "quarantine" not in case.path
    key = live.write_key if collector else live.read_key  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {key}"}
    response = case.call(base_url=live.url, headers=headers)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["success"] is False and body["error"]["message"]
