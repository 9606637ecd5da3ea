"""The warehouse contract on every engine (DuckDB, PostgreSQL): declared tables, NotFound, transactions, many
threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest

from touchpoint import identity, profiles
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.errors import AlreadyExists, NotFound, WarehouseError
from touchpoint.experiments.definitions import Experiment, create_experiment, get_experiment, update_weights
from touchpoint.warehouse import Warehouse, migrations, schema
from touchpoint.warehouse.adapters import ADAPTERS, engine_for
from touchpoint.warehouse.duckdb_engine import DuckDBWarehouse
from touchpoint.warehouse.postgres_engine import PostgresWarehouse

DECLARED = {spec.name for spec in schema.all_tables()}  # every TableSpec of the schema module


@pytest.fixture
def wh(warehouse_url: str) -> Iterator[Warehouse]:
    warehouse = Warehouse.open(warehouse_url)
    yield warehouse
    warehouse.close()


def _visits(prefix: str, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append({"type": "page", "anonymousId": f"{prefix}-a{i}", "messageId": f"{prefix}-p{i}"})
        out.append(
            {
                "type": "identify",
                "anonymousId": f"{prefix}-a{i}",
                "userId": f"{prefix}-u{i}",
                "messageId": f"{prefix}-i{i}",
            }
        )
    return out


def test_every_engine_is_a_warehouse_and_opens_by_scheme(wh: Warehouse) -> None:
    assert all(issubclass(cls, Warehouse) for cls in ADAPTERS.values())
    assert type(wh) is engine_for(wh.url)
    assert isinstance(wh, {"duckdb": DuckDBWarehouse, "postgresql": PostgresWarehouse}[wh.url.split(":")[0]])
    assert ADAPTERS["postgres"] is ADAPTERS["postgresql"] is PostgresWarehouse


def test_every_table_is_declared_by_a_migration_and_none_is_created_on_use(wh: Warehouse) -> None:
    assert set(wh.tables()) == DECLARED
    assert migrations.pending(wh) == []
    write_messages(wh, _visits("x", 3))
    identity.rebuild(wh)
    profiles.build(wh)
    identity.update(wh)
    assert set(wh.tables()) == DECLARED  # nothing created, no scratch table left behind
    assert wh.count("profiles") == 3


def test_table_raises_not_found_only_for_a_missing_table(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    assert wh.table("events").columns[0] == "message_id"
    with pytest.raises(NotFound, match="no table 'nope'"):
        wh.table("nope")

    backend = wh.ibis

    def broken(name: str, **kwargs: object) -> object:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(backend, "table", broken)
    if hasattr(wh, "schema_changed"):
        wh.schema_changed()  # DuckDB keeps a declared table's schema per epoch: the read above is not asked again
    with pytest.raises(RuntimeError, match="caught fire") as info:
        wh.table("events")
    assert not isinstance(info.value, NotFound)


def test_a_closed_warehouse_says_so_instead_of_not_found(warehouse_url: str) -> None:
    warehouse = Warehouse.open(warehouse_url)
    warehouse.close()
    with pytest.raises(Exception) as info:
        warehouse.table("events")
    assert not isinstance(info.value, NotFound)


def test_a_transaction_commits_all_or_nothing_and_nested_writes_join_it(wh: Warehouse) -> None:
    rows = pa.table({"kind": ["split"], "id_type": ["user_id"], "id_value": ["u1"]})
    with pytest.raises(ZeroDivisionError), wh.write() as tx:
        tx.append("identity_overrides", rows)
        with wh.write() as inner:  # joins the outer transaction
            inner.append("identity_overrides", rows)
        assert wh.count("identity_overrides") == 2  # this thread sees its own writes
        _ = 1 / 0
    assert wh.count("identity_overrides") == 0
    with wh.write() as tx:
        tx.append("identity_overrides", rows)
        tx.replace("identity_state", pa.table({"key": ["k"], "value": ["1"]}))
    assert wh.count("identity_overrides") == 1 and wh.count("identity_state") == 1
    wh.delete("identity_overrides", "id_value", ["u1"])
    assert wh.count("identity_overrides") == 0


def test_replace_from_an_expression_keeps_the_declared_schema(wh: Warehouse) -> None:
    write_messages(wh, _visits("r", 4))
    declared = wh.table("identity_recent").schema()
    assert declared.names == schema.IDENTITY_RECENT.schema.names
    events = wh.table("events")
    recent = events.select("received_at", "message_id", extra=events.type)
    with pytest.raises(Exception, match="extra"):  # a column the table does not declare is refused
        wh.replace("identity_recent", recent)
    assert wh.replace("identity_recent", recent.drop("extra")) == 8
    assert wh.table("identity_recent").schema() == declared
    assert set(wh.tables()) == DECLARED  # the staging table is gone


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]  # re-raises the first error of any thread


def test_many_threads_read_and_write_through_the_library(wh: Warehouse) -> None:
    write_messages(wh, _visits("seed", 20))
    identity.rebuild(wh)
    profiles.build(wh)
    stop = threading.Event()
    seen_profiles: list[int] = []
    seen_events: list[list[int]] = []

    def writer(w: int) -> int:
        total = 0
        for batch in range(5):
            total += write_messages(wh, _visits(f"w{w}b{batch}", 10)).stored
        return total

    def rebuilder() -> None:
        for _ in range(3):
            identity.update(wh)
            profiles.build(wh)

    def reader() -> None:
        counts: list[int] = []
        seen_events.append(counts)
        while not stop.is_set():
            counts.append(wh.count("events"))
            seen_profiles.append(wh.count("profiles"))
            t = wh.table("profiles")
            assert wh.to_arrow(t.filter(t.user_id == "seed-u3").select("profile_id")).num_rows == 1

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        stored = _run_all([lambda w=w: writer(w) for w in range(4)] + [rebuilder])  # type: ignore[misc]
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert stored[:4] == [100, 100, 100, 100]
    assert wh.count("events") == 40 + 400
    assert all(counts == sorted(counts) for counts in seen_events)  # a reader never sees events vanish
    assert min(seen_profiles) >= 20  # a profile rebuild swaps the table whole: never seen empty or half
    identity.update(wh)
    profiles.build(wh)
    assert wh.count("profiles") == 20 + 200


def test_the_write_lock_serialises_check_then_write(wh: Warehouse) -> None:
    def create() -> str:
        try:
            create_experiment(wh, Experiment(key="once"))
        except AlreadyExists:
            return "refused"
        return "created"

    outcomes = _run_all([create] * 8)
    assert sorted(outcomes) == ["created"] + ["refused"] * 7

    _run_all([lambda i=i: update_weights(wh, "once", [0.5 + i / 100, 0.5 - i / 100]) for i in range(8)])  # type: ignore[misc]
    assert len(get_experiment(wh, "once").weights_history) == 1 + 8  # no update lost


def test_migration_3_declares_tables_on_a_warehouse_that_made_some_on_first_use(warehouse_url: str) -> None:
    url = warehouse_url
    with Warehouse.open(url) as old:  # as a version-2 warehouse: one table made on use, one never made
        old.append("identity_overrides", pa.table({"kind": ["split"], "id_type": ["email"], "id_value": ["a@b.c"]}))
        old.ibis.drop_table("sessions")
        old.delete("schema_migrations", "version", [3])
    with pytest.raises(WarehouseError, match="needs migrating"):
        Warehouse.open(url, read_only=True)
    with Warehouse.open(url) as wh:
        assert migrations.pending(wh) == []
        assert set(wh.tables()) == DECLARED
        assert wh.count("identity_overrides") == 1  # kept


def test_the_configured_warehouse_never_installs_or_loads_extensions_on_demand(settings: Settings) -> None:
    from touchpoint.warehouse import open_warehouse

    with open_warehouse(settings) as wh:
        row = wh.query(
            "SELECT current_setting('autoinstall_known_extensions') AS install,"
            " current_setting('autoload_known_extensions') AS load"
        ).to_pylist()
        assert row == [{"install": False, "load": False}]
        # what the library uses is linked into the engine: JSON still works
        assert wh.query("SELECT json_extract('{\"a\": 1}', '$.a')::INT AS a").to_pylist() == [{"a": 1}]


def test_a_literal_holding_nul_is_a_value_not_broken_sql(wh: Warehouse) -> None:
    """A hostile id with NUL in it (``"a\\x00b"``) compared with stored text: no match, no broken statement
    (DuckDB's parser ended the SQL text at the NUL: "unterminated quoted string", a 500 over HTTP). DuckDB's
    strings hold NUL, so there a stored one matches; PostgreSQL text cannot hold it, so nothing does."""
    wh.append("sources", pa.table({"name": ["plain"], "write_key_hash": ["h"], "created_at": [datetime(2026, 3, 1)]}))
    t = wh.table("sources")
    for value in ("\x00", "a\x00b", "plain\x00"):
        assert wh.to_arrow(t.filter(t.name == value).count()).as_py() == 0
        assert wh.to_arrow(t.filter(t.name.isin([value, "other"])).count()).as_py() == 0
    assert wh.to_arrow(t.filter(t.name.isin(["plain", "\x00"])).count()).as_py() == 1
    if isinstance(wh, DuckDBWarehouse):
        wh.append(
            "sources", pa.table({"name": ["a\x00b"], "write_key_hash": ["h"], "created_at": [datetime(2026, 3, 1)]})
        )
        assert wh.to_arrow(t.filter(t.name == "a\x00b").name).to_pylist() == ["a\x00b"]
