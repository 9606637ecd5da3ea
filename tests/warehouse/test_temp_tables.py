"""DuckDB's cheaper temporary tables and compilations (docs/decisions.md, 2026-12-03, issue 15) give what the
contract's default did: the same rows in the same Ibis types, tables' schemas read again when they change,
scratch names that repeat, values bound as literals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest

from touchpoint.collect.store import write_messages
from touchpoint.identity import components
from touchpoint.identity.components import Scratch
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.duckdb_engine import DuckDBWarehouse


@pytest.fixture
def wh() -> Any:
    w = Warehouse.open("duckdb://:memory:")
    write_messages(
        w,
        [
            {"type": "track", "userId": f"u{i % 3}", "event": "Signed Up", "messageId": f"m{i}", "timestamp": t}
            for i, t in enumerate(["2026-01-01T10:00:00Z", "2026-01-02T10:00:00.123456Z", "2026-01-03T10:00:00Z"] * 2)
        ],
    )
    yield w
    w.close()


def _both(wh: DuckDBWarehouse, rows: ir.Table) -> tuple[tuple[Any, list[dict[str, Any]]], ...]:
    """``rows`` staged by the DuckDB adapter and by the contract's default: (schema, sorted rows) of each."""
    out = []
    for staged in (wh.staged(rows), Warehouse.staged(wh, rows)):
        with staged as table:
            assert isinstance(table, ir.Table)
            got = wh.to_arrow(table).to_pylist()
            out.append((table.schema(), sorted(got, key=repr)))
    return tuple(out)


def test_a_staged_expression_has_the_ibis_types_and_rows_of_the_default(wh: DuckDBWarehouse) -> None:
    e = wh.table("events")
    per_user = e.group_by("user_id").agg(n=e.count(), total=e.timestamp.epoch_seconds().sum(), last=e.timestamp.max())
    ours, default = _both(wh, per_user)
    assert ours == default
    assert ours[0] == per_user.schema()  # a DuckDB sum of integers (HUGEINT) is stored as Ibis's int64


@pytest.mark.parametrize(
    "data",
    [
        pa.table({"id": ["a", "b", None], "n": pa.array([1, None, 3], pa.int64())}),  # bound as lists
        pa.table({"at": pa.array([datetime(2026, 1, 1, 10, 0, 0, 123456), None], pa.timestamp("us"))}),
        pa.table({"day": pa.array([datetime(2026, 1, 1).date()], pa.date32()), "x": [[1, 2]]}),  # through Arrow
        pa.table({"id": pa.array([], pa.string())}),
    ],
)
def test_a_staged_in_memory_table_has_the_rows_and_types_of_the_default(wh: DuckDBWarehouse, data: pa.Table) -> None:
    ours, default = _both(wh, ibis.memtable(data))
    assert ours == default
    assert ours[1] == sorted(data.to_pylist(), key=repr)


def test_staged_names_repeat_across_blocks_and_differ_while_open(wh: DuckDBWarehouse) -> None:
    rows = ibis.memtable(pa.table({"id": ["a"]}))
    with wh.staged(rows) as first, wh.staged(rows) as second:
        assert isinstance(first, ir.Table) and isinstance(second, ir.Table)
        names = (first.op().name, second.op().name)  # type: ignore[attr-defined]
    assert names[0] != names[1]
    with wh.staged(rows) as again:
        assert isinstance(again, ir.Table)
        assert again.op().name == names[0]  # type: ignore[attr-defined]
    assert not wh.query(f"SELECT * FROM duckdb_tables() WHERE temporary AND table_name IN {names}").num_rows


def test_scratch_names_repeat_across_blocks_and_differ_when_nested(wh: DuckDBWarehouse) -> None:
    with Scratch(wh) as outer:
        with Scratch(wh) as inner:
            assert inner.prefix != outer.prefix
        prefix = outer.prefix
    with Scratch(wh) as again:
        assert again.prefix == prefix


def test_a_declared_tables_schema_is_read_again_after_a_schema_change(wh: DuckDBWarehouse) -> None:
    assert "extra" not in wh.table("events").columns
    wh.query("ALTER TABLE events ADD COLUMN extra VARCHAR")  # not a read: the schema epoch moves
    assert "extra" in wh.table("events").columns
    wh.ibis.raw_sql("ALTER TABLE events DROP COLUMN extra")  # behind the warehouse's back, then said
    wh.schema_changed()
    assert "extra" not in wh.table("events").columns


def _since(events: ir.Table, since: str) -> ir.Table:
    return events.filter(events.timestamp >= ibis.literal(since).cast("timestamp")).select("message_id")


def test_save_query_binds_values_as_literals_compiled_once(wh: DuckDBWarehouse, monkeypatch: Any) -> None:
    compiled = []
    compile_sql = type(wh.ibis).compile

    def counting(self: Any, expr: Any, **kwargs: Any) -> Any:
        compiled.append(expr)
        return compile_sql(self, expr, **kwargs)

    with Scratch(wh) as s:
        monkeypatch.setattr(type(wh.ibis), "compile", counting)
        found = []
        for since in ("2026-01-02T00:00:00", "2026-01-03T00:00:00", "2027-01-01T00:00:00"):
            t = s.save_query("since", ("test",), _since, values={"since": since}, events=wh.table("events"))
            found.append(len(wh.to_arrow(t)))
        assert found == [4, 2, 0]
        builds = [e for e in compiled if e.op().find(ibis.expr.operations.UnboundTable)]
        assert len(builds) == 1  # the query was built and compiled once, for three values
        with pytest.raises(ValueError, match="quote"):
            s.save_query("since", ("test",), _since, values={"since": "x' OR 1=1 --"}, events=wh.table("events"))
    components._COMPILED.clear()


def test_an_expression_is_compiled_once_per_thread_and_an_in_memory_one_every_time(
    wh: DuckDBWarehouse, monkeypatch: Any
) -> None:
    from ibis.backends.duckdb import Backend

    calls = []
    original = Backend.compile

    def counting(self: Any, expr: Any, **kwargs: Any) -> Any:
        calls.append(expr)
        return original(self, expr, **kwargs)

    monkeypatch.setattr(Backend, "compile", counting)

    def signups(user: str) -> ir.Scalar:
        e = wh.table("events")
        return e.filter(e.user_id == user).count()

    assert [wh.to_arrow(signups("u0")).as_py(), wh.to_arrow(signups("u0")).as_py()] == [2, 2]
    assert len(calls) == 1  # built twice, compiled once
    assert wh.to_arrow(signups("u1")).as_py() == 2
    assert len(calls) == 2  # another literal: another query
    ids = [ibis.memtable(pa.table({"user_id": ["u0"]})) for _ in range(2)]
    assert [wh.to_arrow(wh.table("events").semi_join(t, "user_id").count()).as_py() for t in ids] == [2, 2]
    assert len(calls) == 4  # an in-memory table is a new table each time
