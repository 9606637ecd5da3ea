"""Prepared reads: compiled once, run with bound values, equal to the ordinary read, and compiled anew when
a table they read is defined anew."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.warehouse import Warehouse, duckdb_engine


def _people(wh: Warehouse, name: str) -> ir.Table:
    t = wh.table("people")
    return t.filter(t.name == name).order_by("age")


def _count(wh: Warehouse, name: str) -> ir.Scalar:
    t = wh.table("people")
    return t.filter(t.name == name).count()


def _ages(wh: Warehouse, name: str, other: str) -> ir.Column:
    t = wh.table("people")
    return t.filter((t.name == name) | (t.name == other)).order_by("age").age


def _like(wh: Warehouse, text: str) -> ir.Table:
    t = wh.table("people")
    return t.filter(t.name.like(f"%{text}%")).order_by("age")  # the value is pasted into a pattern


def _memory(wh: Warehouse, name: str) -> ir.Table:
    t = ibis.memtable({"name": ["ann", "bob"]})
    return t.filter(t.name == name)


def _unused(wh: Warehouse, name: str) -> ir.Scalar:
    return wh.table("people").count()


@pytest.fixture
def wh() -> Any:
    duckdb_engine._PREPARED.clear()  # the cache is the process's: each test starts without it
    w = Warehouse.open("duckdb://:memory:")
    w.ibis.raw_sql("CREATE TABLE people (name VARCHAR, age BIGINT, seen TIMESTAMP)")
    w.ibis.raw_sql(
        "INSERT INTO people VALUES ('ann', 30, '2026-01-01 10:00:00'), ('bob', 40, NULL), ('ann', 20, NULL),"
        " ('o''neil', 50, NULL)"
    )
    yield w
    w.close()


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = duckdb_engine.prepared.compile_with_markers

    def counting(build: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(build.__qualname__)
        return real(build, *args, **kwargs)

    monkeypatch.setattr(duckdb_engine.prepared, "compile_with_markers", counting)
    return seen


def test_a_prepared_read_equals_the_ordinary_one_and_compiles_once(wh: Warehouse, monkeypatch: Any) -> None:
    compiles = _compiles(monkeypatch)
    for name in ["ann", "bob", "o'neil", "nobody", "ann"]:
        assert wh.prepared(_people, name).equals(wh.to_arrow(_people(wh, name)))
        assert wh.prepared(_count, name).as_py() == wh.to_arrow(_count(wh, name)).as_py()
        assert wh.prepared(_ages, name, "bob").to_pylist() == wh.to_arrow(_ages(wh, name, "bob")).to_pylist()
    assert sorted(compiles) == ["_ages", "_count", "_people"]
    assert wh.prepared(_people, "ann").schema == pa.schema(
        [("name", pa.string()), ("age", pa.int64()), ("seen", pa.timestamp("us"))]
    )


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=30))
def test_any_value_is_bound_never_pasted(text: str) -> None:
    wh = Warehouse.open("duckdb://:memory:")
    wh.ibis.raw_sql("CREATE TABLE people (name VARCHAR, age BIGINT, seen TIMESTAMP)")
    wh.ibis.raw_sql("INSERT INTO people VALUES ('ann', 30, NULL)")
    wh.ibis.con.execute("INSERT INTO people VALUES ($1, 1, NULL)", [text])
    assert wh.prepared(_count, text).as_py() == 1 + (text == "ann")
    assert wh.prepared(_count, text + "x").as_py() == (text + "x" == "ann")
    wh.close()


def test_a_table_defined_anew_is_compiled_again(wh: Warehouse, monkeypatch: Any) -> None:
    compiles = _compiles(monkeypatch)
    assert wh.prepared(_people, "ann").num_rows == 2
    wh.query("CREATE OR REPLACE TABLE people AS SELECT name, age, seen FROM people")  # same columns
    assert wh.prepared(_people, "ann").num_rows == 2
    assert compiles == ["_people"]
    wh.query("ALTER TABLE people ADD COLUMN city VARCHAR")  # raw SQL that is not a read: checked again
    out = wh.prepared(_people, "ann")
    assert out.column_names == ["name", "age", "seen", "city"] and compiles == ["_people", "_people"]
    wh.ibis.raw_sql("ALTER TABLE people ADD COLUMN zip VARCHAR")  # behind the warehouse's back, then said
    wh.schema_changed()
    assert wh.prepared(_people, "ann").column_names[-1] == "zip" and len(compiles) == 3


def test_a_column_dropped_behind_the_back_is_found_when_the_read_fails(wh: Warehouse, monkeypatch: Any) -> None:
    compiles = _compiles(monkeypatch)
    assert wh.prepared(_people, "ann").column_names == ["name", "age", "seen"]
    wh.ibis.raw_sql("ALTER TABLE people DROP COLUMN seen")  # not said: the cached SQL names a missing column
    out = wh.prepared(_people, "ann")
    assert out.column_names == ["name", "age"] and out.num_rows == 2 and compiles == ["_people", "_people"]


def test_the_catalog_is_checked_once_per_schema_epoch(wh: Warehouse, monkeypatch: Any) -> None:
    checks: list[tuple[str, ...]] = []
    real = duckdb_engine._definitions

    def counting(backend: Any, tables: tuple[str, ...]) -> Any:
        checks.append(tables)
        return real(backend, tables)

    monkeypatch.setattr(duckdb_engine, "_definitions", counting)
    for name in ["ann", "bob", "ann"]:
        wh.prepared(_people, name)
    assert checks == [("people",)]  # compiled once, checked at compile time only
    wh.query("SELECT count(*) FROM people")  # a read does not move the epoch
    wh.prepared(_people, "ann")
    assert len(checks) == 1
    wh.schema_changed()
    wh.prepared(_people, "ann")
    wh.prepared(_people, "bob")
    assert len(checks) == 2  # once after the change
    other = Warehouse.open("duckdb://:memory:")  # another warehouse: its tables are checked on its first use
    try:
        other.ibis.raw_sql("CREATE TABLE people (name VARCHAR, age BIGINT, seen TIMESTAMP)")
        assert other.prepared(_people, "ann").num_rows == 0
        assert len(checks) == 3
    finally:
        other.close()


def test_what_cannot_be_cached_runs_as_an_ordinary_read(wh: Warehouse, monkeypatch: Any) -> None:
    compiles = _compiles(monkeypatch)
    for _ in range(2):
        assert wh.prepared(_like, "nn").column("age").to_pylist() == [20, 30]
        assert wh.prepared(_memory, "bob").num_rows == 1
        assert wh.prepared(_unused, "x").as_py() == 4
    assert compiles == ["_like", "_memory", "_unused"] * 2  # compiled each time, never cached
    wh.ibis.raw_sql("CREATE TEMP TABLE people_now AS SELECT * FROM people")

    def _temp(w: Warehouse, name: str) -> ir.Scalar:
        return w.table("people_now").count()

    with pytest.raises(ValueError, match="captures"):  # a closure's captured values are not in the key
        wh.prepared(lambda w, n: _count(w, n + compiles[0]), "ann")
    assert wh.prepared(_temp, "ann").as_py() == 4


def test_the_default_engine_method_builds_every_time() -> None:
    from touchpoint.warehouse.base import Warehouse as Base

    class Fake:
        def to_arrow(self, expr: Any) -> Any:
            return ("ran", expr)

    assert Base.prepared(Fake(), lambda w, n: n, "v") == ("ran", "v")  # type: ignore[arg-type]
