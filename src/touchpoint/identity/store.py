"""Reading and writing the identity tables: full replacement, keyed replacement, state, overrides.

Every table is declared in :mod:`touchpoint.warehouse.schema` and exists from the first migration
on. A full rebuild replaces each table's rows; an incremental update replaces only the rows of the
components it recomputed (delete the rows whose key is among the recomputed ones, insert the new
ones). Either way the rows are computed first, on the caller's connection, and then written in
one short transaction through the warehouse contract, so readers see the old tables or the new,
never a mix, and the collector's commits wait only for the swap.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Concatenate, ParamSpec, TypeVar

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.errors import NotFound
from touchpoint.identity import tables as T
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.clock import utcnow

P = ParamSpec("P")
R = TypeVar("R")
SECTION = "identity"
#: The identity state's version: 2 since the tables include ``event_identities``, 3 since its rows carry
#: each event's kind, times and properties (:func:`event_rows`).
STATE_VERSION = 3
#: The first version whose ``event_identities`` maps every resolved event to its node.
INDEXED_VERSION = 2


def alone(fn: Callable[Concatenate[Warehouse, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """Run an identity operation (read the graph, compute, write it back) with no other one at once:
    a job's incremental update and a command's rebuild would otherwise both append their rows."""

    @functools.wraps(fn)
    def run(wh: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        with wh.exclusive(SECTION):
            return fn(wh, *args, **kwargs)

    return run


now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def _first_row(wh: Warehouse, name: str) -> ir.Table:
    t = wh.table(name)
    return t.select(t.columns[0]).limit(1)


def has_rows(wh: Warehouse, name: str) -> bool:
    """Whether the table ``name`` holds any row."""
    return bool(wh.prepared(_first_row, key=name).num_rows)


def resolved(wh: Warehouse) -> bool:
    """Whether identities have been resolved at least once: the node table has rows."""
    return has_rows(wh, T.NODES)


def events_indexed(wh: Warehouse) -> bool:
    """Whether ``event_identities`` is maintained: the identity state is of version 2 or later (tables
    resolved before it existed are rebuilt by the next update)."""
    return int(read_state(wh).get("version") or 0) >= INDEXED_VERSION


def events_carried(wh: Warehouse, state: dict[str, Any] | None = None) -> bool:
    """Whether ``event_identities`` also carries each event's kind, times and properties (version 3)."""
    return int((read_state(wh) if state is None else state).get("version") or 0) >= STATE_VERSION


#: The columns of ``events`` that ``event_identities`` carries besides the node.
CARRIED = ("type", "event", "timestamp", "received_at", "properties")


def event_rows(nodes: ir.Table, events: ir.Table) -> ir.Table:
    """``event_identities`` rows: ``nodes`` (``message_id, node_id``: each resolved event's node) with
    the event's :data:`CARRIED` columns from ``events`` (the events just resolved)."""
    ev = events.select("message_id", *CARRIED).rename(tp_mid="message_id")
    j = nodes.join(ev, nodes.message_id == ev.tp_mid)
    return j.select(nodes.message_id, nodes.node_id, *[j[c] for c in CARRIED])


def require_resolved(wh: Warehouse) -> None:
    """Raise :class:`~touchpoint.errors.NotFound` unless identities have been resolved."""
    if not resolved(wh):
        raise NotFound(
            "identities have not been resolved in this warehouse yet",
            hint="run `touchpoint profiles rebuild` (or touchpoint.identity.rebuild(wh))",
        )


def typed(expr: ir.Table, schema: ibis.Schema) -> ir.Table:
    """``expr``'s columns named in ``schema``, cast to their types, in its order."""
    return expr.select(*[expr[c].cast(schema[c]).name(c) for c in schema.names])


def replace_table(wh: Warehouse, name: str, expr: ir.Table, schema: ibis.Schema) -> None:
    """Replace the rows of ``name`` with the rows of ``expr`` cast to ``schema``."""
    replace_tables(wh, [(name, expr, schema)])


def replace_tables(wh: Warehouse, tables: list[tuple[str, ir.Table, ibis.Schema]]) -> None:
    """Replace the rows of several tables in one transaction (rows computed before it starts)."""
    with ExitStack() as stack:
        ready = [(name, stack.enter_context(wh.staged(typed(expr, schema)))) for name, expr, schema in tables]
        with wh.write() as tx:
            for name, rows in ready:
                tx.replace(name, rows)


def replace_rows(
    wh: Warehouse, steps: list[tuple[str, str, ir.Table | None, ir.Table | pa.Table | None, ibis.Schema]]
) -> None:
    """In one transaction, for each ``(table, key, keys, rows, schema)``: delete the rows whose
    ``key`` is in ``keys`` (a one-column expression) and insert ``rows``."""
    with ExitStack() as stack:
        ready = []
        for table, key, keys, rows, schema in steps:
            staged_keys = stack.enter_context(wh.staged(keys)) if keys is not None else None
            if isinstance(rows, pa.Table):  # Arrow rows (built in memory) are already in the schema
                staged_rows: pa.Table | ir.Table | None = rows
            else:
                staged_rows = stack.enter_context(wh.staged(typed(rows, schema))) if rows is not None else None
            ready.append((table, key, staged_keys, staged_rows))
        with wh.write() as tx:
            for table, key, staged_keys, staged_rows in ready:
                if staged_keys is not None:
                    assert isinstance(staged_keys, ir.Table)
                    tx.delete(table, key, staged_keys[staged_keys.columns[0]])
                if staged_rows is not None:
                    tx.append(table, staged_rows)


def append(wh: Warehouse, name: str, rows: pa.Table | ir.Table) -> None:
    wh.append(name, rows)


# -- state -----------------------------------------------------------------------------------------
def _state(wh: Warehouse) -> ir.Table:
    return wh.table(T.STATE)


def read_state(wh: Warehouse) -> dict[str, Any]:
    """The last resolution's state (watermark, rules, counts), or ``{}`` if identities were never built."""
    rows = wh.prepared(_state).to_pylist()
    return {r["key"]: json.loads(r["value"]) for r in rows}


def write_state(wh: Warehouse, state: dict[str, Any]) -> None:
    rows = pa.table(
        {"key": list(state), "value": [json.dumps(v, default=str) for v in state.values()]},
        schema=T.STATE_SCHEMA.to_pyarrow(),
    )
    wh.replace(T.STATE, rows)


def overrides(wh: Warehouse) -> ir.Table:
    return wh.table(T.OVERRIDES)


def merge_log_rows(rows: list[dict[str, Any]]) -> pa.Table:
    schema = T.MERGE_LOG_SCHEMA.to_pyarrow()
    cols = {name: [r.get(name) for r in rows] for name in schema.names}
    return pa.table(cols, schema=schema)
