"""The collector's limits, one regression test per reproduction of issue 12.

Each input here once made ``/v1/batch`` answer 500 and store nothing, or made ``touchpoint
import events`` exit 70 with nothing stored, or was stored wrong. Now the bad item is kept in
quarantine naming its field, the rest is stored, and the answer counts both.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.cli.main import main as cli_main
from touchpoint.collect.decode import MAX_DEPTH, EventError, decode_event, locate, split_batch
from touchpoint.collect.files import import_events
from touchpoint.collect.normalize import EventRows, Rejected, corrected_timestamp, utcnow
from touchpoint.collect.orders import import_orders
from touchpoint.collect.store import write_messages, write_rows
from touchpoint.config import Settings
from touchpoint.warehouse import Warehouse, open_warehouse

GOOD = b'{"type":"track","userId":"u","event":"Good","messageId":"good-%d"}'
REPRODUCTIONS = {
    "invalid utf-8 in a string": (
        b'{"type":"track","userId":"u","event":"E","properties":{"note":"caf\xe9"}}',
        "properties.note",
    ),
    "nested 1,000 deep in an unknown field": (
        b'{"type":"track","userId":"u","event":"E","extra":' + b"[" * 1000 + b"]" * 1000 + b"}",
        "extra[0][0][0][0][...]",
    ),
    "nested 1,000 deep in properties": (
        b'{"type":"track","userId":"u","event":"E","properties":{"a":' + b"[" * 1000 + b"]" * 1000 + b"}}",
        "properties.a[0][0][0][...]",
    ),
    "1e400 in revenue": (
        b'{"type":"track","userId":"u","event":"E","properties":{"revenue":1e400}}',
        "properties.revenue",
    ),
    "year 0 in UTC": (
        b'{"type":"track","userId":"u","event":"E","timestamp":"0001-01-01T00:00:00+01:00"}',
        "timestamp",
    ),
    "year 10000 in UTC": (
        b'{"type":"track","userId":"u","event":"E","timestamp":"9999-12-31T23:00:00-05:00"}',
        "timestamp",
    ),
    "a lone surrogate": (b'{"type":"track","userId":"u","event":"E","context":{"x":"\\udc00"}}', "context.x"),
    "a 5,000-digit id": (b'{"type":"track","userId":' + b"9" * 5000 + b',"event":"E"}', "userId"),
    "a NUL in the event name": (b'{"type":"track","userId":"u","event":"a\\u0000b"}', "event"),
    "an event name of 30,000 characters": (
        b'{"type":"track","userId":"u","event":"' + b"x" * 30_000 + b'"}',
        "event",
    ),
    "revenue over the typed range": (
        b'{"type":"track","userId":"u","event":"E","properties":{"revenue":1e16}}',
        "properties.revenue",
    ),
    "revenue 1e400 as text": (
        b'{"type":"track","userId":"u","event":"E","properties":{"total":"1e400"}}',
        "properties.total",
    ),
    "timestamp 1970, sentAt 2200": (
        b'{"type":"track","userId":"u","event":"E","timestamp":"1970-01-01T00:00:00Z","sentAt":"2200-01-01T00:00:00Z"}',
        "sentAt",
    ),
}


@pytest.fixture
def app(settings: Settings) -> Iterator[tuple[TestClient, str, str]]:
    wh = open_warehouse(settings)
    write_key = keys.create_source(wh, "web")
    admin = keys.create_api_key(wh, "admin", "admin")
    wh.close()
    with TestClient(create_app(settings)) as client:
        yield client, write_key, admin


def _rows(client: TestClient, sql: str) -> list[dict]:
    assert client.app.state.touchpoint.committer.flush(10)  # type: ignore[attr-defined]  # (the collector log)
    wh: Warehouse = client.app.state.touchpoint.warehouse  # type: ignore[attr-defined]
    return wh.query(sql).to_pylist()


@pytest.mark.parametrize("case", sorted(REPRODUCTIONS))
def test_one_bad_item_costs_only_itself_in_a_batch(app: tuple[TestClient, str, str], case: str) -> None:
    client, key, _ = app
    bad, field = REPRODUCTIONS[case]
    body = b'{"batch":[' + GOOD % 1 + b"," + bad + b"," + GOOD % 2 + b"]}"
    r = client.post("/v1/batch", content=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["quarantined"]) == (2, 1)
    assert answer["errors"][0]["index"] == 1 and answer["errors"][0]["field"] == field
    assert _rows(client, "SELECT message_id FROM events ORDER BY 1") == [
        {"message_id": "good-1"},
        {"message_id": "good-2"},
    ]
    assert _rows(client, "SELECT field FROM quarantine") == [{"field": field}]


@pytest.mark.parametrize("case", sorted(REPRODUCTIONS))
def test_a_bad_single_event_is_400_naming_the_field(app: tuple[TestClient, str, str], case: str) -> None:
    client, key, _ = app
    bad, field = REPRODUCTIONS[case]
    r = client.post("/v1/track", content=bad, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["quarantined"] == 1
    assert _rows(client, "SELECT field FROM quarantine") == [{"field": field}]
    assert client.post("/v1/track", content=GOOD % 3, headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_a_broken_batch_context_is_400_and_the_body_is_kept(app: tuple[TestClient, str, str]) -> None:
    client, key, _ = app
    body = b'{"context":{"deep":' + b"[" * 1000 + b"]" * 1000 + b'},"batch":[' + GOOD % 1 + b"]}"
    r = client.post("/v1/batch", content=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_batch" and r.json()["field"] == "context.deep[0][0][0][0][...]"
    assert _rows(client, "SELECT field, origin FROM quarantine") == [
        {"field": "context.deep[0][0][0][0][...]", "origin": "http:batch"}
    ]


def test_duplicate_keys_last_value_wins_in_typed_columns_and_properties(app: tuple[TestClient, str, str]) -> None:
    client, key, _ = app
    body = b'{"type":"track","userId":"u","event":"E","messageId":"d","properties":{"revenue":1,"revenue":7.5}}'
    assert client.post("/v1/track", content=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    row = _rows(client, "SELECT revenue, properties->>'revenue' AS prop, properties FROM events")[0]
    assert row["revenue"] == 7.5 and float(row["prop"]) == 7.5 and row["properties"] == '{"revenue":7.5}'


@pytest.mark.parametrize(
    ("name", "mangle", "words"),
    [
        ("two members", lambda z: z + gzip.compress(b'{"batch":[]}'), "after the end"),
        ("trailing garbage", lambda z: z + b"junk", "after the end"),
        ("truncated trailer", lambda z: z[:-4], "truncated"),
        ("bad CRC", lambda z: z[:-8] + bytes([z[-8] ^ 1]) + z[-7:], "not valid gzip"),
        ("bad length", lambda z: z[:-4] + bytes([z[-4] ^ 1]) + z[-3:], "not valid gzip"),
    ],
)
def test_gzip_is_strict(app: tuple[TestClient, str, str], name: str, mangle: object, words: str) -> None:
    client, key, _ = app
    packed = gzip.compress(b'{"batch":[' + GOOD % 1 + b"]}")
    headers = {"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=packed, headers=headers).status_code == 200
    r = client.post("/v1/batch", content=mangle(packed), headers=headers)  # type: ignore[operator]
    assert r.status_code == 400, name
    assert words in r.json()["error"]["message"], r.json()


def test_the_same_bad_batch_twice_makes_one_quarantine_record(app: tuple[TestClient, str, str]) -> None:
    client, key, _ = app
    body = b'{"batch":[' + GOOD % 1 + b',{"type":"track","userId":"u"}]}'
    for _ in range(2):
        r = client.post("/v1/batch", content=body, headers={"Authorization": f"Bearer {key}"})
        assert r.json()["quarantined"] == 1  # the answer still counts the item it kept aside
    assert _rows(client, "SELECT count(*) AS n FROM quarantine") == [{"n": 1}]
    other = b'{"batch":[{"type":"track","userId":"v"}]}'
    client.post("/v1/batch", content=other, headers={"Authorization": f"Bearer {key}"})
    assert _rows(client, "SELECT count(*) AS n FROM quarantine") == [{"n": 2}]  # different content, new record


def test_replay_enforces_the_size_limit(app: tuple[TestClient, str, str]) -> None:
    client, _, admin = app
    wh: Warehouse = client.app.state.touchpoint.warehouse  # type: ignore[attr-defined]
    big = {"type": "track", "userId": "u", "event": "Big", "messageId": "big", "properties": {"p": "x" * 40_000}}
    small = {"type": "track", "userId": "u", "event": "Small", "messageId": "small"}
    rows = EventRows()
    for event in (big, small):
        rows.reject(Rejected("test", None, json.dumps(event), None, "file:x.jsonl:1"), utcnow(), "test")
    write_rows(wh, rows)
    r = client.post("/v1/quarantine/replay", json=None, headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200
    answer = r.json()
    assert answer["replayed"] == 1
    assert len(answer["still_invalid"]) == 1 and "32,768 bytes" in answer["still_invalid"][0]["reason"]
    assert _rows(client, "SELECT message_id FROM events") == [{"message_id": "small"}]


def test_clock_skew_correction_has_a_window() -> None:
    now = datetime(2026, 6, 1, 12, 0)
    day = timedelta(days=1)
    # a client whose clock is a year behind: the delay it reports (one hour) is what counts
    assert corrected_timestamp(datetime(2025, 6, 1, 11), datetime(2025, 6, 1, 12), now) == now - timedelta(hours=1)
    # sent a little "before" it happened (clock granularity): taken as sent at once
    assert corrected_timestamp(now, now - timedelta(minutes=1), now) == now
    with pytest.raises(EventError) as err:  # 1970 sent in 2200 was stored as 1796
        corrected_timestamp(datetime(1970, 1, 1), datetime(2200, 1, 1), now)
    assert err.value.field == "sentAt"
    with pytest.raises(EventError):  # a day before: two clocks
        corrected_timestamp(now, now - day, now)
    assert corrected_timestamp(now - 300 * day, now, now) == now - 300 * day  # an offline queue of 300 days


def test_locate_names_the_path_and_never_recurses() -> None:
    found = locate(b'{"a":[1,{"b":"x\xffy"}]}')
    assert found is not None and found.field == "a[1].b" and "UTF-8" in found.reason
    deep = b"[" * 100_000 + b"]" * 100_000
    found = locate(deep)
    assert found is not None and f"deeper than {MAX_DEPTH}" in found.reason
    assert locate(b'{"ok":[1,2.5,"\\ud83d\\ude00",18446744073709551615,-9223372036854775808]}') is None
    assert locate(b'{"n":18446744073709551616}') is not None
    assert locate(b'{"n":-9223372036854775809}') is not None


def test_split_batch_keeps_items_whole_and_refuses_what_is_no_batch() -> None:
    items, envelope = split_batch(b'{"sentAt":"x","batch":[{"a":[1,2]}, 3 ,"s"],"context":{"c":{}}}') or ([], {})
    assert items == [b'{"a":[1,2]}', b"3", b'"s"']
    assert envelope["context"] == b'{"c":{}}' and envelope["sentAt"] == b'"x"'
    assert split_batch(b'{"batch":5}') is None and split_batch(b"[1]") is None and split_batch(b'{"batch":[') is None


def test_decode_event_refuses_out_of_range_numbers_even_in_fields_it_ignores() -> None:
    with pytest.raises(EventError) as err:
        decode_event(b'{"type":"track","userId":"u","event":"E","ignored":{"n":1e400}}')
    assert err.value.field == "ignored.n"
    msg = decode_event(b'{"type":"track","userId":"u","event":"E","properties":{"n":1e308,"a":1,"a":2}}')
    assert msgspec.json.decode(bytes(msg.properties)) == {"n": 1e308, "a": 2}


def test_write_messages_refuses_an_infinite_revenue_instead_of_storing_null(warehouse: Warehouse) -> None:
    good = {"type": "track", "userId": "u", "event": "E", "messageId": "ok", "properties": {"revenue": 5.0}}
    bad = {"type": "track", "userId": "u", "event": "E", "messageId": "inf", "properties": {"revenue": float("inf")}}
    result = write_messages(warehouse, [good, bad])
    assert (result.stored, result.quarantined) == (1, 1)
    assert warehouse.query("SELECT field FROM quarantine").to_pylist() == [{"field": "properties.revenue"}]


# ---- files -------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = 0
    try:
        cli_main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def test_import_events_with_the_reproductions_exits_0_and_reports_new_then_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [GOOD % 1] + [bad for bad, _ in REPRODUCTIONS.values()] + [GOOD % 2]
    path.write_bytes(b"\n".join(lines) + b"\n")
    data = str(tmp_path / "data")
    code, out = _cli(capsys, "import", "events", str(path), "--data", data, "--json")
    assert code == 0, out
    first = json.loads(out)
    assert (first["stored"], first["quarantined"], first["already_quarantined"]) == (2, len(REPRODUCTIONS), 0)
    code, out = _cli(capsys, "import", "events", str(path), "--data", data, "--json")
    again = json.loads(out)
    assert (again["stored"], again["duplicates"], again["quarantined"]) == (0, 2, 0)
    assert again["already_quarantined"] == len(REPRODUCTIONS)
    code, out = _cli(capsys, "import", "events", str(path), "--data", data)
    assert f"0 quarantined, {len(REPRODUCTIONS)} already in quarantine" in out
    wh = Warehouse.open(f"duckdb://{tmp_path / 'data' / 'warehouse.duckdb'}", read_only=True)
    fields = {r["field"] for r in wh.query("SELECT field FROM quarantine").to_pylist()}
    wh.close()
    assert fields == {field for _, field in REPRODUCTIONS.values()}


def test_csv_with_invalid_utf8_quarantines_the_row_naming_the_column(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"type,userId,event,plan\ntrack,u1,Signed Up,gold\ntrack,u2,Signed Up,g\xffld\n")
    report = import_events(warehouse, path)
    assert (report.write.stored, report.write.quarantined) == (1, 1)
    assert warehouse.query("SELECT field FROM quarantine").to_pylist() == [{"field": "plan"}]
    assert "g\\xffld" in warehouse.query("SELECT payload FROM quarantine").to_pylist()[0]["payload"]
    stored = warehouse.query("SELECT properties FROM events").to_pylist()
    assert stored == [{"properties": '{"plan":"gold"}'}]  # nothing stored with \xff turned into text


def test_an_order_with_revenue_1e400_is_quarantined_not_stored_with_null(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,timestamp,revenue\nc1,o1,2026-01-01,10\nc2,o2,2026-01-01,1e400\n")
    report = import_orders(warehouse, path)
    assert (report.write.stored, report.write.quarantined) == (1, 1)
    assert warehouse.query("SELECT message_id, revenue FROM events").to_pylist() == [
        {"message_id": "order-o1", "revenue": 10.0}
    ]
    assert warehouse.query("SELECT field FROM quarantine").to_pylist() == [{"field": "revenue"}]
