"""The warehouse contract: what every engine implements, and nothing the domains need beyond it.

Reads and writes are routed by design, not by luck (see docs/decisions.md, 2026-12-01):

* **Reads** run on the calling thread's own connection. :attr:`Warehouse.ibis`, :meth:`table`,
  :meth:`execute`, :meth:`to_arrow` and :meth:`query` use a backend private to the thread, so any
  number of threads (the HTTP server's pool, a job runner) can read at once.
* **Writes** go through :meth:`Warehouse.write`, a transaction taken under a write lock. There are
  two lanes, each with its own lock: ``"events"`` for appending collected events and quarantine
  records (:func:`touchpoint.collect.store.write_rows`), ``"main"`` for every other write (derived
  tables, keys, definitions). At most one writer per lane at a time; a writer of each lane may run
  at once (DuckDB's MVCC: concurrent transactions on different tables, or appends of distinct keys,
  do not conflict), so an event commit never waits for a profile swap (docs/decisions.md, 2026-12-01,
  "Two write lanes"). Work that computes rows from an Ibis expression is staged on the writer's own
  connection *before* the lock is taken, so the lock is held only to swap rows in.

Every table is declared in :mod:`touchpoint.warehouse.schema` and created by a migration; domains
never create tables. :meth:`Warehouse.table` raises :class:`~touchpoint.errors.NotFound` only when
the table is missing; any other failure propagates.

One class per engine implements this (:mod:`touchpoint.warehouse.duckdb_engine`,
:mod:`touchpoint.warehouse.postgres_engine`, :mod:`touchpoint.warehouse.spark_engine`);
:data:`touchpoint.warehouse.adapters.ADAPTERS` maps URL schemes to them.
"""

from __future__ import annotations

import functools
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from touchpoint.errors import NotFound

if TYPE_CHECKING:
    import ibis.expr.datatypes as dt
    import ibis.expr.types as ir
    from ibis.backends.sql import SQLBackend
    from ibis.expr.schema import Schema

    from touchpoint.warehouse.schema import TableSpec

WRITE_LANES = ("main", "events", "runs")  # see Warehouse.write
_sections: dict[tuple[str, str], threading.RLock] = {}  # see Warehouse.exclusive
_staged_names = itertools.count()  # see Warehouse.staged
_sections_guard = threading.Lock()
Rows = pa.Table  # rows to write: an Arrow table (an Ibis expression is also accepted where noted)


def _row_count(wh: Warehouse, name: str) -> ir.Scalar:
    return wh.table(name).count()


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier (standard SQL: double quotes, an inner one doubled)."""
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=1024)
def sql_type(mapper: Any, dtype: Any, dialect: str) -> str:
    """An Ibis type as ``dialect``'s SQL type, through the Ibis type ``mapper`` (``DuckDBType``, ...), once per
    process: the translation goes through sqlglot and cost half of opening a fresh warehouse (about 430 column
    types among its migrations' tables, 0.4 ms each)."""
    return str(mapper.from_ibis(dtype).sql(dialect))


class Transaction(ABC):
    """The writes of one :meth:`Warehouse.write` block; all commit together or none does.

    Every method takes a declared table's name; ``rows`` are an Arrow table or an Ibis expression
    over the same warehouse. Columns are matched by name; columns the rows lack are left NULL.
    """

    @abstractmethod
    def append(self, table: str, rows: pa.Table | ir.Table) -> int:
        """Insert every row; returns how many."""

    @abstractmethod
    def insert_new(self, table: str, rows: pa.Table | ir.Table, *, assume_new: bool = False) -> int:
        """Insert the rows whose key (the table's declared key) is not stored yet; returns how many.

        ``assume_new``: the caller expects none of the keys to be stored (nor any twice in ``rows``) and can
        redo the whole transaction if one is: an engine whose plain insert is cheaper than one that skips
        stored keys may then insert plainly, and raise :class:`~touchpoint.errors.KeyConflict` when a key
        (or another constraint) refuses a row; the transaction is then lost. Only the outermost writer may
        ask (:meth:`Warehouse.writing` is false before its ``write`` block). Engines may ignore it."""

    @abstractmethod
    def upsert(self, table: str, rows: pa.Table, key: Sequence[str], compare: Sequence[str] = ()) -> int:
        """Insert ``rows``; a stored row with the same ``key`` takes the new values.

        With ``compare``, a stored row is rewritten only when one of those columns differs, so
        loading the same data twice writes nothing the second time. Returns rows written.
        """

    @abstractmethod
    def replace(self, table: str, rows: pa.Table | ir.Table) -> int:
        """Replace every row of ``table`` with ``rows`` (the table and its declared schema stay)."""

    @abstractmethod
    def delete(self, table: str, column: str | None = None, values: ir.Column | Sequence[Any] | None = None) -> None:
        """Delete the rows whose ``column`` is in ``values`` (an Ibis column or a list); all rows without them."""

    @abstractmethod
    def update(self, table: str, values: dict[str, Any], *, key: str, value: Any) -> None:
        """Set ``values`` on the rows where ``key`` equals ``value``."""


class Warehouse(ABC):
    """One open warehouse. Open with :meth:`Warehouse.open` (or :func:`touchpoint.warehouse.open_warehouse`).

    >>> wh = Warehouse.open("duckdb://:memory:")
    >>> wh.count("events"), wh.has_table("events"), wh.has_table("nope")
    (0, True, False)
    >>> wh.close()
    """

    url: str
    dialect: str
    read_only: bool
    _local: threading.local  # per thread: the connection, the open transaction

    @abstractmethod
    def __init__(self, url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> None:
        """Connect (without migrating); engines raise WarehouseError/WarehouseLocked with a hint."""

    @classmethod
    def open(
        cls, url: str, *, read_only: bool = False, migrate: bool = True, config: dict[str, Any] | None = None
    ) -> Warehouse:
        """Connect to the warehouse at ``url`` with the engine its scheme names, and migrate it."""
        from touchpoint.errors import WarehouseError
        from touchpoint.warehouse import migrations
        from touchpoint.warehouse.adapters import engine_for

        wh = engine_for(url)(url, read_only=read_only, config=config)
        try:
            if read_only:
                if migrations.pending(wh):
                    raise WarehouseError(
                        f"the warehouse at {url} has not been initialised or needs migrating",
                        hint="run any writing command once (e.g. `touchpoint sources list`) to migrate it",
                    )
            elif migrate:
                migrations.migrate(wh)
        except BaseException:
            wh.close()
            raise
        return wh

    # -- reads (on the calling thread's connection) -----------------------------------------------
    @property
    @abstractmethod
    def ibis(self) -> SQLBackend:
        """This thread's Ibis backend, for building expressions."""

    def table(self, name: str) -> ir.Table:
        """The table ``name``; :class:`~touchpoint.errors.NotFound` if there is none, other errors as raised."""
        import ibis.common.exceptions as ibis_exc  # not at import: the CLI starts without Ibis

        try:
            return self.ibis.table(name)
        except ibis_exc.TableNotFound:
            raise NotFound(
                f"no table {name!r} in the warehouse", hint='`touchpoint query "SHOW TABLES"` lists them'
            ) from None

    @abstractmethod
    def tables(self) -> list[str]:
        """The names of the tables in the warehouse."""

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    def execute(self, expr: ir.Expr) -> Any:
        """Run ``expr`` on this thread's connection (a pandas result, as Ibis gives)."""
        return self.ibis.execute(expr)

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        """Run ``expr`` on this thread's connection and return Arrow (a scalar for a scalar expression)."""
        result: pa.Table = self.ibis.to_pyarrow(expr)
        return result

    def prepared(self, build: Callable[..., ir.Expr], *values: str, key: Hashable = None) -> Any:
        """``to_arrow(build(self, *values))`` (``build(self, key, *values)`` with a ``key``): a read an
        engine may build and compile once per process and then run with ``values`` bound as parameters
        (:mod:`touchpoint.warehouse.prepared`). ``build`` is a module-level function; ``key`` is what
        shapes its query beside the values (a table's name). This default builds and compiles every time."""
        from touchpoint.warehouse.prepared import call

        return self.to_arrow(call(build, self, values, key))

    @abstractmethod
    def query(self, sql: str) -> pa.Table:
        """Run one read-only SQL statement in the engine's dialect (``touchpoint query``)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the warehouse cannot answer a trivial query."""

    def identifier(self, name: str) -> str:
        """``name`` quoted as an identifier in the SQL Ibis compiles for this engine (standard SQL's double
        quotes; Spark's backticks)."""
        return quote(name)

    def temp_table(self, name: str, schema: Schema | None = None, *, built: Schema | None = None) -> ir.Table:
        """The temporary table ``name`` of this thread's connection. ``schema`` is what the catalog said of a
        table made by the same query before (:meth:`touchpoint.identity.components.Scratch.save_query` keeps
        it): an engine may build the table from it without asking the catalog again. ``built`` is the Ibis
        schema of the expression the table was computed from (an engine whose storage loses a type, Spark's
        Parquet JSON, restores it from that). This default asks the catalog."""
        return self.ibis.table(name)

    def create_temp_table(self, name: str, sql: str) -> None:
        """Materialise the engine-SQL query ``sql`` (compiled by :attr:`ibis`) as the temporary table ``name``
        on this thread's connection (``CREATE TEMPORARY TABLE ... AS``; Spark keeps computed rows instead)."""
        self.ibis.raw_sql(f"CREATE TEMPORARY TABLE {quote(name)} AS {sql}")

    def save_temp_table(self, name: str, rows: ir.Table) -> ir.Table:
        """Compute ``rows`` (an expression, or an in-memory table) into the temporary table ``name`` of this
        thread's connection, replacing any table of that name, and return it."""
        return self.ibis.create_table(name, rows, temp=True, overwrite=True)

    def create_empty_temp_table(self, name: str, schema: Schema) -> ir.Table:
        """An empty temporary table ``name`` of ``schema`` on this thread's connection (replacing any)."""
        return self.ibis.create_table(name, schema=schema, temp=True, overwrite=True)

    def drop_temp_table(self, name: str) -> None:
        """Drop the temporary table ``name`` of this thread's connection, if there is one."""
        self.ibis.drop_table(name, force=True)

    def replace_temp_table(self, name: str, sql: str) -> None:
        """:meth:`create_temp_table`, dropping first any temporary table ``name`` of this connection."""
        self.drop_temp_table(name)
        self.create_temp_table(name, sql)

    def count(self, name: str) -> int:
        return int(self.prepared(_row_count, key=name).as_py())

    # -- writes (one writer at a time) --------------------------------------------------------------
    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run a read-compute-write operation named ``name`` (``"identity"``, ``"audience:NAME"``) alone.

        Operations that read a table, compute from it and write it back in several steps (an
        incremental identity update, an audience refresh) would lose or double rows if two ran at
        once (the job runner's and a command's). They hold this section; any other work, and the
        short :meth:`write` transactions, go on meanwhile. Reentrant in one thread; shared by every
        :class:`Warehouse` of the same URL in this process (the embedded engine is one process; an
        engine several processes write, PostgreSQL, also holds it across them).
        """
        with _sections_guard:
            lock = _sections.setdefault((self.url, name), threading.RLock())
        with lock:
            yield

    @abstractmethod
    def write(self, *, lane: str = "main") -> AbstractContextManager[Transaction]:
        """A transaction under the write lock of ``lane``: ``with wh.write() as tx: tx.append(...)``.

        ``lane`` is one of :data:`WRITE_LANES`: ``"main"``; ``"events"``, taken only by appends of events
        and quarantine records; ``"runs"``, taken only by the job run log (``job_runs``, written by every run
        of every job: it never waits for a derived table's swap). Nested calls in one thread join the outer
        transaction (whatever its lane). On an error everything rolls back.
        """

    @contextmanager
    def staged(self, rows: pa.Table | ir.Table) -> Iterator[pa.Table | ir.Table]:
        """``rows`` computed now on this thread's connection, without the write lock, for a short
        :meth:`write` after: ``with wh.staged(expr) as rows, wh.write() as tx: tx.replace(name, rows)``.

        Arrow tables pass through; inside a :meth:`write` block expressions pass through too (the lock is
        held already). This default computes them into a temporary table of Ibis's backend.
        """
        if isinstance(rows, pa.Table) or getattr(self._local, "transaction", None) is not None:
            yield rows
            return
        name = f"__tp_stage_{next(_staged_names)}"
        table = self.ibis.create_table(name, rows, temp=True)
        try:
            yield table
        finally:
            self.ibis.drop_table(name, force=True)

    def append(self, table: str, rows: pa.Table | ir.Table) -> int:
        with self.staged(rows) as ready, self.write() as tx:
            return tx.append(table, ready)

    def insert_new(self, table: str, rows: pa.Table | ir.Table) -> int:
        with self.write() as tx:
            return tx.insert_new(table, rows)

    def writing(self) -> bool:
        """Whether this thread is inside a :meth:`write` block (a write now would join its transaction)."""
        return getattr(self._local, "transaction", None) is not None

    def upsert(self, table: str, rows: pa.Table, key: Sequence[str], compare: Sequence[str] = ()) -> int:
        with self.write() as tx:
            return tx.upsert(table, rows, key, compare)

    def replace(self, table: str, rows: pa.Table | ir.Table) -> int:
        """Replace every row of ``table``; the rows are computed before the write lock is taken."""
        with self.staged(rows) as ready, self.write() as tx:
            return tx.replace(table, ready)

    def delete(self, table: str, column: str | None = None, values: ir.Column | Sequence[Any] | None = None) -> None:
        with self.write() as tx:
            tx.delete(table, column, values)

    def checkpoint(self) -> None:
        """Fold what the engine's write-ahead log holds into its files now, after a large write, so the
        next small commit does not pay for it (DuckDB folds the log at the first commit that takes it past
        its threshold, whichever writer that is). Best effort: engines that manage this themselves, or a
        checkpoint another transaction prevents, do nothing."""
        return None

    def compact(self) -> dict[str, Any]:
        """Make deleted rows unrecoverable from the engine's files, and return what it took.

        Deleting a row frees its storage but engines do not overwrite freed space: an erasure
        (:mod:`touchpoint.privacy.erase`) calls this after its deletes so the person's bytes leave the
        disk. DuckDB rewrites the database into a fresh file; PostgreSQL would ``VACUUM FULL``; an
        engine that cannot must say so rather than let an erasure claim what it did not do.
        Returns ``{"engine", "method", "seconds", "bytes_before", "bytes_after"}``.
        """
        from touchpoint.errors import WarehouseError

        raise WarehouseError(
            f"the {self.dialect} adapter cannot compact its storage, so an erasure cannot remove the bytes",
            hint="implement Warehouse.compact() for this engine (PostgreSQL: VACUUM FULL)",
        )

    def stage_table(self, name: str, rows: pa.Table | ir.Table, *, inputs: dict[str, pa.Table] | None = None) -> None:
        """Put ``rows`` (Arrow, or an expression over this connection's tables) in the temporary table
        ``name`` on this thread's connection, replacing what it held, for set-based work in several
        materialised steps such as :mod:`touchpoint.collect.engine_import`. ``inputs``: Arrow tables the
        expression reads by name (each named with :meth:`temp_table` and its schema), scanned in place for
        this statement, not copied into a table first. Engines without temporary tables raise
        ``NotImplementedError`` and their callers take the row-by-row path."""
        raise NotImplementedError(f"the {self.dialect} adapter cannot stage temporary tables")

    def drop_staged(self, name: str) -> None:
        """Drop the temporary table ``name`` that :meth:`stage_table` made, if there is one."""
        return None  # engines without temporary tables staged nothing

    # -- schema ------------------------------------------------------------------------------------
    @abstractmethod
    def column_type(self, dtype: dt.DataType) -> str:
        """The engine's SQL type for an Ibis type."""

    def create_table_sql(self, spec: TableSpec) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for a declared table: standard SQL with this engine's types."""
        cols = []
        for name, dtype in spec.schema.items():
            null = " NOT NULL" if name in spec.not_null else ""
            cols.append(f"{quote(name)} {self.column_type(dtype)}{null}")
        if spec.key:
            cols.append("PRIMARY KEY (" + ", ".join(quote(k) for k in spec.key) + ")")
        return f"CREATE TABLE IF NOT EXISTS {quote(spec.name)} (\n  " + ",\n  ".join(cols) + "\n)"

    def add_column_sql(self, table: str, column: str, dtype: dt.DataType) -> str:
        """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` with this engine's type."""
        return f"ALTER TABLE {quote(table)} ADD COLUMN IF NOT EXISTS {quote(column)} {self.column_type(dtype)}"

    @abstractmethod
    def migration_transaction(self) -> AbstractContextManager[MigrationCursor]:
        """A transaction for schema migrations, under the write lock."""

    # -- lifecycle ---------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Close every connection this warehouse opened (all threads')."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MigrationCursor(ABC):
    """What a migration needs: run DDL, read and record versions."""

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement; ``params`` bind to ``?`` placeholders (each engine maps them to its own)."""

    @abstractmethod
    def rows(self, sql: str) -> Iterator[tuple[Any, ...]]: ...
