"""File import: same validation, dedup and quarantine as HTTP; re-importing changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchpoint.collect import quarantine
from touchpoint.collect.files import import_events
from touchpoint.collect.orders import import_orders
from touchpoint.collect.spend import import_spend
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.warehouse import Warehouse


def q(wh: Warehouse, sql: str) -> list[dict]:
    return wh.query(sql).to_pylist()


def test_csv_with_a_malformed_row_quarantines_it_and_imports_the_rest(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "type,userId,event,timestamp,properties.revenue,context.page.url,plan\n"
        "track,u1,Order Completed,2026-01-01T10:00:00Z,12.5,https://s.example/?utm_source=mail,gold\n"
        "track,u2,Signed Up,2026-01-02T10:00:00Z\n"  # too few fields
        "track,u3,,2026-01-03T10:00:00Z,,,\n"  # no event name
        'identify,u4,,2026-01-04,,,"silver, with comma"\n'
    )
    report = import_events(warehouse, path)
    assert report.to_dict()["stored"] == 2 and report.to_dict()["quarantined"] == 2
    assert any("line 3: expected 7 fields, got 4" in r for r in report.sample_reasons)
    assert any("event name" in r for r in report.sample_reasons)
    rows = q(warehouse, "SELECT user_id, revenue, utm_source, properties FROM events ORDER BY user_id")
    assert rows[0]["revenue"] == 12.5 and rows[0]["utm_source"] == "mail"
    assert json.loads(rows[0]["properties"]) == {"revenue": 12.5, "plan": "gold"}
    assert json.loads(rows[1]["properties"]) == {"plan": "silver, with comma"}
    origins = {r["origin"] for r in q(warehouse, "SELECT origin FROM quarantine")}
    assert origins == {"file:events.csv:3", "file:events.csv:4"}

    again = import_events(warehouse, path)  # re-import: nothing new anywhere
    assert again.to_dict()["stored"] == 0 and again.to_dict()["duplicates"] == 2
    assert q(warehouse, "SELECT count(*) AS n FROM events") == [{"n": 2}]
    assert q(warehouse, "SELECT count(*) AS n FROM quarantine") == [{"n": 2}]


def test_jsonl_import_with_mapping_and_bad_lines(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"type": "track", "customer": "c1", "event": "A"}\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"type": "page", "customer": "c2", "messageId": "m2"}\n'
    )
    report = import_events(warehouse, path, mapping={"userId": "customer"})
    assert (report.write.stored, report.write.quarantined) == (2, 2)
    assert q(warehouse, "SELECT user_id FROM events ORDER BY 1") == [{"user_id": "c1"}, {"user_id": "c2"}]
    plain = import_events(warehouse, path)  # without the mapping the same lines lack a user
    assert plain.write.stored == 0


def test_parquet_import(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "type": ["track", "track"],
                "user_id": ["u1", None],
                "event": ["A", "B"],
                "properties": ['{"x": 1}', None],
            }
        ),
        path,
    )
    report = import_events(warehouse, path)
    assert (report.write.stored, report.write.quarantined) == (1, 1)
    assert q(warehouse, "SELECT properties FROM events") == [{"properties": '{"x":1}'}]


def test_unknown_format_and_missing_file_are_clear(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InvalidInput, match="cannot tell the format"):
        import_events(warehouse, tmp_path / "x.txt")
    with pytest.raises(InvalidInput, match="does not exist"):
        import_events(warehouse, tmp_path / "nope.csv")


def test_orders_lines_become_one_order_completed_event(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "cust,order_id,timestamp,revenue,sku,quantity,price,email\n"
        "c1,o1,2026-01-01T10:00:00Z,10,a,1,10,Ann@x.io\n"
        "c1,o1,2026-01-01T10:00:00Z,,b,2,2.5,\n"
        "c2,o2,2026-01-02,7.5,,,,\n"
        ",o3,2026-01-02,1,,,,\n"
        "c4,o4,2026-01-02,abc,,,,\n"
    )
    report = import_orders(warehouse, path, mapping={"customer_id": "cust"})
    assert (report.write.stored, report.write.quarantined) == (2, 2)
    o1 = q(warehouse, "SELECT user_id, event, revenue, email, properties FROM events WHERE order_id = 'o1'")[0]
    assert (o1["user_id"], o1["event"], o1["revenue"], o1["email"]) == (
        "c1",
        "Order Completed",
        15.0,
        "ann@x.io",
    )
    assert [p["sku"] for p in json.loads(o1["properties"])["products"]] == ["a", "b"]
    assert import_orders(warehouse, path, mapping={"customer_id": "cust"}).write.stored == 0


def test_spend_upserts_and_reimport_writes_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "spend.csv"
    path.write_text(
        "date,channel,campaign,amount\n2026-01-05,search,,100\n2026-01-05,social,x,50\n2026-01-06,search,,-4\n"
    )
    first = import_spend(warehouse, path)
    assert (first.write.stored, first.write.quarantined) == (2, 1)
    assert "negative" in first.sample_reasons[0]
    assert import_spend(warehouse, path).write.stored == 0
    path.write_text("date,channel,campaign,amount\n2026-01-05,search,,120\n")
    assert import_spend(warehouse, path).write.stored == 1
    assert q(warehouse, "SELECT amount FROM spend WHERE channel = 'search'") == [{"amount": 120.0}]


def test_quarantine_replay_after_a_fix(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"type": "track", "userId": "u1", "event": "E", "timestamp": "31/01/2026"}\n')
    import_events(warehouse, path)
    [record] = quarantine.list_records(warehouse)
    assert "ISO 8601" in record["reason"]
    still = quarantine.replay(warehouse, [record["id"]])
    assert still.replayed == [] and len(still.still_invalid) == 1
    fixed = b'{"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-01-31"}'
    done = quarantine.replay(warehouse, [record["id"]], payload_override=fixed)
    assert done.replayed == [record["id"]]
    assert quarantine.get_record(warehouse, record["id"])["status"] == "replayed"
    assert q(warehouse, "SELECT count(*) AS n FROM events") == [{"n": 1}]
    assert quarantine.replay(warehouse, None).replayed == []  # replayed records are not replayed twice
    with pytest.raises(NotFound):
        quarantine.replay(warehouse, ["q-nope"])


def test_a_missing_jsonl_file_is_named_whatever_the_import_path(warehouse: Warehouse, tmp_path: Path) -> None:
    for engine in (None, True, False):  # the default looks at the file's size first: it must not fail there
        with pytest.raises(InvalidInput, match="does not exist"):
            import_events(warehouse, tmp_path / "nope.jsonl", engine=engine)
