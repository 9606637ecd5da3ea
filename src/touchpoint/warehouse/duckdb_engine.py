"""Embedded DuckDB: one file, no server, one writing process at a time.

One DuckDB connection is opened per warehouse. Each thread that reads gets its own cursor of it
(a DuckDB cursor is a separate connection to the same database, with its own transaction), wrapped
in its own Ibis backend; a DuckDB connection must never be used by two threads at once. Writes take
their lane's write lock and run in a transaction on the calling thread's cursor; DuckDB's MVCC
lets every reader keep a consistent snapshot meanwhile, and lets the events lane commit while a
main-lane transaction (a profile swap) is open.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
from ibis.expr.schema import Schema

from touchpoint.errors import KeyConflict, NotFound, WarehouseError, WarehouseLocked, WarehouseOutOfMemory
from touchpoint.warehouse import duckdb_compat, prepared
from touchpoint.warehouse.base import WRITE_LANES, MigrationCursor, Transaction, Warehouse, quote, sql_type
from touchpoint.warehouse.lockholder import lock_holder
from touchpoint.warehouse.private_files import make_private, private_dir
from touchpoint.warehouse.schema import all_tables

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ibis.backends.duckdb import Backend as DuckDBBackend


_names = itertools.count()
_PREPARED: dict[tuple[Hashable, ...], prepared.Compiled] = {}  # see Warehouse.prepared
#: the (warehouse, schema epoch) each cached read was last checked against the catalog under
_CHECKED: dict[tuple[Hashable, ...], tuple[int, int]] = {}


def _definitions(backend: DuckDBBackend, tables: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``(name, CREATE statement)`` of the database's own tables among ``tables`` (a recreated table with
    the same columns has the same statement)."""
    if not tables:
        return ()
    rows = backend.con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND NOT temporary AND list_contains($1, table_name) ORDER BY table_name",
        [list(tables)],
    ).fetchall()
    return tuple((str(name), str(sql)) for name, sql in rows)


def _cache_type_parsing() -> None:
    """Remember what DuckDB's column type strings parse to: Ibis reads a table's schema (``DESCRIBE``) each
    time an expression names the table and parses every column's type with sqlglot, about 0.2 ms a column:
    an eighth of an incremental profile update's run was spent there (docs/decisions.md, 2026-12-02). The
    parse is a pure function of the string and its Ibis types are immutable, so a cache is exact."""
    from ibis.backends.sql.datatypes import DuckDBType

    if getattr(DuckDBType.from_string, "_tp_cached", False):
        return
    parse = DuckDBType.from_string

    @functools.lru_cache(maxsize=4096)
    def cached(text: str, nullable: bool | None = None) -> Any:
        return parse(text, nullable=nullable)

    def from_string(cls: type, text: str, nullable: bool | None = None) -> Any:
        return cached(text, nullable)

    from_string._tp_cached = True  # type: ignore[attr-defined]
    DuckDBType.from_string = classmethod(from_string)


_cache_type_parsing()


def _staged_sql(backend: DuckDBBackend, rows: ir.Table) -> str:
    """``rows`` compiled, once per expression: a step staged again for every chunk of an import
    (collect.engine_import) is the same expression each time, and compiling it takes up to a second."""
    key = (id(backend), rows)
    sql = _STAGED_SQL.get(key)
    if sql is None:
        if len(_STAGED_SQL) >= 64:
            _STAGED_SQL.clear()
        sql = _STAGED_SQL[key] = str(backend.compile(rows))
    return sql


_STAGED_SQL: dict[tuple[int, ir.Table], str] = {}
#: the declared tables (:mod:`touchpoint.warehouse.schema`): the only names whose schemas are kept per epoch
_DECLARED = frozenset(t.name for t in all_tables())
#: what the catalog said of a temporary table we made, by how it was made and the Ibis schema of its rows
_STAGED_SCHEMAS: dict[tuple[str, Schema], Schema] = {}
#: the typed select list of a schema (DuckDBWarehouse._typed)
_TYPED_COLUMNS: dict[Schema, str] = {}
#: Arrow types whose values bind as a DuckDB list of the same values (DuckDBWarehouse.save_temp_table), and
#: the DuckDB type the Arrow scan gives them
_LIST_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us"): "TIMESTAMP",
}


def _bound(backend: DuckDBBackend, name: str, table_schema: Schema) -> ir.Table:
    """The table ``name`` of ``backend`` with a schema known already: the expression Ibis's ``table(name)``
    builds, without its ``DESCRIBE`` (a statement, and a parse of every column's type)."""
    namespace = ops.Namespace(catalog=None, database=None)
    return ops.DatabaseTable(name, schema=table_schema, source=backend, namespace=namespace).to_expr()


@contextmanager
def _arrow_view(con: Any, rows: pa.Table, prefix: str = "__tp_arrow", *, name: str | None = None) -> Iterator[str]:
    """``rows`` registered on ``con`` as a view for the statements inside the block (DuckDB scans Arrow in place),
    unregistered after; under ``name`` when given, else a fresh one."""
    view = name or f"{prefix}_{next(_names)}"
    con.register(view, rows)
    try:
        yield view
    except BaseException:
        # after a failed statement the transaction refuses even this; its rollback drops the view, and the
        # statement's own error is the one to see (it was hidden behind "Current transaction is aborted")
        with contextlib.suppress(Exception):
            con.unregister(view)
        raise
    con.unregister(view)


def _compiler() -> Any:
    """Ibis's DuckDB compiler, less one failure: a string literal holding NUL (``\\x00``, which a hostile
    request can put in any id or value) made the SQL text unparsable ("unterminated quoted string", a 500);
    such a literal is written as ``concat('a', chr(0), 'b')``, the same string (DuckDB's strings hold NUL)."""
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

    class Compiler(DuckDBCompiler):
        def visit_NonNullLiteral(self, op: Any, *, value: Any, dtype: Any) -> Any:
            if isinstance(value, str) and "\x00" in value and (dtype.is_string() or dtype.is_json()):
                pieces: list[Any] = []
                for i, piece in enumerate(value.split("\x00")):
                    pieces.extend([sge.Anonymous(this="chr", expressions=[sge.convert(0)])] if i else [])
                    pieces.append(sge.convert(piece))
                text = self.f.concat(*pieces)
                return self.cast(text, dtype) if dtype.is_json() else text
            return super().visit_NonNullLiteral(op, value=value, dtype=dtype)

    return Compiler()


_COMPILER = _compiler()
#: Compiled SQL kept per thread's backend (:func:`_backend_class`); it starts afresh beyond this many.
MAX_COMPILED = 256


@functools.cache
def _backend_class() -> type[DuckDBBackend]:
    """Ibis's DuckDB backend that compiles an expression once: the SQL of an expression equal to one compiled
    before on the same backend (the same tables, by name and schema, and the same operations and literals)
    is the SQL compiled then. An incremental profiles run reads and stages the same expressions every run
    (over its scratch tables, whose names repeat: :class:`touchpoint.identity.components.Scratch`), and
    compiling them was about a third of its CPU (docs/decisions.md, 2026-12-03). Compiling is a pure
    function of the expression and the compiler (the backend's, fixed); expressions over in-memory tables
    (a new name each time) or with bound parameters are compiled as usual and not kept."""
    from ibis.backends.duckdb import Backend

    class Compiling(Backend):
        _tp_compiled: dict[tuple[Any, ...], str]

        def compile(self, expr: ir.Expr, /, *, limit: Any = None, params: Any = None, pretty: bool = False) -> str:
            if params:
                return str(super().compile(expr, limit=limit, params=params, pretty=pretty))
            key = (expr.op(), limit, pretty)
            cache = self.__dict__.setdefault("_tp_compiled", {})
            sql = cache.get(key)
            if sql is None:
                sql = str(super().compile(expr, limit=limit, pretty=pretty))
                if not key[0].find(ops.InMemoryTable):
                    if len(cache) >= MAX_COMPILED:
                        cache.clear()
                    cache[key] = sql
            return sql

    return Compiling


class _ReadGate:
    """Reads in flight, so :meth:`DuckDBWarehouse.compact` can wait for them before it closes every thread's
    cursor (closing a connection under a running query fails the read or crashes the engine), and new reads
    wait while it swaps the file. Re-entrant per thread: a read inside a read never waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed_for_swap = False
        self._depth = threading.local()

    @contextmanager
    def reading(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._cond:
                while self._closed_for_swap:
                    self._cond.wait()
                self._active += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    @contextmanager
    def swapping(self) -> Iterator[None]:
        """No new read starts, and every read in flight has ended, until the block ends."""
        with self._cond:
            self._closed_for_swap = True
            try:
                while self._active:
                    self._cond.wait()
            except BaseException:
                self._closed_for_swap = False
                self._cond.notify_all()
                raise
        try:
            yield
        finally:
            with self._cond:
                self._closed_for_swap = False
                self._cond.notify_all()


@contextmanager
def _memory_named(limit: str | None) -> Iterator[None]:
    """DuckDB's out-of-memory error as :class:`~touchpoint.errors.WarehouseOutOfMemory`, naming the settings
    that give it room: a caller tells it from a value the engine refused (which it may isolate row by row)."""
    try:
        yield
    except Exception as exc:
        import duckdb

        # at a commit (a plain insert's rows reach storage then) it comes as "Failed to commit: failed to pin block"
        at_commit = isinstance(exc, duckdb.TransactionException) and "failed to pin block" in str(exc)
        if not isinstance(exc, duckdb.OutOfMemoryException) and not at_commit:
            raise
        first = str(exc).splitlines()[0]
        raise WarehouseOutOfMemory(
            f"DuckDB ran out of memory ({first})",
            hint=f"raise duckdb_memory_limit (now {limit or 'DuckDB default: 80% of RAM'}) or lower duckdb_threads; "
            "an import can also run in smaller chunks (import_chunk_events) or line by line (--no-engine)",
        ) from exc


def _gated(method: Callable[..., Any]) -> Callable[..., Any]:
    """A read of the warehouse that :meth:`DuckDBWarehouse.compact` waits for (:class:`_ReadGate`)."""

    @functools.wraps(method)
    def read(self: DuckDBWarehouse, *args: Any, **kwargs: Any) -> Any:
        with self._gate.reading(), _memory_named(self._options.get("memory_limit")):
            return method(self, *args, **kwargs)

    return read


#: Arrow tables of at most this many values (rows times columns) are inserted as bound VALUES
#: (DuckDBTransaction._insert). DuckDB 2.0.1, events' 29 columns, CPU per insert with its commit: 1 row 7.2 ms
#: as VALUES, 10.3 through an Arrow view; 4 rows 10.5 and 10.0; 32 rows 16.9 and 11.2; 64 rows 27.6 and 9.8.
SMALL_INSERT_VALUES = 64


def _bindable(t: pa.DataType) -> bool:
    """Whether a column of this Arrow type binds as a parameter to the same value the Arrow scan reads (a time
    zone would be applied on binding: those columns take the Arrow path)."""
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date32(t)
        or pa.types.is_null(t)
        or (pa.types.is_timestamp(t) and t.tz is None)
    )


class DuckDBTransaction(Transaction):
    """Writes inside one ``BEGIN ... COMMIT`` on the writing thread's cursor."""

    def __init__(self, backend: DuckDBBackend) -> None:
        self.backend = backend
        self.con = backend.con

    @contextmanager
    def _rows(self, rows: pa.Table | ir.Table) -> Iterator[str]:
        """A SQL relation holding ``rows``: a registered Arrow view, or the compiled expression."""
        if isinstance(rows, pa.Table):
            with _arrow_view(self.con, rows, "__tp_rows") as view:
                yield view
        else:
            self.backend._run_pre_execute_hooks(rows)  # registers the expression's in-memory tables
            yield f"({self.backend.compile(rows)})"

    def _insert(self, table: str, rows: pa.Table | ir.Table, suffix: str = "") -> int:
        if isinstance(rows, pa.Table) and rows.num_rows == 0:
            return 0
        if (
            isinstance(rows, pa.Table)
            and rows.num_rows * rows.num_columns <= SMALL_INSERT_VALUES
            and all(map(_bindable, rows.schema.types))
        ):
            # a few values bound: below SMALL_INSERT_VALUES an Arrow view costs more than the insert
            names = ", ".join(quote(c) for c in rows.column_names)
            row = "(" + ", ".join("?" * rows.num_columns) + ")"
            values = [v for r in zip(*(c.to_pylist() for c in rows.columns), strict=True) for v in r]
            sql = f"INSERT INTO {quote(table)} ({names}) VALUES {', '.join([row] * rows.num_rows)}{suffix}"
            result = self.con.execute(sql, values).fetchone()
            return int(result[0]) if result else 0
        with self._rows(rows) as source:
            result = self.con.execute(f"INSERT INTO {quote(table)} BY NAME SELECT * FROM {source}{suffix}").fetchone()
        return int(result[0]) if result else 0

    def append(self, table: str, rows: pa.Table | ir.Table) -> int:
        return self._insert(table, rows)

    def insert_new(self, table: str, rows: pa.Table | ir.Table, *, assume_new: bool = False) -> int:
        if not assume_new:
            return self._insert(table, rows, " ON CONFLICT DO NOTHING")
        # a plain insert checks the key as it adds each row to the index; ON CONFLICT looks each row up first
        # (2.3 µs of CPU an event more for events: docs/decisions.md, 2026-12-05 "Events inserted plainly")
        import duckdb

        try:
            return self._insert(table, rows)
        except duckdb.ConstraintException as exc:  # the transaction is aborted
            if "duplicate key" not in str(exc).lower():  # NOT NULL, CHECK...: a refused row, not a stored key
                raise
            raise KeyConflict(f"a key of {table} is stored already or repeated: {exc}") from exc  # the caller redoes it

    def upsert(self, table: str, rows: pa.Table, key: Sequence[str], compare: Sequence[str] = ()) -> int:
        if rows.num_rows == 0:
            return 0
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in rows.column_names if c not in key)
        conflict = ", ".join(quote(k) for k in key)
        where = ""
        if compare:
            where = " WHERE " + " OR ".join(
                f"{quote(table)}.{quote(c)} IS DISTINCT FROM excluded.{quote(c)}" for c in compare
            )
        return self._insert(table, rows, f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}{where}")

    def replace(self, table: str, rows: pa.Table | ir.Table) -> int:
        self.con.execute(f"DELETE FROM {quote(table)}")
        return self._insert(table, rows)

    def delete(self, table: str, column: str | None = None, values: ir.Column | Sequence[Any] | None = None) -> None:
        if column is None:
            self.con.execute(f"DELETE FROM {quote(table)}")
            return
        if isinstance(values, ir.Column):
            keys = values.as_table()
            with self._rows(keys) as source:
                self.con.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} IN (SELECT * FROM {source})")
            return
        listed = list(values or [])
        if listed:
            marks = ", ".join("?" for _ in listed)
            self.con.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} IN ({marks})", listed)

    def update(self, table: str, values: dict[str, Any], *, key: str, value: Any) -> None:
        sets = ", ".join(f"{quote(c)} = ?" for c in values)
        self.con.execute(f"UPDATE {quote(table)} SET {sets} WHERE {quote(key)} = ?", [*values.values(), value])


class _DuckDBMigrationCursor(MigrationCursor):
    def __init__(self, con: Any) -> None:
        self.con = con

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.con.execute(sql, list(params))

    def rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        yield from (tuple(r) for r in self.con.execute(sql).fetchall())


def _fsync(path: str) -> None:
    """Flush a file's (or a directory's entries') bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_compact_leftovers(path: str) -> list[str]:
    """Remove what a compaction killed before its rename left beside the database ``path``: the partial
    copy ``<path>.compact`` and its log. The database itself was never touched by it. Returns what went."""
    removed = []
    for leftover in (path + ".compact", path + ".compact.wal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
            removed.append(leftover)
            log.warning("removed %s, left by a compaction that did not finish", leftover)
    return removed


class DuckDBWarehouse(Warehouse):
    """DuckDB behind the warehouse contract: per-thread cursors for reads, one writer at a time."""

    dialect = "duckdb"

    def __init__(self, url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> None:
        parts = urlsplit(url)
        raw_path = (parts.netloc + parts.path) if parts.netloc else parts.path
        self.url = url
        self.path: str = raw_path or ":memory:"
        options = dict(parse_qsl(parts.query))
        options.update({k: v for k, v in (config or {}).items() if v is not None})
        self._options = options
        if self.path != ":memory:":
            private_dir(Path(self.path).parent)  # a new data directory is 0700
        self.read_only = read_only
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise WarehouseError(
                f"there is no warehouse at {self.path}",
                hint="load data first (`touchpoint import ...` or `touchpoint demo`) or check --data",
            )
        duckdb_compat.install()  # before ibis's DuckDB backend is used (cheap after the first call)
        try:
            self._root: DuckDBBackend = ibis.duckdb.connect(self.path, read_only=read_only, **options)
            self._root.compiler = _COMPILER
        except Exception as exc:  # duckdb raises IOException for a held lock
            text = str(exc)
            if "could not set lock" in text.lower() or "conflicting lock" in text.lower():
                holder = lock_holder(self.path, text)
                raise WarehouseLocked(
                    f"the warehouse {self.path} is open for writing by {holder.describe()}", hint=holder.hint()
                ) from exc
            raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {text}") from exc
        if not read_only and self.path != ":memory:":
            for file in (self.path, self.path + ".wal"):
                make_private(file)  # 0600: the warehouse holds personal data and key hashes
            remove_compact_leftovers(self.path)  # we hold the write lock: no compaction of ours is running
        self._local = threading.local()
        self._backends: dict[threading.Thread, DuckDBBackend] = {}
        self._guard = threading.Lock()  # guards _backends, _closed and _generation
        self._generation = 0  # bumped when compact() reopens the database: every thread's cursor is new
        self._token = next(_names)  # this warehouse, in the prepared reads' checks (_CHECKED)
        #: bumped by whatever may define tables anew (migrations, compact, raw SQL): the prepared reads
        #: check their tables' definitions in the catalog once per epoch, not on every call
        self._schema_epoch = 0
        #: the declared tables' schemas, each with the epoch it was read in (see table())
        self._schemas: dict[str, tuple[int, Schema]] = {}
        self._closed = False
        self._write_locks = {lane: threading.RLock() for lane in WRITE_LANES}
        self._gate = _ReadGate()  # compact() waits for the reads in flight
        #: False makes the events lane share the main lane's lock (bench/write_lock.py measures both)
        self.separate_event_lane = True

    # -- per-thread connections ----------------------------------------------------------------------
    def _backend(self) -> DuckDBBackend:
        backend: DuckDBBackend | None = getattr(self._local, "backend", None)
        if backend is not None and getattr(self._local, "generation", None) == self._generation:
            return backend
        with self._guard:
            if self._closed:
                raise WarehouseError(f"the warehouse {self.path} is closed", hint="open it again")
            for thread in [t for t in self._backends if not t.is_alive()]:
                self._backends.pop(thread).con.close()  # a finished thread's cursor
            backend = _backend_class().from_connection(self._root.con.cursor())
            backend.compiler = _COMPILER
            self._backends[threading.current_thread()] = backend
            self._local.generation = self._generation
        self._local.backend = backend
        return backend

    def connection(self) -> Any:
        """A new raw DuckDB connection to this database, for DuckDB-only code (the query sandbox).

        It belongs to the calling thread alone, and the caller closes it. Writes never go through it.
        """
        with self._guard:
            if self._closed:
                raise WarehouseError(f"the warehouse {self.path} is closed", hint="open it again")
            self.schema_changed()  # what runs on it is not ours to know
            return self._root.con.cursor()

    @property
    def ibis(self) -> DuckDBBackend:
        return self._backend()

    @_gated
    def table(self, name: str) -> ir.Table:
        """The table ``name``; a declared table's schema is read from the catalog once per schema epoch (an
        incremental profiles run names a dozen tables, and each ``DESCRIBE`` cost about 1 ms of CPU)."""
        if name not in _DECLARED:
            return super().table(name)
        epoch = self._schema_epoch  # before the read: a change during it is seen next time
        hit = self._schemas.get(name)
        if hit is not None and hit[0] == epoch:
            return _bound(self._backend(), name, hit[1])
        table = super().table(name)
        self._schemas[name] = (epoch, table.schema())
        return table

    def temp_table(self, name: str, schema: Schema | None = None, *, built: Schema | None = None) -> ir.Table:
        return self.ibis.table(name) if schema is None else _bound(self._backend(), name, schema)

    @_gated
    def execute(self, expr: ir.Expr) -> Any:
        return super().execute(expr)

    @_gated
    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        return super().to_arrow(expr)

    @_gated
    def create_temp_table(self, name: str, sql: str) -> None:
        super().create_temp_table(name, sql)

    @_gated
    def drop_temp_table(self, name: str) -> None:
        self._backend().con.execute(f"DROP TABLE IF EXISTS temp.{quote(name)}")  # no Ibis statement to build

    @_gated
    def replace_temp_table(self, name: str, sql: str) -> None:
        self._backend().con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {quote(name)} AS {sql}")

    @_gated
    def tables(self) -> list[str]:
        """The warehouse's own tables (not this connection's temporary tables or Ibis's in-memory views)."""
        rows = (
            self._backend()
            .con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
                " AND database_name = current_database() AND schema_name = 'main' ORDER BY table_name"
            )
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    def _forget_schemas(self, tables: Sequence[str]) -> None:
        """Read these tables' schemas from the catalog on their next use (one was defined anew unsaid)."""
        for name in tables:
            self._schemas.pop(name, None)

    def schema_changed(self) -> None:
        """Say that tables may have been defined anew (DDL run outside :meth:`migration_transaction`, e.g.
        through :attr:`ibis`): each prepared read checks its tables' definitions again on its next call."""
        self._schema_epoch += 1

    @_gated
    def prepared(self, build: prepared.Builder, *values: str, key: Hashable = None) -> Any:
        import duckdb
        from ibis.backends.duckdb.converter import DuckDBPyArrowData

        ck = prepared.cache_key(build, values, key)
        backend = self._backend()
        stamp = (self._token, self._schema_epoch)  # before the check: a change during it is seen next time
        hit = _PREPARED.get(ck)
        fresh = hit is None or (_CHECKED.get(ck) != stamp and _definitions(backend, hit.tables) != hit.signature)
        if hit is not None and fresh:
            self._forget_schemas(hit.tables)  # defined anew: the tables' schemas are read again too
        if fresh or hit is None:
            expr, sql, tables = prepared.compile_with_markers(
                build, self, values, key, lambda e: str(backend.compile(e.as_table())), "${n}"
            )
            signature = _definitions(backend, tables) if sql is not None else ()
            if sql is None or len(signature) != len(tables):  # or a temporary table, a view: not cached
                log.debug("the read of %s.%s is not cached", build.__module__, build.__qualname__)
                return self.to_arrow(prepared.call(build, self, values, key))
            if len(_PREPARED) >= prepared.MAX_CACHED:  # keys carry page sizes and offsets: bound the memory
                _PREPARED.clear()
                _CHECKED.clear()
            names = tuple(expr.as_table().schema().names)
            hit = _PREPARED[ck] = prepared.Compiled(sql, expr, tables, signature, names)
        _CHECKED[ck] = stamp
        try:
            table = backend.con.sql(hit.sql, params=list(values)).to_arrow_table()
        except duckdb.Error:
            if _definitions(backend, hit.tables) == hit.signature:
                raise  # the read itself failed
            self._forget_schemas(hit.tables)
            table = None
        if table is None or tuple(table.column_names) != hit.names:
            self._forget_schemas(hit.tables)
            _PREPARED.pop(ck, None)
            _CHECKED.pop(ck, None)
            if fresh:  # compiled just now and still not as expected: read the ordinary way
                return self.to_arrow(prepared.call(build, self, values, key))
            # a table was defined anew behind the warehouse's back (not said: schema_changed): compile again
            return self.prepared(build, *values, key=key)
        return hit.expr.__pyarrow_result__(table, data_mapper=DuckDBPyArrowData)

    def checkpoint(self) -> None:
        import duckdb

        if self.read_only or getattr(self._local, "transaction", None) is not None:
            return
        with contextlib.suppress(duckdb.Error):  # another transaction holds changes: its commit folds the log
            self._backend().con.execute("CHECKPOINT")

    @_gated
    def query(self, sql: str) -> pa.Table:
        import duckdb

        con = self._backend().con
        with contextlib.suppress(duckdb.Error):  # a statement that does not parse fails below, as it should
            if any(s.type != duckdb.StatementType.SELECT for s in con.extract_statements(sql)):
                self.schema_changed()  # raw SQL that is not a read may define a table anew
        relation = con.sql(sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    @_gated
    def ping(self) -> None:
        self._backend().con.execute("SELECT 1").fetchall()  # all, as in count()

    @_gated
    def count(self, name: str) -> int:
        """Rows of the table ``name``: one SQL statement, no Ibis schema read or compile (the job runner asks
        for the events count every tick while events jobs wait)."""
        try:  # fetch all: a result left unfinished keeps its statement's transaction open on this thread's
            # cursor until its next statement, and an open one makes a compaction's CHECKPOINT refuse
            row = self._backend().con.execute(f"SELECT count(*) FROM {quote(name)}").fetchall()
        except Exception as exc:  # duckdb.CatalogException: the table does not exist
            if "does not exist" in str(exc):
                raise NotFound(
                    f"no table {name!r} in the warehouse", hint='`touchpoint query "SHOW TABLES"` lists them'
                ) from None
            raise
        return int(row[0][0]) if row else 0

    # -- writes ----------------------------------------------------------------------------------------
    @contextmanager
    def write(self, *, lane: str = "main") -> Iterator[Transaction]:
        if lane not in self._write_locks:
            raise ValueError(f"write lane {lane!r} is not known; use one of {', '.join(WRITE_LANES)}")
        outer: DuckDBTransaction | None = getattr(self._local, "transaction", None)
        if outer is not None:  # nested: part of the transaction already open in this thread
            yield outer
            return
        if not self.separate_event_lane:
            lane = "main"
        with self._write_locks[lane], _memory_named(self._options.get("memory_limit")):
            backend = self._backend()  # under the lock: a compaction meanwhile gave this thread a new cursor
            tx = DuckDBTransaction(backend)
            backend.con.execute("BEGIN TRANSACTION")
            self._local.transaction = tx
            try:
                yield tx
            except BaseException:
                backend.con.execute("ROLLBACK")
                raise
            else:
                backend.con.execute("COMMIT")  # durable: DuckDB syncs its WAL on commit
            finally:
                self._local.transaction = None

    @contextmanager
    def staged(self, rows: pa.Table | ir.Table) -> Iterator[pa.Table | ir.Table]:
        """As the contract's, in fewer statements (:meth:`save_temp_table`), under a name that is the same in
        every run of a thread (the first slot no staged table of the thread holds), so expressions over it
        are the same every run and their SQL is reused (:func:`_backend_class`)."""
        if isinstance(rows, pa.Table) or getattr(self._local, "transaction", None) is not None:
            yield rows
            return
        slots: set[int] | None = getattr(self._local, "stage_slots", None)
        if slots is None:
            slots = self._local.stage_slots = set()
        slot = next(i for i in itertools.count() if i not in slots)
        name = f"__tp_stage_{slot}"
        slots.add(slot)
        try:
            yield self.save_temp_table(name, rows)
        finally:
            try:
                self.drop_temp_table(name)
            finally:
                slots.discard(slot)

    @_gated
    def save_temp_table(self, name: str, rows: ir.Table) -> ir.Table:
        """One ``CREATE OR REPLACE TEMP TABLE ... AS``: an in-memory table's rows bound as lists (or, for types
        that do not bind exactly, through a registered Arrow view), an expression's SQL compiled once per
        expression (:func:`_backend_class`); the table is built from the schema the catalog gave for a table
        made the same way before (no ``DESCRIBE``). Ibis's ``create_table`` took six statements and a
        compilation (docs/decisions.md, 2026-12-03)."""
        backend = self._backend()
        op = rows.op()
        target = f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS"
        if isinstance(op, ops.InMemoryTable):
            data = op.data.to_pyarrow(op.schema)
            types = [_LIST_TYPES.get(t) for t in data.schema.types]
            if all(types):  # a few hundred ids: lists bound as parameters cost a third of an Arrow view
                columns = ", ".join(
                    f"unnest(${i}::{t}[]) AS {quote(c)}"
                    for i, (c, t) in enumerate(zip(data.column_names, types, strict=True), start=1)
                )
                backend.con.execute(f"{target} SELECT {columns}", [c.to_pylist() for c in data.columns])
                how = "lists"
            else:
                with _arrow_view(backend.con, data) as view:
                    backend.con.execute(f"{target} {self._typed(rows.schema(), view)}")
                how = "arrow"
        else:
            backend._run_pre_execute_hooks(rows)  # registers the expression's in-memory tables
            backend.con.execute(f"{target} {self._typed(rows.schema(), f'({backend.compile(rows)})')}")
            how = "query"
        return self._described(backend, name, (how, rows.schema()))

    @_gated
    def create_empty_temp_table(self, name: str, schema: Schema) -> ir.Table:
        backend = self._backend()
        columns = ", ".join(f"{quote(c)} {self.column_type(t)}" for c, t in schema.items())
        backend.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(name)} ({columns})")
        return self._described(backend, name, ("empty", schema))

    def _typed(self, schema: Schema, source: str) -> str:
        """``SELECT`` of ``source``'s columns cast to ``schema``'s types: the columns Ibis's ``create_table`` gave
        (it creates the table from the expression's Ibis schema, then inserts; a DuckDB ``sum`` of integers
        is a ``HUGEINT`` or ``DECIMAL`` that Ibis types ``int64``)."""
        columns = _TYPED_COLUMNS.get(schema)
        if columns is None:
            if len(_TYPED_COLUMNS) >= 256:
                _TYPED_COLUMNS.clear()
            columns = _TYPED_COLUMNS[schema] = ", ".join(
                f"CAST({quote(c)} AS {self.column_type(t)}) AS {quote(c)}" for c, t in schema.items()
            )
        return f"SELECT {columns} FROM {source}"

    def _described(self, backend: DuckDBBackend, name: str, shape: tuple[str, Schema]) -> ir.Table:
        """The temporary table ``name`` just made, its schema what the catalog said of one made the same way
        (``shape``: how, and the Ibis schema of its rows) before: the same rows' types make the same columns."""
        described = _STAGED_SCHEMAS.get(shape)
        if described is None:
            if len(_STAGED_SCHEMAS) >= 256:
                _STAGED_SCHEMAS.clear()
            # the catalog's types; whether a column may be NULL as the rows' schema says (Ibis's create_table
            # declared NOT NULL where it says not, and a union needs the same), though the table declares none
            declared = shape[1]
            got = backend.get_schema(name)
            described = _STAGED_SCHEMAS[shape] = Schema(
                {c: t.copy(nullable=declared[c].nullable) for c, t in got.items()}
            )
        return _bound(backend, name, described)

    @_gated
    def stage_table(self, name: str, rows: pa.Table | ir.Table, *, inputs: dict[str, pa.Table] | None = None) -> None:
        backend = self._backend()
        if isinstance(rows, pa.Table):
            with _arrow_view(backend.con, rows) as view:
                backend.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS SELECT * FROM {view}")
            return
        backend._run_pre_execute_hooks(rows)  # registers the expression's in-memory tables
        # each input a view of its Arrow table under its own name: DuckDB scans it in place, a thread per
        # record batch (one table of one row group is one thread's work)
        with contextlib.ExitStack() as views:
            for input_name, table in (inputs or {}).items():
                views.enter_context(_arrow_view(backend.con, table, name=input_name))
            backend.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS {_staged_sql(backend, rows)}")

    @_gated
    def drop_staged(self, name: str) -> None:
        self._backend().con.execute(f"DROP TABLE IF EXISTS temp.{quote(name)}")

    # -- compaction ------------------------------------------------------------------------------------
    def compact(self) -> dict[str, Any]:
        """Rewrite the database into a fresh file and swap it in, so deleted rows leave the disk.

        DuckDB marks a deleted row's storage free but does not overwrite it (nor the WAL's copy):
        ``CHECKPOINT`` alone leaves the bytes in the file (docs/decisions.md, "Erasure down to the
        bytes"). So, holding every write lane (no writer runs meanwhile): ``CHECKPOINT``, ``ATTACH``
        a new file, ``COPY FROM DATABASE`` (tables with their keys, sequences, macros), close every
        thread's cursor and the database, rename the new file over the old one (atomic on POSIX) and
        reopen. The swap waits for the reads in flight on other threads and holds new ones until the
        new file is open (a cursor closed under a running query crashed the engine: tests/warehouse/
        test_compact_reads.py); each thread then gets a new cursor on its next read. Reads through the raw
        :attr:`ibis` backend are not waited for. The cost is one copy of the live data.

        Crash-safe (a SIGKILL or a power cut at any point): until the rename the old file is the database,
        whole and checkpointed; the new file is fsynced before the rename and the directory after it, and
        the old file's log is removed before the rename, so no stale log is ever replayed onto the new
        file. A half-written ``<file>.compact`` left by a crash is removed when the warehouse next opens
        for writing (:func:`remove_compact_leftovers`); an erasure interrupted by one is finished by
        running it again (docs/privacy.md, "Erasure").
        """
        start = time.perf_counter()
        if self.path == ":memory:":
            return {
                "engine": "duckdb",
                "method": "none (in memory)",
                "seconds": 0.0,
                "bytes_before": 0,
                "bytes_after": 0,
            }
        if getattr(self._local, "transaction", None) is not None:
            raise WarehouseError("compact() cannot run inside a write transaction", hint="call it after the write")
        fresh = self.path + ".compact"
        with contextlib.ExitStack() as held:
            for lock in self._write_locks.values():
                held.enter_context(lock)
            for leftover in (fresh, fresh + ".wal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
            with self._guard:  # a cursor of its own: the root connection is shared by every thread
                con = self._root.con.cursor()
            try:
                # FORCE: wait for statements other threads are running outside the write lanes (a job's temporary
                # tables), which a plain CHECKPOINT refuses ("other write transactions active": an erasure of
                # the demo answered 500 while its jobs ran). From DuckDB 1.4 FORCE waits; it no longer aborts.
                con.execute("FORCE CHECKPOINT")
                before = os.path.getsize(self.path)
                database = str(con.execute("SELECT current_database()").fetchone()[0])
                con.execute(f"ATTACH '{fresh.replace(chr(39), chr(39) * 2)}' AS __tp_compact")
                try:
                    con.execute(f"COPY FROM DATABASE {quote(database)} TO __tp_compact")
                finally:
                    con.execute("DETACH __tp_compact")
            finally:
                con.close()
            make_private(fresh)
            _fsync(fresh)  # every byte of the copy is on disk before it can become the database
            held.enter_context(self._gate.swapping())  # reads in flight end, new ones wait for the new file
            with self._guard:
                backends = list(self._backends.values())
                self._backends.clear()
                self._generation += 1
                self._schema_epoch += 1
            for backend in backends:
                with contextlib.suppress(Exception):
                    backend.con.close()
            self._root.disconnect()
            with contextlib.suppress(FileNotFoundError):  # the old database's log (checkpointed: empty),
                os.remove(self.path + ".wal")  # before the rename: it must never be replayed onto the copy
            os.replace(fresh, self.path)
            _fsync(os.path.dirname(os.path.abspath(self.path)))  # the rename itself survives a power cut
            self._root = ibis.duckdb.connect(self.path, **self._options)
            self._root.compiler = _COMPILER
            make_private(self.path)
        return {
            "engine": "duckdb",
            "method": "rewrite into a fresh file (COPY FROM DATABASE) and atomic rename",
            "seconds": round(time.perf_counter() - start, 3),
            "bytes_before": before,
            "bytes_after": os.path.getsize(self.path),
        }

    # -- schema ----------------------------------------------------------------------------------------
    def column_type(self, dtype: Any) -> str:
        return sql_type(self._root.compiler.type_mapper, dtype, self.dialect)

    @contextmanager
    def migration_transaction(self) -> Iterator[MigrationCursor]:
        try:
            with self.write() as tx:
                assert isinstance(tx, DuckDBTransaction)
                yield _DuckDBMigrationCursor(tx.con)
        finally:
            self.schema_changed()

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            backends = list(self._backends.values())
            self._backends.clear()
        for backend in backends:
            with contextlib.suppress(Exception):  # a cursor in use elsewhere: closing the database ends it
                backend.con.close()
        self._root.disconnect()
