"""Reading and writing the identity tables: full replacement, keyed replacement, state, overrides.

A full rebuild replaces each table with ``create_table(..., overwrite=True)``. An incremental
update replaces only the rows of the components it recomputed: ``DELETE ... WHERE key IN
(subquery)`` then ``INSERT INTO ... SELECT``, all in one transaction. Both statements are
standard SQL around subqueries that Ibis compiles for the engine, so they run on DuckDB and
PostgreSQL alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.identity import tables as T
from touchpoint.warehouse import Warehouse


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def exists(wh: Warehouse, name: str) -> bool:
    return name in wh.ibis.list_tables()


def ensure_tables(wh: Warehouse) -> None:
    """Create the tables that are not derived (overrides, merge log, state) if they are missing."""
    con = wh.ibis
    for name, schema in (
        (T.OVERRIDES, T.OVERRIDES_SPEC.schema),
        (T.MERGE_LOG, T.MERGE_LOG_SCHEMA),
        (T.STATE, T.STATE_SCHEMA),
    ):
        if not exists(wh, name):
            con.create_table(name, schema=schema)


def replace_table(wh: Warehouse, name: str, expr: ir.Table, schema: ibis.Schema) -> None:
    """Replace ``name`` with the rows of ``expr`` cast to ``schema``."""
    typed = expr.select(*[expr[c].cast(schema[c]).name(c) for c in schema.names])
    wh.ibis.create_table(name, typed, overwrite=True)


def replace_rows(wh: Warehouse, steps: list[tuple[str, str, ir.Table | None, ir.Table | None, ibis.Schema]]) -> None:
    """In one transaction, for each ``(table, key, keys, rows, schema)``: delete the rows whose
    ``key`` is in ``keys`` (a one-column expression) and insert ``rows``."""
    con = wh.adapter.raw
    compile_ = wh.ibis.compile
    with wh.adapter.transaction(con):
        for table, key, keys, rows, schema in steps:
            if keys is not None:
                con.execute(f"DELETE FROM {_q(table)} WHERE {_q(key)} IN ({compile_(keys)})")
            if rows is not None:
                typed = rows.select(*[rows[c].cast(schema[c]).name(c) for c in schema.names])
                cols = ", ".join(_q(c) for c in schema.names)
                con.execute(f"INSERT INTO {_q(table)} ({cols}) {compile_(typed)}")


def append(wh: Warehouse, name: str, rows: pa.Table | ir.Table) -> None:
    wh.ibis.insert(name, rows)


# -- state -----------------------------------------------------------------------------------------
def read_state(wh: Warehouse) -> dict[str, Any]:
    """The last resolution's state (watermark, rules, counts), or ``{}`` if identities were never built."""
    if not exists(wh, T.STATE):
        return {}
    rows = wh.to_arrow(wh.table(T.STATE)).to_pylist()
    return {r["key"]: json.loads(r["value"]) for r in rows}


def write_state(wh: Warehouse, state: dict[str, Any]) -> None:
    rows = pa.table(
        {"key": list(state), "value": [json.dumps(v, default=str) for v in state.values()]},
        schema=T.STATE_SCHEMA.to_pyarrow(),
    )
    wh.ibis.create_table(T.STATE, rows, overwrite=True)


def overrides(wh: Warehouse) -> ir.Table:
    ensure_tables(wh)
    return wh.table(T.OVERRIDES)


def merge_log_rows(rows: list[dict[str, Any]]) -> pa.Table:
    schema = T.MERGE_LOG_SCHEMA.to_pyarrow()
    cols = {name: [r.get(name) for r in rows] for name in schema.names}
    return pa.table(cols, schema=schema)
