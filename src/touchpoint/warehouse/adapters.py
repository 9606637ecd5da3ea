"""Engine adapters: the only place where SQL specific to one engine is written.

Analytics are Ibis expressions and run on any engine Ibis supports. What Ibis does not
express portably lives here, one class per engine: DDL with primary keys, inserts that skip
rows whose key already exists, upserts, transactions, and read-only connections.

Only DuckDB is implemented today. An engine without an adapter gets a clear error that names
the engines that have one; adding PostgreSQL or Spark means adding a class here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import ibis
import pyarrow as pa

from touchpoint.errors import ConfigError, WarehouseError, WarehouseLocked
from touchpoint.warehouse.lockholder import lock_holder
from touchpoint.warehouse.private_files import make_private, private_dir

if TYPE_CHECKING:
    from ibis.backends.duckdb import Backend as DuckDBBackend

    from touchpoint.warehouse.schema import TableSpec


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBAdapter:
    """Embedded DuckDB: one file, no server, one writing process at a time."""

    dialect = "duckdb"

    def __init__(self, url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> None:
        parts = urlsplit(url)
        raw_path = (parts.netloc + parts.path) if parts.netloc else parts.path
        self.path: str = raw_path or ":memory:"
        options = dict(parse_qsl(parts.query))
        options.update({k: v for k, v in (config or {}).items() if v is not None})
        if self.path != ":memory:":
            private_dir(Path(self.path).parent)  # a new data directory is 0700
        self.read_only = read_only
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise WarehouseError(
                f"there is no warehouse at {self.path}",
                hint="load data first (`touchpoint import ...` or `touchpoint demo`) or check --data",
            )
        try:
            self.backend: DuckDBBackend = ibis.duckdb.connect(self.path, read_only=read_only, **options)
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

    # -- connections -------------------------------------------------------------------------
    @property
    def raw(self) -> Any:
        """The underlying ``duckdb.DuckDBPyConnection`` (never share it across threads)."""
        return self.backend.con

    def cursor(self) -> Any:
        """A new connection to the same database, for use by one other thread."""
        return self.backend.con.cursor()

    def close(self) -> None:
        self.backend.disconnect()

    # -- DDL ---------------------------------------------------------------------------------
    def column_type(self, dtype: Any) -> str:
        return str(self.backend.compiler.type_mapper.from_ibis(dtype).sql(self.dialect))

    def create_table_sql(self, spec: TableSpec) -> str:
        cols = []
        for name, dtype in spec.schema.items():
            null = " NOT NULL" if name in spec.not_null else ""
            cols.append(f"{_quote(name)} {self.column_type(dtype)}{null}")
        if spec.key:
            cols.append("PRIMARY KEY (" + ", ".join(_quote(k) for k in spec.key) + ")")
        return f"CREATE TABLE IF NOT EXISTS {_quote(spec.name)} (\n  " + ",\n  ".join(cols) + "\n)"

    def add_column_sql(self, table: str, column: str, dtype: Any) -> str:
        return f"ALTER TABLE {_quote(table)} ADD COLUMN IF NOT EXISTS {_quote(column)} {self.column_type(dtype)}"

    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, cur: Any) -> Iterator[Any]:
        """BEGIN ... COMMIT on ``cur``; on any error ROLLBACK and re-raise. COMMIT is durable (WAL fsync)."""
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")

    def insert_new(self, cur: Any, table: str, rows: pa.Table) -> int:
        """Insert ``rows``, skipping any whose key is already stored (or repeated in ``rows``).

        Returns how many rows were inserted.
        """
        if rows.num_rows == 0:
            return 0
        view = f"__tp_rows_{table}"
        cur.register(view, rows)
        try:
            result = cur.execute(
                f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM {view} ON CONFLICT DO NOTHING"
            ).fetchone()
        finally:
            cur.unregister(view)
        return int(result[0]) if result else 0

    def upsert(self, cur: Any, table: str, rows: pa.Table, key: tuple[str, ...], compare: tuple[str, ...] = ()) -> int:
        """Insert ``rows``; a row whose key is stored replaces the stored values. Returns rows written.

        With ``compare``, a stored row is only rewritten when one of those columns differs, so
        loading the same data twice writes nothing the second time.
        """
        if rows.num_rows == 0:
            return 0
        view = f"__tp_rows_{table}"
        cur.register(view, rows)
        updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in rows.column_names if c not in key)
        conflict = ", ".join(_quote(k) for k in key)
        where = ""
        if compare:
            where = " WHERE " + " OR ".join(
                f"{_quote(table)}.{_quote(c)} IS DISTINCT FROM excluded.{_quote(c)}" for c in compare
            )
        try:
            result = cur.execute(
                f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM {view} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}{where}"
            ).fetchone()
        finally:
            cur.unregister(view)
        return int(result[0]) if result else 0

    def update(self, cur: Any, table: str, values: dict[str, Any], *, key: str, value: Any) -> None:
        """``UPDATE table SET ... WHERE key = value`` (parameterised)."""
        sets = ", ".join(f"{_quote(c)} = ?" for c in values)
        cur.execute(f"UPDATE {_quote(table)} SET {sets} WHERE {_quote(key)} = ?", [*values.values(), value])

    def update_many(self, cur: Any, table: str, rows: pa.Table, *, key: str) -> None:
        """Set the other columns of ``rows`` on the stored rows with the same ``key``, in one statement."""
        if rows.num_rows == 0:
            return
        view = f"__tp_updates_{table}"
        cur.register(view, rows)
        sets = ", ".join(f"{_quote(c)} = u.{_quote(c)}" for c in rows.column_names if c != key)
        try:
            where = f"{_quote(table)}.{_quote(key)} = u.{_quote(key)}"
            cur.execute(f"UPDATE {_quote(table)} SET {sets} FROM {view} AS u WHERE {where}")
        finally:
            cur.unregister(view)

    def execute(self, cur: Any, sql: str, params: list[Any] | None = None) -> Any:
        return cur.execute(sql, params or [])

    # -- reads -------------------------------------------------------------------------------
    def fetch_one(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        """One row of a parameterised lookup (portable SQL with ``?`` placeholders)."""
        cur = self.cursor()
        try:
            row = cur.execute(sql, params or []).fetchone()
            return tuple(row) if row is not None else None
        finally:
            cur.close()

    def query_arrow(self, sql: str) -> pa.Table:
        """Run one read-only statement and return its rows as Arrow."""
        cur = self.cursor()
        try:
            relation = cur.sql(sql)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        finally:
            cur.close()


ADAPTERS: dict[str, type[DuckDBAdapter]] = {"duckdb": DuckDBAdapter}


def adapter_for(url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> DuckDBAdapter:
    scheme = urlsplit(url).scheme
    try:
        cls = ADAPTERS[scheme]
    except KeyError:
        raise ConfigError(
            f"no warehouse adapter for {scheme!r} URLs (from {url!r})",
            hint=f"use one of: {', '.join(s + '://' for s in ADAPTERS)}",
        ) from None
    return cls(url, read_only=read_only, config=config)
