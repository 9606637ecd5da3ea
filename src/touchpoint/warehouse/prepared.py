"""Reads that Ibis builds and compiles once per process, then the engine runs with bound parameters.

A page or an API read of one customer runs a dozen small queries, each a handful of milliseconds in the
engine; building the Ibis expression, looking up its tables' schemas and compiling it to SQL costs ten times
that. :meth:`touchpoint.warehouse.Warehouse.prepared` takes a *builder* (a module-level function ``build(wh,
*values) -> expression``) and string values. The first call builds the expression over marker strings,
compiles it, and replaces each marker's SQL literal with a bound parameter; later calls run the cached SQL
with the values bound (never pasted into the text) and convert the result as Ibis would have. What shapes the
query rather than filling it (a table's name, how many values a list has) is the ``key``: the builder gets it
as its first argument after the warehouse, ``build(wh, key, *values)``.

The cache is keyed by the builder and the key, and checked against the definitions of the tables it reads, so
a table created anew with other columns is compiled again. The check is a catalog query (about 2 ms of CPU,
more than most of these reads), so an engine may make it once per *schema epoch*: DuckDB's moves with
migrations, compaction, raw SQL that is not a read (:meth:`~touchpoint.warehouse.Warehouse.query`) and
``schema_changed()``, and a read whose SQL fails or returns other columns than compiled is checked at once
(DDL run behind the warehouse's back). What cannot be cached runs as an ordinary read, each time: an
expression over in-memory or temporary tables, or one whose markers did not come out as whole literals (a
value the builder parsed, or pasted into a longer string).

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "track", "userId": "u1", "event": "Signed Up"}])
>>> def signups(wh, user):
...     e = wh.table("events")
...     return e.filter(e.user_id == user).count()
>>> wh.prepared(signups, "u1").as_py(), wh.prepared(signups, "u2").as_py(), wh.prepared(signups, "x'; --").as_py()
(1, 0, 0)

"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir

#: At most this many reads are kept compiled per process (the cache starts afresh beyond).
MAX_CACHED = 1024
#: A builder: a module-level function ``build(wh, *values)`` (``build(wh, key, *values)`` with a key)
#: returning an Ibis expression.
Builder = Callable[..., ir.Expr]


@dataclass(frozen=True)
class Compiled:
    """One builder's SQL with parameters (``$1``...), the expression it came from (for the result's
    types), and the tables it reads with their definitions when it was compiled."""

    sql: str
    expr: ir.Expr
    tables: tuple[str, ...]
    signature: tuple[tuple[str, str], ...]
    names: tuple[str, ...] = ()  # the result's columns (a read that returns others was compiled for other tables)


def cache_key(build: Builder, values: tuple[str, ...], key: Hashable) -> tuple[Hashable, ...]:
    """The cache key of a builder's read; refuses closures (what they capture is not in the key)."""
    if getattr(build, "__closure__", None):
        raise ValueError(
            f"{build.__qualname__} captures variables: a prepared read's builder must be a module-level "
            "function whose expression depends only on its values and key"
        )
    if not all(isinstance(v, str) for v in values):
        raise TypeError("prepared reads bind string values only")
    return (build.__module__, build.__qualname__, key, len(values))


def call(build: Builder, wh: Any, values: tuple[str, ...], key: Hashable) -> ir.Expr:
    """The builder's expression for ``values`` (and ``key``, when there is one)."""
    return build(wh, *values) if key is None else build(wh, key, *values)


def compile_with_markers(
    build: Builder,
    wh: Any,
    values: tuple[str, ...],
    key: Hashable,
    compile_sql: Callable[[ir.Expr], str],
    placeholder: str,
) -> tuple[ir.Expr, str | None, tuple[str, ...]]:
    """Build the expression over markers and compile it: ``(expr, sql with parameters, tables)``; the
    SQL is None when the expression cannot be cached (see the module's doc). ``placeholder`` is the
    engine's parameter syntax with ``{n}`` for the 1-based position (``$1``)."""
    tag = uuid.uuid4().hex
    markers = tuple(f"tp-param-{i}-{tag}" for i in range(len(values)))
    expr = call(build, wh, markers, key)
    node = expr.op()
    if node.find((ops.InMemoryTable, ops.SQLQueryResult, ops.SQLStringView)):
        return expr, None, ()
    tables = tuple(sorted({t.name for t in node.find(ops.DatabaseTable)}))
    sql = compile_sql(expr)
    if not all(f"'{marker}'" in sql for marker in markers):  # a value the query does not bind
        return expr, None, tables
    for n, marker in enumerate(markers, start=1):
        sql = sql.replace(f"'{marker}'", placeholder.format(n=n))
    if tag in sql:  # a marker outside a whole literal: the value shapes the query, not only binds to it
        return expr, None, tables
    return expr, sql, tables


#: What :func:`joined` puts between values (the ASCII unit separator: no identifier this code makes holds it).
SEP = "\x1f"


def joined(values: list[str]) -> str | None:
    """``values`` as one string to bind (:func:`listed` splits it in the engine); ``None`` when a value
    holds :data:`SEP` (the caller then reads without a prepared query)."""
    if any(SEP in v for v in values):
        return None
    return SEP.join(values)


def listed(value: str, name: str) -> ir.Table:
    """A one-column table ``name`` of the values :func:`joined` put in ``value`` (a builder's marker): a
    list of any length as ONE bound parameter, so a read of "these profiles" compiles once for every list
    (an ``isin`` of literals compiles anew for each list, and an in-memory table is never cached)."""
    import ibis

    return ibis.literal(value, "string").split(SEP).unnest().name(name).as_table()
