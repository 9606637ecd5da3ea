"""A few rows are inserted as bound VALUES on DuckDB (the Arrow view costs more than the insert): the rows
stored, the counts returned and the conflicts are the same as through the Arrow path, whatever the values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint.warehouse import Warehouse, duckdb_engine

COLUMNS = "id VARCHAR PRIMARY KEY, n BIGINT, s VARCHAR, t TIMESTAMP, d DATE, x DOUBLE, f FLOAT, b BOOLEAN, j JSON"
TYPES = [pa.string(), pa.int64(), pa.string(), pa.timestamp("us"), pa.date32(), pa.float64(), pa.float32()]
TYPES += [pa.bool_(), pa.string()]
NAMES = ["id", "n", "s", "t", "d", "x", "f", "b", "j"]

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
row = st.tuples(
    st.text(alphabet="abc\x00é", min_size=1, max_size=3),
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | text,
    st.none() | st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)),
    st.none() | st.dates(),
    st.none() | st.floats(allow_nan=False),
    st.none() | st.floats(width=32, allow_nan=False),
    st.none() | st.booleans(),
    st.none() | st.sampled_from(['{"a": 1}', "[1, 2.5, null]", '"\\u0000"', "{}"]),
)


def _table(rows: list[tuple[Any, ...]]) -> pa.Table:
    return pa.table([pa.array([r[i] for r in rows], t) for i, t in enumerate(TYPES)], names=NAMES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(row, max_size=8), second=st.lists(row, max_size=8))
def test_small_inserts_store_what_the_arrow_path_stores(
    first: list[tuple[Any, ...]], second: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for small in (len(NAMES) * 8, 0):  # bound VALUES, then the Arrow view
        monkeypatch.setattr(duckdb_engine, "SMALL_INSERT_VALUES", small)
        wh = Warehouse.open("duckdb://:memory:")
        try:
            wh.ibis.raw_sql(f"CREATE TABLE t ({COLUMNS})")
            counts = []
            with wh.write() as tx:
                counts.append(tx.insert_new("t", _table(first)))
                counts.append(tx.upsert("t", _table(list({r[0]: r for r in second}.values())), key=["id"]))
                counts.append(tx.append("t", _table([])))
            stored = wh.query("SELECT * FROM t ORDER BY id")
            results.append((counts, stored.schema, stored.to_pylist()))
        finally:
            wh.close()
    assert results[0] == results[1]


def test_a_time_zone_or_many_rows_take_the_arrow_path() -> None:
    aware = pa.array([dt.datetime(2026, 3, 29, 1, 30)], pa.timestamp("us", tz="Europe/Stockholm"))
    assert not duckdb_engine._bindable(aware.type)
    assert duckdb_engine._bindable(pa.timestamp("us")) and duckdb_engine._bindable(pa.null())
    wh = Warehouse.open("duckdb://:memory:")
    try:
        wh.ibis.raw_sql("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        with wh.write() as tx:
            n = duckdb_engine.SMALL_INSERT_VALUES + 1  # one column: one value a row
            assert tx.insert_new("t", pa.table({"id": list(range(n))})) == n
            assert tx.insert_new("t", pa.table({"id": [0, n]})) == 1
        assert wh.count("t") == n + 1
    finally:
        wh.close()
