"""The collector on PostgreSQL: real `touchpoint serve` processes storing into one PostgreSQL database at once
(what the embedded engine's one-writer rule forbids), read meanwhile by this process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port
from tests.warehouse.pg import PostgresServer

from touchpoint import keys
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collectors(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[Server]]]:
    """Two `touchpoint serve` on one PostgreSQL database (started at once: a start is most of the cost)."""
    url = postgres_server.new_database()
    with Warehouse.open(url) as wh:
        write_key = keys.create_source(wh, "pg-source")
    root: Path = tmp_path_factory.mktemp("collectors")
    servers = []
    for name in ("a", "b"):
        (root / name).mkdir()
        servers.append(Server(root / name, free_port(), write_key, env={"TOUCHPOINT_WAREHOUSE_URL": url}))
    failures: list[BaseException] = []

    def start(server: Server) -> None:
        try:
            server.start()
        except BaseException as exc:  # reported below, after both have been tried
            failures.append(exc)

    starting = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    try:
        assert not failures, failures
        yield url, servers
    finally:
        for server in servers:
            server.stop()
        postgres_server.drop_database(url)


def _post(server: Server, path: str, body: object) -> None:
    with httpx.Client(auth=(server.write_key, ""), timeout=30.0) as http:
        response = http.post(f"{server.url}{path}", json=body)
        assert response.status_code == 200, response.text


def test_serve_on_postgresql_dedups_by_message_id_and_quarantines(collectors: tuple[str, list[Server]]) -> None:
    url, (server, other) = collectors
    order = {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "messageId": "d-m2",
        "properties": {"order_id": "o1", "revenue": 42.5, "currency": "EUR"},
    }
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"email": "Ann@Example.com"}, "messageId": "d-m1"},
        order,
        {"type": "track", "userId": "u1", "messageId": "d-m3"},  # no event name: quarantined
    ]
    _post(server, "/v1/batch", {"batch": batch})
    _post(server, "/v1/batch", {"batch": [order, {"type": "page", "anonymousId": "a1", "messageId": "d-m4"}]})
    _post(other, "/v1/track", order)  # a retry that reaches the other collector
    with Warehouse.open(url, read_only=True) as wh:  # read while both servers run
        rows = wh.query(
            "SELECT message_id, type, email, revenue, currency FROM events"
            " WHERE message_id LIKE 'd-%' ORDER BY message_id"
        )
        assert rows.to_pylist() == [
            {"message_id": "d-m1", "type": "identify", "email": "ann@example.com", "revenue": None, "currency": None},
            {"message_id": "d-m2", "type": "track", "email": None, "revenue": 42.5, "currency": "EUR"},
            {"message_id": "d-m4", "type": "page", "email": None, "revenue": None, "currency": None},
        ]
        assert wh.query("SELECT properties FROM events WHERE message_id = 'd-m2'").to_pylist() == [
            {"properties": '{"order_id":"o1","revenue":42.5,"currency":"EUR"}'}  # the JSON as sent
        ]
        quarantined = wh.query("SELECT message_id, reason FROM quarantine WHERE message_id LIKE 'd-%'").to_pylist()
        assert [q["message_id"] for q in quarantined] == ["d-m3"], quarantined
        assert "event" in quarantined[0]["reason"]


def test_two_collectors_write_to_one_postgresql_at_once_with_no_loss_and_no_duplicates(
    collectors: tuple[str, list[Server]],
) -> None:
    url, servers = collectors
    sent: list[set[str]] = [set() for _ in range(4)]
    errors: list[BaseException] = []

    def sender(worker: int) -> None:
        try:
            for n in range(15):
                # workers 0 and 1 send the same messages, one to each collector (as do 2 and 3): every
                # message arrives twice, at two processes at the same moment, and must be stored once
                ids = [f"w{worker // 2}-{n}-{k}" for k in range(20)]
                batch = [
                    {"type": "track", "userId": f"u{k}", "event": "Tick", "messageId": m} for k, m in enumerate(ids)
                ]
                _post(servers[worker % 2], "/v1/batch", {"batch": batch})
                sent[worker].update(ids)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = set().union(*sent)
    assert len(expected) == 2 * 15 * 20
    with Warehouse.open(url, read_only=True) as wh:
        stored = wh.query("SELECT message_id FROM events WHERE message_id LIKE 'w%'").column("message_id").to_pylist()
    assert len(stored) == len(set(stored)) == len(expected)  # none lost, none twice
    assert set(stored) == expected
