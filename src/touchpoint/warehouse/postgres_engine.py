"""PostgreSQL: a server many processes write to at once (``postgresql://user:pass@host:port/db``).

Each thread that reads gets its own connection (psycopg, autocommit between transactions) wrapped in
its own Ibis backend. Writes take their lane's lock in this process, as on DuckDB, and run in one
transaction on the calling thread's connection. Across processes PostgreSQL orders concurrent writers
itself (row locks, ``ON CONFLICT`` on the declared key): two collectors, the job runner and the CLI
write to one database at once, which is the answer to the embedded store's one-writer limit. What
must not interleave across processes is made to wait on PostgreSQL advisory locks: a ``"main"`` lane
transaction holds one for its lane until it ends (domains check, then write, under it), and
:meth:`PostgresWarehouse.exclusive` holds one per section name for its duration. The ``"events"`` lane
takes none: its writes are inserts that skip stored keys, which PostgreSQL makes safe between
processes (a copy of a message being inserted elsewhere waits for that commit, then is skipped), so
collectors do not queue behind each other.

Rows given as Arrow go in by ``COPY`` (CSV, written by Arrow in C) into a temporary table shaped like
the target, then one ``INSERT ... SELECT`` with the conflict clause; rows given as an Ibis expression
are compiled for PostgreSQL and inserted by one statement.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pa_csv

from touchpoint.errors import WarehouseError
from touchpoint.warehouse.base import WRITE_LANES, MigrationCursor, Transaction, Warehouse, quote, sql_type
from touchpoint.warehouse.urls import redact

if TYPE_CHECKING:
    import psycopg
    from ibis.backends.postgres import Backend as PostgresBackend


log = logging.getLogger(__name__)
_names = itertools.count()
_CSV = pa_csv.WriteOptions(include_header=False)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``, the same in every process.

    >>> advisory_key("lane:main") == advisory_key("lane:main"), advisory_key("a") != advisory_key("b")
    (True, True)
    """
    digest = hashlib.blake2b(f"touchpoint:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _csv_ready(rows: pa.Table) -> pa.Table:
    """``rows`` with every column in a type Arrow writes as CSV that PostgreSQL reads back unchanged."""
    columns = []
    for column in rows.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_null(kind):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(kind) and kind.tz is not None:
            column = column.cast(pa.timestamp(kind.unit))  # naive UTC: the warehouse's timestamps
        elif pa.types.is_nested(kind):
            texts = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(texts, pa.string())])
        columns.append(column)
    return pa.Table.from_arrays(columns, names=rows.column_names)


def _semi_and_anti_joins_as_exists(select: Any) -> None:
    """Rewrite ``select``'s SEMI and ANTI joins (which PostgreSQL lacks) as ``[NOT] EXISTS`` in its WHERE.

    sqlglot does this when it writes PostgreSQL, but it removes joins from the list it walks, so of two
    such joins in one SELECT the second is left as ``LEFT ANTI JOIN`` (invalid) - identity's partition
    step builds such queries. Done here, over a copy of the list, before sqlglot writes the text."""
    import sqlglot.expressions as sge

    for join in list(select.args.get("joins") or []):
        on = join.args.get("on")
        if on and join.kind in ("SEMI", "ANTI"):
            exists: Any = sge.Exists(this=sge.select("1").from_(join.this).where(on))
            if join.kind == "ANTI":
                exists = exists.not_(copy=False)
            join.pop()
            select.where(exists, copy=False)


def _compiler() -> Any:
    """Ibis's PostgreSQL compiler with what it lacks or gets wrong for the domains, in PostgreSQL's own
    terms (each run on every engine by tests/engines/test_adapter_operations.py): ``hexdigest`` (``md5``,
    ``sha256``: the same hex text as DuckDB's, so ids derived from a hash are equal on both engines), a
    JSON object read as a map, boolean-to-integer casts, SEMI/ANTI joins as ``[NOT] EXISTS``, json
    left as json in the outermost SELECT, and a string literal holding NUL as NULL (text cannot hold it)."""
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.base import NULL, SQLGlotCompiler
    from ibis.backends.sql.compilers.postgres import PostgresCompiler

    class Compiler(PostgresCompiler):
        def to_sqlglot(self, expr: Any, *, limit: Any = None, params: Any = None) -> Any:
            """As Ibis's, but json stays json (Ibis casts it to text at the top of every query, so a table
            created from an expression loses the type; our connections load json as text instead)."""
            table = expr.as_table()
            schema = table.schema()
            conversions = {name: table[name].as_ewkb() for name in schema.geospatial}
            conversions.update((name, table[name].cast(dt.string)) for name, kind in schema.items() if kind.is_map())
            if conversions:
                table = table.mutate(**conversions)
            query = SQLGlotCompiler.to_sqlglot(self, table, limit=limit, params=params)
            for select in list(query.find_all(sge.Select)):
                _semi_and_anti_joins_as_exists(select)
            return query

        def visit_HexDigest(self, op: Any, *, arg: Any, how: str) -> Any:
            if how == "md5":
                return self.f.md5(arg)
            if how == "sha256":
                return self.f.encode(self.f.sha256(self.f.convert_to(arg, sge.convert("UTF8"))), sge.convert("hex"))
            raise NotImplementedError(f"no {how} hash on PostgreSQL; use md5 or sha256")

        def visit_Cast(self, op: Any, *, arg: Any, to: Any) -> Any:
            if op.arg.dtype.is_boolean() and to.is_integer() and not to.is_int32():  # boolean -> int only
                arg = super().visit_Cast(op, arg=arg, to=dt.int32)
            return super().visit_Cast(op, arg=arg, to=to)

        def visit_NonNullLiteral(self, op: Any, *, value: Any, dtype: Any) -> Any:
            # text cannot hold NUL, and a NUL in the statement's text is a syntax error (a 500 for a hostile
            # id): such a value equals nothing stored, so it is the unknown value, NULL, of its type
            if isinstance(value, str) and "\x00" in value and (dtype.is_string() or dtype.is_json()):
                return self.cast(NULL, dtype)
            return super().visit_NonNullLiteral(op, value=value, dtype=dtype)

        def visit_ToJSONMap(self, op: Any, *, arg: Any) -> Any:  # ``json.map``: an object as a map (jsonb)
            b = "b" * op.arg.dtype.binary
            return self.if_(
                self.f[f"json{b}_typeof"](arg).eq(sge.convert("object")), self.cast(arg, dt.JSON(binary=True)), NULL
            )

    return Compiler()


def _backend_class() -> type[PostgresBackend]:
    """Ibis's PostgreSQL backend, reading every column as nullable.

    Ibis marks a ``NOT NULL`` column non-nullable, and so an aggregate of it (``max`` of an empty table):
    its result then fails to convert to Arrow when it is NULL. DuckDB's backend never hits this; nullable
    everywhere is what the domains expect of both."""
    from ibis.backends.postgres import Backend

    class NullableBackend(Backend):
        def get_schema(self, name: str, *, catalog: str | None = None, database: str | None = None) -> Any:
            found = super().get_schema(name, catalog=catalog, database=database)
            return ibis.schema({column: kind.copy(nullable=True) for column, kind in found.items()})

    return NullableBackend


class PostgresTransaction(Transaction):
    """Writes inside one transaction on the writing thread's connection."""

    def __init__(self, warehouse: PostgresWarehouse, backend: PostgresBackend) -> None:
        self.warehouse = warehouse
        self.backend = backend
        self.con: psycopg.Connection[Any] = backend.con

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self.con.cursor() as cur:
            cur.execute(sql, params)
            return max(cur.rowcount, 0)

    @contextmanager
    def _source(self, table: str, rows: pa.Table | ir.Table) -> Iterator[tuple[list[str], str]]:
        """``(columns, relation)``: ``rows`` as a SQL relation, and the columns they carry."""
        if isinstance(rows, pa.Table):
            name = f"__tp_rows_{next(_names)}"
            columns = ", ".join(quote(c) for c in rows.column_names)
            with self.con.cursor() as cur:
                cur.execute(f"CREATE TEMPORARY TABLE {quote(name)} (LIKE {quote(table)})")
                try:
                    buffer = io.BytesIO()
                    pa_csv.write_csv(_csv_ready(rows), buffer, _CSV)
                    with cur.copy(f"COPY {quote(name)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                        copy.write(buffer.getbuffer())
                    yield list(rows.column_names), quote(name)
                finally:
                    if not self.con.broken and self.con.info.transaction_status != 3:  # 3: in a failed transaction
                        cur.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        else:
            self.backend._run_pre_execute_hooks(rows)  # creates the expression's in-memory tables
            yield list(rows.columns), f"({self.backend.compile(rows)}) AS __tp_source"

    def _insert(self, table: str, rows: pa.Table | ir.Table, suffix: str = "") -> int:
        if isinstance(rows, pa.Table) and rows.num_rows == 0:
            return 0
        json_columns = self.warehouse.json_columns(table)
        with self._source(table, rows) as (columns, source):
            names = ", ".join(quote(c) for c in columns)
            # Ibis reads json out as text; json takes text only by an explicit cast
            values = ", ".join(f"{quote(c)}::json" if c in json_columns else quote(c) for c in columns)
            return self._execute(f"INSERT INTO {quote(table)} ({names}) SELECT {values} FROM {source}{suffix}")

    def append(self, table: str, rows: pa.Table | ir.Table) -> int:
        return self._insert(table, rows)

    def insert_new(self, table: str, rows: pa.Table | ir.Table, *, assume_new: bool = False) -> int:
        return self._insert(table, rows, " ON CONFLICT DO NOTHING")  # assume_new: the check costs little here

    def upsert(self, table: str, rows: pa.Table, key: Sequence[str], compare: Sequence[str] = ()) -> int:
        if rows.num_rows == 0:
            return 0
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in rows.column_names if c not in key)
        conflict = ", ".join(quote(k) for k in key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        where = ""
        if compare and updates:
            json_columns = self.warehouse.json_columns(table)

            def value(side: str, column: str) -> str:  # json has no equality operator: compare its text
                ref = f"{side}.{quote(column)}"
                return f"{ref}::text" if column in json_columns else ref

            where = " WHERE " + " OR ".join(
                f"{value(quote(table), c)} IS DISTINCT FROM {value('excluded', c)}" for c in compare
            )
        return self._insert(table, rows, f" ON CONFLICT ({conflict}) {action}{where}")

    def replace(self, table: str, rows: pa.Table | ir.Table) -> int:
        self._execute(f"DELETE FROM {quote(table)}")  # not TRUNCATE: readers keep their snapshot meanwhile
        return self._insert(table, rows)

    def delete(self, table: str, column: str | None = None, values: ir.Column | Sequence[Any] | None = None) -> None:
        if column is None:
            self._execute(f"DELETE FROM {quote(table)}")
            return
        if isinstance(values, ir.Column):
            keys = values.as_table()
            self.backend._run_pre_execute_hooks(keys)
            self._execute(
                f"DELETE FROM {quote(table)} WHERE {quote(column)} IN"
                f" (SELECT * FROM ({self.backend.compile(keys)}) AS __tp_keys)"
            )
            return
        listed = list(values or [])
        for start in range(0, len(listed), 10_000):  # a statement takes at most 65535 parameters
            chunk = listed[start : start + 10_000]
            marks = ", ".join("%s" for _ in chunk)
            self._execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} IN ({marks})", chunk)

    def update(self, table: str, values: dict[str, Any], *, key: str, value: Any) -> None:
        sets = ", ".join(f"{quote(c)} = %s" for c in values)
        self._execute(f"UPDATE {quote(table)} SET {sets} WHERE {quote(key)} = %s", [*values.values(), value])


class _PostgresMigrationCursor(MigrationCursor):
    def __init__(self, con: psycopg.Connection[Any]) -> None:
        self.con = con

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.con.cursor() as cur:
            if params:  # the contract's placeholders are ``?``; psycopg's are ``%s``
                if "'" in sql or "%" in sql:
                    raise ValueError("a migration with parameters must not hold literals or '%'")
                cur.execute(sql.replace("?", "%s"), list(params))
            else:
                cur.execute(sql)

    def rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            yield from (tuple(r) for r in cur.execute(sql).fetchall())


class PostgresWarehouse(Warehouse):
    """PostgreSQL behind the warehouse contract: a connection per thread, many writing processes."""

    dialect = "postgres"

    def __init__(self, url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> None:
        import psycopg  # noqa: F401  (fail here, with the URL in the message, if the driver is missing)

        scheme = urlsplit(url).scheme
        self.url = url
        self.read_only = read_only
        # libpq reads postgresql:// and postgres:// URIs itself (host, port, sslmode, a socket directory...)
        self._conninfo = "postgresql" + url[len(scheme) :] if scheme in ("postgresql", "postgres") else url
        self._local = threading.local()
        self._backends: dict[threading.Thread, PostgresBackend] = {}
        self._guard = threading.Lock()
        self._closed = False
        self._write_locks = {lane: threading.RLock() for lane in WRITE_LANES}
        self._json: dict[str, frozenset[str]] = {}
        self._compiler = _compiler()
        #: False makes the events lane share the main lane's lock (as on DuckDB; bench/write_lock.py)
        self.separate_event_lane = True
        self._check_collation()  # connects now: a wrong URL or a server that is down fails here, with a hint

    def _check_collation(self) -> None:
        """Warn when text sorts by a language's rules: DuckDB compares bytes, so ``ORDER BY`` and ``min()`` of
        text (tie-breaks, first-seen identifiers) could differ between the engines (docs/scaling.md)."""
        with self._backend().con.cursor() as cur:
            row = cur.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()
        collation = str(row[0]) if row else ""
        if collation not in ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"):
            log.warning(
                "the PostgreSQL database of %s sorts text by the %r collation, not byte order as DuckDB does; "
                "create it with LC_COLLATE 'C' (TEMPLATE template0) for the same orderings (docs/scaling.md)",
                redact(self.url),
                collation,
            )

    # -- per-thread connections ----------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        # read_only refuses write() here, but the session stays writable: analytics create temporary tables
        # (Ibis's in-memory tables, identity's scratch), which a read-only transaction forbids
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                application_name="touchpoint",
                # analytics chain common table expressions; the planner estimates a filtered one at a row or
                # two and then nests loops over tens of thousands (the demo's 4-step funnel on 39,000
                # events: over 10 minutes, 13 s without nested loops). Point reads turn them back on
                # (:meth:`prepared`), where an index lookup per row is the right plan.
                options="-c timezone=UTC -c enable_nestloop=off",
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WarehouseError(
                f"cannot connect to the PostgreSQL warehouse {redact(self.url)}: {first}",
                hint="check that the server runs and that TOUCHPOINT_WAREHOUSE_URL names its host, port, "
                "database, user and password (postgresql://user:pass@host:5432/db)",
            ) from exc

    def _backend(self) -> PostgresBackend:
        backend: PostgresBackend | None = getattr(self._local, "backend", None)
        if backend is not None:
            return backend
        with self._guard:
            if self._closed:
                raise WarehouseError(f"the warehouse {redact(self.url)} is closed", hint="open it again")
            finished = [t for t in self._backends if not t.is_alive()]
        for thread in finished:  # a finished thread's connection
            with self._guard:
                old = self._backends.pop(thread, None)
            if old is not None:
                with contextlib.suppress(Exception):
                    old.con.close()
        con = self._connect()
        from psycopg.types.numeric import FloatLoader
        from psycopg.types.string import TextLoader

        for kind in ("json", "jsonb"):  # as text, exactly as stored (what Ibis expects of a json column)
            con.adapters.register_loader(kind, TextLoader)
        # numeric is what PostgreSQL's avg() and sum() of integers return where Ibis (and DuckDB) give a
        # double; the warehouse declares no decimal column, so numeric is read as a float
        con.adapters.register_loader("numeric", FloatLoader)
        backend = _backend_class().from_connection(con)
        backend.compiler = self._compiler
        with self._guard:
            if self._closed:
                con.close()
                raise WarehouseError(f"the warehouse {redact(self.url)} is closed", hint="open it again")
            self._backends[threading.current_thread()] = backend
        self._local.backend = backend
        return backend

    @property
    def ibis(self) -> PostgresBackend:
        return self._backend()

    def tables(self) -> list[str]:
        """The warehouse's own tables in the connection's schema (not temporary tables)."""
        with self._backend().con.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
            return [str(r[0]) for r in cur.fetchall()]

    def json_columns(self, table: str) -> frozenset[str]:
        """The columns of ``table`` declared JSON (stored as ``json``: the text as sent, key order kept)."""
        if table not in self._json:
            from touchpoint.warehouse import schema

            specs = {spec.name: spec for spec in schema.all_tables()}
            spec = specs.get(table)
            found = frozenset(n for n, t in spec.schema.items() if t.is_json()) if spec else frozenset()
            self._json[table] = found
        return self._json[table]

    def query(self, sql: str) -> pa.Table:
        con = self._backend().con
        with con.transaction(), con.cursor() as cur:
            if con.info.transaction_status == 2 and not getattr(self._local, "transaction", None):
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(sql)
            if cur.description is None:
                return pa.table({})
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        arrays = []
        for i in range(len(names)):
            values = [r[i] for r in rows]
            if any(isinstance(v, dict | list) for v in values):
                values = [None if v is None else json.dumps(v) for v in values]
            arrays.append(pa.array(values))
        return pa.Table.from_arrays(arrays, names=names)

    def prepared(self, build: Callable[..., ir.Expr], *values: str, key: Hashable = None) -> Any:
        """The base class's read, planned with nested-loop joins allowed: these reads select one customer's
        rows by key, where a loop of index lookups beats hashing whole tables (sessions plan analytics
        without them: see :meth:`_connect`)."""
        import psycopg

        con = self._backend().con
        con.execute("SET enable_nestloop = on")
        try:
            return super().prepared(build, *values, key=key)
        finally:  # in a transaction that failed, its rollback restores the session's setting
            with contextlib.suppress(psycopg.Error):
                con.execute("SET enable_nestloop = off")

    def ping(self) -> None:
        with self._backend().con.cursor() as cur:
            cur.execute("SELECT 1").fetchone()

    # -- writes ----------------------------------------------------------------------------------------
    @contextmanager
    def write(self, *, lane: str = "main") -> Iterator[Transaction]:
        if lane not in self._write_locks:
            raise ValueError(f"write lane {lane!r} is not known; use one of {', '.join(WRITE_LANES)}")
        outer: PostgresTransaction | None = getattr(self._local, "transaction", None)
        if outer is not None:  # nested: part of the transaction already open in this thread
            yield outer
            return
        if self.read_only:
            raise WarehouseError(
                f"the warehouse {redact(self.url)} is open read-only", hint="open it without read_only to write"
            )
        backend = self._backend()
        if not self.separate_event_lane:
            lane = "main"
        with self._write_locks[lane], backend.con.transaction():
            if lane == "main":  # one main-lane writer across every process (check-then-write stays safe)
                with backend.con.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key("lane:main")])
            tx = PostgresTransaction(self, backend)
            self._local.transaction = tx
            try:
                yield tx
            finally:
                self._local.transaction = None

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """As :meth:`Warehouse.exclusive`, and across processes: the outermost entry in a thread also
        holds a PostgreSQL advisory lock named after ``name``, on a connection of its own (released
        when the section ends, or by the server if this process dies)."""
        with super().exclusive(name):
            held: dict[str, int] | None = getattr(self._local, "sections", None)
            if held is None:
                held = self._local.sections = {}
            if held.get(name):
                held[name] += 1
                try:
                    yield
                finally:
                    held[name] -= 1
                return
            con = self._connect()
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT pg_advisory_lock(%s)", [advisory_key(f"section:{name}")])
                held[name] = 1
                try:
                    yield
                finally:
                    held[name] = 0
            finally:
                con.close()  # ends the session: the advisory lock goes with it

    @contextmanager
    def staged(self, rows: pa.Table | ir.Table) -> Iterator[pa.Table | ir.Table]:
        if isinstance(rows, pa.Table) or getattr(self._local, "transaction", None) is not None:
            yield rows
            return
        backend = self._backend()
        name = f"__tp_stage_{next(_names)}"
        backend._run_pre_execute_hooks(rows)
        with backend.con.cursor() as cur:
            cur.execute(f"CREATE TEMPORARY TABLE {quote(name)} AS {backend.compile(rows)}")
        try:
            yield backend.table(name)
        finally:
            with contextlib.suppress(Exception):  # a temporary table dies with its session anyway
                backend.drop_table(name, force=True)

    # -- compaction ------------------------------------------------------------------------------------
    def compact(self) -> dict[str, Any]:
        """``VACUUM FULL`` every table: each is rewritten into new files without its deleted rows, and the
        old files are removed. The server's write-ahead log keeps a deleted row's bytes until its
        segments are recycled (after the next checkpoints); docs/scaling.md says what that means."""
        if getattr(self._local, "transaction", None) is not None:
            raise WarehouseError("compact() cannot run inside a write transaction", hint="call it after the write")
        start = time.perf_counter()
        con = self._connect()  # VACUUM runs outside any transaction
        try:
            with con.cursor() as cur:
                before = int(cur.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
                for table in self.tables():
                    cur.execute(f"VACUUM FULL {quote(table)}")
                if _is_superuser(cur):  # recycle the log segments that still hold the old rows sooner
                    cur.execute("CHECKPOINT")
                after = int(cur.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
        finally:
            con.close()
        return {
            "engine": "postgres",
            "method": "VACUUM FULL of every table (rewritten into new files; the old ones removed)",
            "seconds": round(time.perf_counter() - start, 3),
            "bytes_before": before,
            "bytes_after": after,
        }

    # -- schema ----------------------------------------------------------------------------------------
    def column_type(self, dtype: dt.DataType) -> str:
        from ibis.backends.sql.datatypes import PostgresType

        return sql_type(PostgresType, dtype, self.dialect)

    @contextmanager
    def migration_transaction(self) -> Iterator[MigrationCursor]:
        with self.write() as tx:
            assert isinstance(tx, PostgresTransaction)
            yield _PostgresMigrationCursor(tx.con)

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            backends = list(self._backends.values())
            self._backends.clear()
        for backend in backends:
            with contextlib.suppress(Exception):
                backend.con.close()


def _is_superuser(cur: Any) -> bool:
    row = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])
