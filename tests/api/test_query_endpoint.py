"""``POST /v1/query`` against a real server: reads answer, everything else is refused, nothing freezes.

The statements an attacker with a read key would try (files, the network, extensions, settings, other
databases, writes, several statements at once) are refused with a 400 naming the construct, the
warehouse and the file system stay as they were, and a query that runs too long is interrupted while
the server keeps answering other requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow  # a real server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], str]]:
    data = tmp_path_factory.mktemp("query") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_messages(wh, [{"type": "track", "userId": f"u{i}", "event": "Signed Up"} for i in range(5)], source="t")
    read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'reader', 'read')}"}
    write_key = keys.create_source(wh, "web")
    wh.close()
    server = Server(data, free_port(), write_key)
    try:
        server.start()
        yield server, read, write_key
    finally:
        server.stop()


def _query(served: tuple[Server, dict[str, str], str], sql: str, **extra: object) -> httpx.Response:
    server, read, _ = served
    return httpx.post(f"{server.url}/v1/query", json={"sql": sql, **extra}, headers=read, timeout=60)


def test_a_read_answers_with_columns_and_rows(served: tuple[Server, dict[str, str], str]) -> None:
    r = _query(served, "SELECT event, count(*) AS n FROM events GROUP BY 1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["event", "n"] and body["rows"] == [{"event": "Signed Up", "n": 5}]
    assert body["truncated"] is False and body["max_rows"] == 10_000
    cut = _query(served, "SELECT user_id FROM events ORDER BY 1", limit=2).json()
    assert [r["user_id"] for r in cut["rows"]] == ["u0", "u1"] and cut["truncated"] is True


def test_it_needs_a_read_key(served: tuple[Server, dict[str, str], str]) -> None:
    server, _, write_key = served
    for headers in ({}, {"Authorization": f"Bearer {write_key}"}, {"Authorization": "Bearer tpk_r_nope"}):
        r = httpx.post(f"{server.url}/v1/query", json={"sql": "SELECT 1"}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


HOSTILE = {
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    "read_text": ("SELECT content FROM read_text('/etc/passwd')", "read_text"),
    "quoted file": ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
    "scalar file read": ("SELECT (SELECT content FROM read_blob('/etc/shadow'))", "read_blob"),
    "glob": ("SELECT * FROM glob('/root/*')", "glob"),
    "copy out": ("COPY events TO '/tmp/touchpoint-stolen.csv'", "COPY"),
    "copy in": ("COPY events FROM '/etc/passwd'", "COPY"),
    "attach": ("ATTACH '/tmp/touchpoint-other.duckdb' AS other", "ATTACH"),
    "install": ("INSTALL httpfs", "INSTALL"),
    "load": ("LOAD httpfs", "LOAD"),
    "pragma": ("PRAGMA database_list", "PRAGMA"),
    "set": ("SET enable_external_access = true", "SET"),
    "two statements": ("SELECT 1; SELECT 2", "2 statements"),
    "select then drop": ("SELECT 1; DROP TABLE events", "statement"),
    "delete": ("DELETE FROM events", "DELETE"),
    "create": ("CREATE TABLE x AS SELECT 1", "CREATE"),
    "export": ("EXPORT DATABASE '/tmp/touchpoint-export'", "EXPORT"),
    "url": ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "read_parquet"),
    "getenv": ("SELECT getenv('HOME')", "getenv"),
    "other catalog": ("SELECT * FROM system.main.duckdb_settings()", "duckdb_settings"),
    "not loaded": ("SELECT st_point(1, 2)", "st_point"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_sql_is_refused(served: tuple[Server, dict[str, str], str], name: str) -> None:
    sql, named = HOSTILE[name]
    r = _query(served, sql)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and named.lower() in error["message"].lower(), error
    assert "Traceback" not in r.text and "root:" not in r.text


def test_nothing_was_written_or_read(served: tuple[Server, dict[str, str], str]) -> None:
    for sql, _ in HOSTILE.values():
        _query(served, sql)
    assert not Path("/tmp/touchpoint-stolen.csv").exists() and not Path("/tmp/touchpoint-export").exists()
    assert not Path("/tmp/touchpoint-other.duckdb").exists()
    assert _query(served, "SELECT count(*) AS n FROM events").json()["rows"] == [{"n": 5}]


@pytest.mark.parametrize(
    "body",
    [{"sql": "SELECT 1", "limit": 0}, {"sql": "SELECT 1", "timeout": 0}, {"sql": "SELECT 1", "timeout": 10_000}, {}],
)
def test_limits_out_of_range_are_400(served: tuple[Server, dict[str, str], str], body: dict[str, object]) -> None:
    server, read, _ = served
    r = httpx.post(f"{server.url}/v1/query", json=body, headers=read)
    assert r.status_code in (400, 422) and r.json()["error"]["code"] == "invalid_input"


def test_a_long_query_is_stopped_without_freezing_the_server(served: tuple[Server, dict[str, str], str]) -> None:
    server, _, write_key = served
    slow = "SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(200000) b"
    answers: list[httpx.Response] = []

    def run() -> None:
        answers.append(_query(served, slow, timeout=2))

    threads = [threading.Thread(target=run) for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)
    # meanwhile the server answers: health, another query, and the collector
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert _query(served, "SELECT count(*) AS n FROM events").status_code == 200
    r = httpx.post(f"{server.url}/v1/track", json={"userId": "x", "event": "E"}, auth=(write_key, ""), timeout=10)
    assert r.status_code == 200
    for t in threads:
        t.join(60)
    assert time.monotonic() - started < 30
    assert len(answers) == 3
    for answer in answers:
        assert answer.status_code == 400 and "longer than 2 s" in answer.json()["error"]["message"]
