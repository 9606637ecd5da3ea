"""Every operation an engine adapter implements (what Ibis lacks or gets wrong on that engine), run on every
engine with the same input and the same expected answer. A new adapter operation gets a row in OPERATIONS."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import ibis
import pyarrow as pa
import pytest
from tests.warehouse.pg import PostgresServer

from touchpoint.errors import WarehouseError
from touchpoint.warehouse import Warehouse

T = datetime(2026, 3, 2, 9, 0, 0)


def _overrides(*values: str) -> pa.Table:
    n = len(values)
    return pa.table({"kind": ["split"] * n, "id_type": ["email"] * n, "id_value": list(values)})


KEYED = "experiment_results"  # a table with a declared key (``key``)


def _kv(keys: list[str], values: list[str]) -> pa.Table:
    return pa.table({"key": keys, "status": values, "analyzed_at": [T] * len(keys)})


def _state(wh: Warehouse) -> dict[str, Any]:
    rows = wh.to_arrow(wh.table(KEYED)).to_pylist()
    return {r["key"]: r["status"] for r in rows}


def append(wh: Warehouse) -> Any:
    return wh.append("identity_overrides", _overrides("a", "b")), wh.count("identity_overrides")


def insert_new_skips_stored_keys(wh: Warehouse) -> Any:
    first = wh.insert_new(KEYED, _kv(["k1", "k2"], ["1", "2"]))
    second = wh.insert_new(KEYED, _kv(["k2", "k3"], ["changed", "3"]))
    return first, second, _state(wh)


def insert_new_keeps_the_first_of_a_repeated_key(wh: Warehouse) -> Any:
    # a batch holding one key twice (a client's retry inside one import chunk): the first row is kept
    # (spread over partitions on Spark: 2,000 keys, then the same keys again in reverse order)
    keys = [f"k{i}" for i in range(2000)]
    inserted = wh.insert_new(KEYED, _kv([*keys, *reversed(keys)], ["first"] * 2000 + ["second"] * 2000))
    return inserted, sorted(set(_state(wh).values()))


def upsert_with_compare(wh: Warehouse) -> Any:
    rows = _kv(["k1", "k2"], ["1", "2"])
    counts = [wh.upsert(KEYED, rows, ["key"], compare=["status"])]
    counts.append(wh.upsert(KEYED, rows, ["key"], compare=["status"]))  # nothing changed: nothing written
    counts.append(wh.upsert(KEYED, _kv(["k2"], ["two"]), ["key"], compare=["status"]))
    return counts, _state(wh)


def upsert_a_json_column(wh: Warehouse) -> Any:  # PostgreSQL's json has no equality: compared as text
    def row(properties: str) -> pa.Table:
        fields = {"message_id": ["m"], "type": ["track"], "timestamp": [T], "received_at": [T]}
        return pa.table(fields | {"properties": [properties]})

    counts = [
        wh.upsert("events", row(p), ["message_id"], compare=["properties"]) for p in ('{"a":1}', '{"a":1}', '{"a":2}')
    ]
    return counts, wh.to_arrow(wh.table("events").select("message_id", "properties")).to_pylist()


def replace_from_an_expression(wh: Warehouse) -> Any:
    wh.append("identity_overrides", _overrides("a", "b", "c"))
    t = wh.table("identity_overrides")
    n = wh.replace("identity_overrides", t.filter(t.id_value != "b"))
    return n, sorted(wh.to_arrow(wh.table("identity_overrides").id_value.name("v").as_table()).column("v").to_pylist())


def delete_by_list_and_by_expression(wh: Warehouse) -> Any:
    wh.append("identity_overrides", _overrides("a", "b", "c", "d"))
    wh.delete("identity_overrides", "id_value", ["a"])
    keys = ibis.memtable({"id_value": ["b", "zz"]})
    wh.delete("identity_overrides", "id_value", keys.id_value)
    left = wh.to_arrow(wh.table("identity_overrides").select("id_value")).column("id_value").to_pylist()
    wh.delete("identity_overrides")
    return sorted(left), wh.count("identity_overrides")


def update(wh: Warehouse) -> Any:
    wh.append(KEYED, _kv(["k1", "k2"], ["1", "2"]))
    with wh.write() as tx:
        tx.update(KEYED, {"status": "one", "analyzed_at": datetime(2026, 4, 1)}, key="key", value="k1")
    return _state(wh)


def a_failed_transaction_leaves_nothing(wh: Warehouse) -> Any:
    try:
        with wh.write() as tx:
            tx.append("identity_overrides", _overrides("a"))
            tx.insert_new(KEYED, _kv(["k"], ["v"]))
            raise KeyError("stop")
    except KeyError:
        pass
    return wh.count("identity_overrides"), wh.count(KEYED)


def hexdigest(wh: Warehouse) -> Any:  # profile ids are md5 of the identifier, computed in the engine
    t = ibis.memtable({"s": ["user_id:u1", "email:ann@example.com", "ünïcode"]})
    expr = t.select("s", md5=t.s.hexdigest("md5"), sha256=t.s.hexdigest("sha256")).order_by("s")
    rows = wh.to_arrow(expr).to_pylist()
    for row in rows:  # and it is Python's
        assert row["md5"] == hashlib.md5(row["s"].encode(), usedforsecurity=False).hexdigest()
        assert row["sha256"] == hashlib.sha256(row["s"].encode()).hexdigest()
    return rows


def json_object_as_a_map(wh: Warehouse) -> Any:  # computed traits read an object's keys and values
    from touchpoint.collect.store import write_messages

    write_messages(wh, [{"type": "identify", "userId": "u", "messageId": "m", "traits": {"plan": "pro", "n": 3}}])
    m = wh.table("events").traits.map
    pairs = wh.to_arrow(wh.table("events").select(k=m.keys().unnest(), v=m.values().unnest())).to_pylist()
    return sorted((p["k"], p["v"]) for p in pairs)


def boolean_to_integer(wh: Warehouse) -> Any:
    t = ibis.memtable({"x": [1, 2, 3, 4]})
    return int(wh.to_arrow((t.x > 2).cast("int64").sum()).as_py())


def two_anti_joins_in_one_select(wh: Warehouse) -> Any:
    a = ibis.memtable({"k": [1, 2, 3, 4, 5]})
    b = ibis.memtable({"k": [2]})
    c = ibis.memtable({"k": [4]})
    s = ibis.memtable({"k": [1, 3, 4, 5]})
    expr = a.semi_join(s, "k").anti_join(b, "k").anti_join(c, "k")
    return sorted(wh.to_arrow(expr).column("k").to_pylist())


def ordered_collect(wh: Warehouse) -> Any:  # Spark: Ibis 12 refuses an ordered collect (journeys' paths need one)
    t = ibis.memtable(
        pa.table(
            {
                "g": [1, 1, 1, 1, 2, 2],
                "ts": pa.array([3, 1, None, 1, 5, 4], pa.int64()),  # a NULL key (not NaN)
                "k": ["a", "b", "c", "a", "x", "y"],
                "v": ["3a", "1b", "nc", "1a", None, "4y"],
            }
        )
    )
    expr = t.group_by("g").agg(
        up=t.v.collect(order_by=[t.ts, t.k]),
        down=t.v.collect(order_by=[t.ts.desc(), t.k]),
        nulls_first=t.v.collect(order_by=[t.ts.asc(nulls_first=True), t.k.desc()]),
        where=t.v.collect(order_by=t.k, where=t.ts > 1),
    )
    return sorted((r["g"], r["up"], r["down"], r["nulls_first"], r["where"]) for r in wh.to_arrow(expr).to_pylist())


def averages_are_floats(wh: Warehouse) -> Any:  # PostgreSQL's avg of integers is numeric
    t = ibis.memtable({"x": [1, 2, 4]})
    return wh.to_arrow(t.aggregate(m=t.x.mean(), s=t.x.sum())).to_pylist()


def aggregate_of_an_empty_not_null_column(wh: Warehouse) -> Any:  # NULL, not an error
    t = wh.table("audience_memberships")
    return wh.to_arrow(t.entered_at.max()).as_py(), wh.to_arrow(t.filter(t.audience == "x").count()).as_py()


def staged_then_written(wh: Warehouse) -> Any:
    wh.append("identity_overrides", _overrides("a", "b"))
    t = wh.table("identity_overrides")
    with wh.staged(t.mutate(id_value=t.id_value + "!")) as rows, wh.write() as tx:
        tx.replace("identity_overrides", rows)
    return sorted(wh.to_arrow(wh.table("identity_overrides").select("id_value")).column("id_value").to_pylist())


def compact(wh: Warehouse) -> Any:
    wh.append("identity_overrides", _overrides(*[f"v{i}" for i in range(200)]))
    wh.delete("identity_overrides")
    report = wh.compact()
    assert report["bytes_before"] >= 0 and report["bytes_after"] >= 0 and report["method"]
    return report["engine"] in ("duckdb", "postgres", "spark"), wh.count("identity_overrides")


def query_and_tables(wh: Warehouse) -> Any:
    wh.append(KEYED, _kv(["k"], ['{"a": 1}']))
    result = wh.query("SELECT key, status FROM experiment_results").to_pylist()
    return result, "events" in wh.tables(), any(n.startswith("__tp") for n in wh.tables())


OPERATIONS: dict[str, Callable[[Warehouse], Any]] = {
    f.__name__: f
    for f in (
        append,
        insert_new_skips_stored_keys,
        insert_new_keeps_the_first_of_a_repeated_key,
        upsert_with_compare,
        upsert_a_json_column,
        replace_from_an_expression,
        delete_by_list_and_by_expression,
        update,
        a_failed_transaction_leaves_nothing,
        hexdigest,
        json_object_as_a_map,
        boolean_to_integer,
        two_anti_joins_in_one_select,
        ordered_collect,
        averages_are_floats,
        aggregate_of_an_empty_not_null_column,
        staged_then_written,
        compact,
        query_and_tables,
    )
}
EXPECTED: dict[str, Any] = {
    "append": (2, 2),
    "insert_new_skips_stored_keys": (2, 1, {"k1": "1", "k2": "2", "k3": "3"}),
    "insert_new_keeps_the_first_of_a_repeated_key": (2000, ["first"]),
    "upsert_with_compare": ([2, 0, 1], {"k1": "1", "k2": "two"}),
    "upsert_a_json_column": ([1, 0, 1], [{"message_id": "m", "properties": '{"a":2}'}]),
    "replace_from_an_expression": (2, ["a", "c"]),
    "delete_by_list_and_by_expression": (["c", "d"], 0),
    "update": {"k1": "one", "k2": "2"},
    "a_failed_transaction_leaves_nothing": (0, 0),
    "json_object_as_a_map": [("n", "3"), ("plan", '"pro"')],
    "boolean_to_integer": 2,
    "two_anti_joins_in_one_select": [1, 3, 5],
    "ordered_collect": [
        (1, ["1a", "1b", "3a", "nc"], ["3a", "1a", "1b", "nc"], ["nc", "1b", "1a", "3a"], ["3a"]),
        (2, ["4y"], ["4y"], ["4y"], ["4y"]),
    ],
    "averages_are_floats": [{"m": 7 / 3, "s": 7}],
    "aggregate_of_an_empty_not_null_column": (None, 0),
    "staged_then_written": ["a!", "b!"],
    "compact": (True, 0),
    "query_and_tables": ([{"key": "k", "status": '{"a": 1}'}], True, False),
}


@pytest.fixture
def wh(engine_url: str) -> Iterator[Warehouse]:
    warehouse = Warehouse.open(engine_url)
    yield warehouse
    warehouse.close()


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_adapter_operation_gives_the_same_answer_on_every_engine(wh: Warehouse, operation: str) -> None:
    result = OPERATIONS[operation](wh)
    if operation == "hexdigest":  # checked against Python inside
        assert len(result) == 3
        return
    assert result == EXPECTED[operation]


HOLDER = """import sys, time
from touchpoint.errors import WarehouseError
from touchpoint.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
with wh.exclusive("identity"), wh.write() as tx:
    print("held", flush=True)
    time.sleep(3)
"""


def test_exclusive_sections_and_the_main_lane_hold_across_processes_on_postgresql(postgres_url: str) -> None:
    """Two processes on one PostgreSQL: a section one holds makes the other wait (an advisory lock), and so does
    a main-lane transaction; the events lane and other sections do not wait."""
    waited: dict[str, float] = {}

    def timed(name: str, block: Callable[[], AbstractContextManager[Any]], started: float) -> None:
        with block():
            waited[name] = time.monotonic() - started

    with (
        Warehouse.open(postgres_url) as wh,
        subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url], stdout=subprocess.PIPE, text=True) as holder,
    ):
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            started = time.monotonic()
            blocks: dict[str, Callable[[], AbstractContextManager[Any]]] = {
                "events lane": lambda: wh.write(lane="events"),
                "other section": lambda: wh.exclusive("audience:other"),
                "main lane": wh.write,
                "same section": lambda: wh.exclusive("identity"),
            }
            threads = [threading.Thread(target=timed, args=(n, b, started)) for n, b in blocks.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert holder.wait(30) == 0
        finally:
            holder.kill()
    assert waited["events lane"] < 1.0 and waited["other section"] < 1.0, waited
    assert waited["main lane"] > 1.5 and waited["same section"] > 1.5, waited  # until the other process let go


def test_an_empty_postgresql_database_is_migrated_when_opened(postgres_server: PostgresServer) -> None:
    from touchpoint.warehouse import migrations, schema

    url = postgres_server.new_database(migrated=False)
    try:
        with pytest.raises(WarehouseError, match="needs migrating"):
            Warehouse.open(url, read_only=True)
        with Warehouse.open(url) as wh:
            assert set(wh.tables()) == {spec.name for spec in schema.all_tables()}
            assert migrations.pending(wh) == [] and migrations.migrate(wh) == []  # a second run does nothing
            wh.append("identity_overrides", _overrides("x"))
        with Warehouse.open(url, read_only=True) as reader:  # reads that need temporary tables still work
            t = reader.table("identity_overrides")
            wanted = ibis.memtable({"id_value": ["x", "y"]})
            assert reader.to_arrow(t.semi_join(wanted, "id_value").select("id_value")).to_pylist() == [
                {"id_value": "x"}
            ]
            with pytest.raises(WarehouseError, match="read-only"):
                reader.append("identity_overrides", _overrides("y"))
    finally:
        postgres_server.drop_database(url)


def test_a_nul_character_postgresql_cannot_store_quarantines_only_its_event(postgres_url: str) -> None:
    from touchpoint.collect.store import write_messages

    with Warehouse.open(postgres_url) as wh:
        ok = {"type": "track", "userId": "u", "event": "Fine", "messageId": "ok"}
        bad = {"type": "track", "userId": "u", "event": "Nul\x00here", "messageId": "bad"}
        result = write_messages(wh, [ok, bad])
        assert (result.stored, result.quarantined) == (1, 1)
        assert wh.query("SELECT message_id FROM events").to_pylist() == [{"message_id": "ok"}]
        assert wh.query("SELECT message_id FROM quarantine").to_pylist() == [{"message_id": "bad"}]


def _nestloop_setting(wh: Warehouse) -> Any:  # a prepared read that reports how it was planned
    return wh.ibis.sql("SELECT current_setting('enable_nestloop') AS setting")


def test_postgresql_plans_analytics_without_nested_loops_and_point_reads_with_them(postgres_url: str) -> None:
    """A filtered common table expression is estimated at a row or two, and nested loops over it cost the
    demo's funnel minutes: sessions plan without them; a prepared read (one customer's rows by key) turns
    them on for itself only, also when its transaction fails."""

    def session(wh: Warehouse) -> str:
        return str(wh.query("SHOW enable_nestloop").to_pylist()[0]["enable_nestloop"])

    with Warehouse.open(postgres_url) as wh:
        assert session(wh) == "off"
        assert wh.prepared(_nestloop_setting).to_pylist() == [{"setting": "on"}]
        assert session(wh) == "off"
        with pytest.raises(RuntimeError), wh.write():
            assert wh.prepared(_nestloop_setting).to_pylist() == [{"setting": "on"}]
            raise RuntimeError("the transaction fails after the read")
        assert session(wh) == "off"
