"""Run a user's SQL over the warehouse without letting it reach the host.

Two guards, so that one bug in either does not open the machine:

1. **The statement is parsed before it runs** (sqlglot, DuckDB dialect) and refused unless it is one
   ``SELECT`` (``WITH`` and set operations included, or ``DESCRIBE``/``SUMMARIZE`` of a table, or
   ``SHOW TABLES``) that reads only the warehouse's own tables: no table function except ``range``,
   ``generate_series`` and ``unnest``, no function that reads files or URLs (``read_text``, ``read_csv``,
   ``glob``, ``parquet_scan``, ...), no function the engine has not loaded (calling one would install an
   extension), no quoted name that DuckDB would read as a file (``FROM '/etc/passwd'``).
   What runs is the SQL regenerated from the checked tree, so the engine never sees text the check did not.
2. **The engine cannot touch files or extensions** when the query has a database instance of its own
   (:func:`open_query_warehouse`, used by ``touchpoint query``): ``enable_external_access``,
   ``autoinstall_known_extensions`` and ``autoload_known_extensions`` are off and ``lock_configuration`` is
   on, so no ``SET`` can turn them back. These settings are global to a DuckDB instance and cannot be undone,
   so they are never applied to an instance shared with the collector or the importers (measured: a second,
   locked instance on the same file in the same process is refused by DuckDB); there the parse guard holds
   alone, and the statement runs in a transaction that is rolled back.

Every query has a time limit (DuckDB has none of its own: a timer thread interrupts the connection) and a
row limit; both answer with an :class:`~touchpoint.errors.InvalidInput` that says how to raise them.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> run_readonly_query(wh, "SELECT count(*) AS n FROM events").table.to_pylist()
[{'n': 0}]
>>> run_readonly_query(wh, "SELECT * FROM read_text('/etc/passwd')")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
touchpoint.errors.InvalidInput: refused: the query reads from the table function read_text(); ...
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from touchpoint.errors import ConfigError, InvalidInput
from touchpoint.warehouse.duckdb_engine import DuckDBWarehouse

if TYPE_CHECKING:
    from touchpoint.config import Settings
    from touchpoint.warehouse.base import Warehouse

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 30.0
MAX_SQL_CHARS = 100_000

#: Tables holding credentials (key hashes, password hashes, session tokens): no query reads them, whoever asks.
CREDENTIAL_TABLES = frozenset({"api_keys", "sources", "users", "web_sessions"})
#: Tables only an admin reads over HTTP (as GET /v1/audit and /v1/privacy/erasures): hidden from read keys.
ADMIN_TABLES = frozenset({"audit_log", "privacy_erasures", "privacy_suppressions"})

# Table functions that only generate values; every other function in FROM is refused.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Functions that reach outside the warehouse (files, URLs, the environment, other SQL, the engine's state).
_DENIED_FUNCTIONS = frozenset(
    {
        "glob",
        "getenv",
        "query",
        "query_table",
        "sniff_csv",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_bloom_probe",
        "load_extension",
        "which_secret",
        "current_setting",
        "http_get",
        "http_post",
    }
)
_DENIED_PREFIXES = ("read_", "pragma_", "duckdb_", "st_read", "sqlite_", "postgres_", "mysql_", "iceberg_", "delta_")
_DENIED_SUFFIXES = ("_scan", "_attach")
_READ_ONLY_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Describe, exp.Summarize)
_ENGINE_GUARD = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)
_HINT = 'write one SELECT over the warehouse\'s tables; `touchpoint query "SHOW TABLES"` lists them'


@dataclass(frozen=True)
class QueryResult:
    """The rows of a sandboxed query, at most ``max_rows`` of them (``truncated`` when there were more)."""

    table: pa.Table
    truncated: bool
    max_rows: int
    seconds: float
    engine_locked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.table.column_names,
            "rows": self.table.to_pylist(),
            "truncated": self.truncated,
            "max_rows": self.max_rows,
            "seconds": round(self.seconds, 4),
        }


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _denied(name: str) -> bool:
    return name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES) or name.endswith(_DENIED_SUFFIXES)


def _refuse(what: str, why: str) -> InvalidInput:
    return InvalidInput(f"refused: the query {what}; {why}", hint=_HINT)


_STATEMENTS_REFUSED = (
    "only read-only queries run here (SELECT or WITH ... SELECT); "
    "ATTACH, COPY, EXPORT, INSTALL, LOAD, SET, PRAGMA, CALL and writes are refused"
)
_FIRST_WORDS = frozenset({"SELECT", "WITH", "FROM", "(", "DESCRIBE", "DESC", "SUMMARIZE", "SHOW", "VALUES", "TABLE"})
# DuckDB statements sqlglot's tokenizer sees as plain words (a typo such as SELEC is one too: it fails to parse).
_WORD_STATEMENTS = frozenset({"EXPORT", "IMPORT", "CHECKPOINT", "FORCE", "RESET", "ANALYZE", "EXPLAIN", "VACUUM"})


def _parse(sql: str) -> exp.Expression:
    if len(sql) > MAX_SQL_CHARS:
        raise InvalidInput(f"the SQL is {len(sql):,} characters long, over {MAX_SQL_CHARS:,}", hint="shorten it")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"the SQL is not valid text: {sql[exc.start]!r} at position {exc.start}", hint="send UTF-8 text"
        ) from None
    try:
        tokens = [t for t in sqlglot.tokenize(sql, read="duckdb") if t.token_type != TokenType.SEMICOLON]
        first_word = tokens[0].text.upper() if tokens else ""
        is_word = bool(tokens) and tokens[0].token_type == TokenType.VAR
        if tokens and first_word not in _FIRST_WORDS and (not is_word or first_word in _WORD_STATEMENTS):
            raise _refuse(f"is a {tokens[0].text.upper()} statement", _STATEMENTS_REFUSED)
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"the SQL does not parse: {first}", hint="check the SQL (DuckDB dialect)") from None
    except RecursionError:
        raise InvalidInput("the SQL nests too deeply to check", hint="flatten it (fewer nested parentheses)") from None
    if not statements:
        raise InvalidInput("the SQL is empty", hint=_HINT)
    if len(statements) > 1:
        raise _refuse(f"has {len(statements)} statements", "only one statement may run at a time")
    return statements[0]


def _check_root(tree: exp.Expression) -> None:
    if isinstance(tree, exp.Show):
        if str(tree.name).upper() not in ("TABLES", "ALL TABLES"):
            raise _refuse(f"is SHOW {tree.name}", "only SHOW TABLES is allowed")
        return
    if not isinstance(tree, _READ_ONLY_ROOTS) and tree.key in ("alias", "column", "identifier", "literal", "tuple"):
        start = tree.sql("duckdb").split()[0] if tree.sql("duckdb") else ""
        raise InvalidInput(
            f"the SQL does not parse as a statement (it starts with {start!r})", hint="check the SQL (DuckDB dialect)"
        )
    if not isinstance(tree, _READ_ONLY_ROOTS):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise _refuse(f"is a {kind} statement", _STATEMENTS_REFUSED)


def check_query(sql: str, tables: set[str], hidden: frozenset[str] = CREDENTIAL_TABLES) -> exp.Expression:
    """Parse ``sql`` and return its tree if it is one read-only statement over ``tables``; else raise.

    ``tables`` are the names the statement may read (lower case); names defined by its own ``WITH`` are
    allowed too, ``hidden`` ones never. The error names the refused construct and says why.
    """
    tree = _parse(sql)
    _check_root(tree)
    defined = {str(cte.alias_or_name).lower() for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, (exp.Command, exp.Set, exp.Pragma, exp.Copy, exp.Attach, exp.Install, exp.DDL, exp.DML)):
            raise _refuse(f"contains a {node.key.upper()} statement", "only read-only queries run here")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if _denied(name):
                raise _refuse(
                    f"calls {name}(), which reads files or URLs",
                    "only the warehouse's own tables can be read here",
                )
        if isinstance(node, exp.Table):
            _check_table(node, tables - hidden, defined, hidden)
    return tree


def _check_table(node: exp.Table, tables: set[str], defined: set[str], hidden: frozenset[str]) -> None:
    source = node.this
    if isinstance(source, exp.Func):
        name = _function_name(source)
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise _refuse(
                f"reads from the table function {name}()",
                f"only {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))} may appear in FROM",
            )
        return
    if not isinstance(source, exp.Identifier):
        raise _refuse(f"reads from {node.sql('duckdb')!r}", "only the warehouse's tables can be read here")
    name = str(source.name)
    schema, catalog = str(node.db).lower(), str(node.catalog)
    if catalog:
        raise _refuse(f"names the database {catalog!r}", "only the warehouse itself can be read here")
    if schema == "information_schema":
        return
    if schema in ("", "main") and name.lower() in hidden:  # before CTE names: `WITH users AS (... FROM users)`
        why = "it holds credentials" if name.lower() in CREDENTIAL_TABLES else "only an admin key reads it"
        raise _refuse(f"reads {name}, which is not open to this query", f"{why} (docs/security.md)")
    if schema in ("", "main") and (name.lower() in tables or (not schema and name.lower() in defined)):
        return
    if any(c in name for c in "/\\.:~"):
        raise _refuse(f"reads from {name!r}, which DuckDB would open as a file", "files cannot be read here")
    raise _refuse(f"reads from {node.sql('duckdb')}, which is not a table of the warehouse", "check the name")


# SQL forms sqlglot writes as NAME(...) that are syntax, not entries of duckdb_functions().
_SYNTAX_FORMS = frozenset(
    {"cast", "try_cast", "extract", "coalesce", "exists", "columns", "unnest", "grouping", "position", "row"}
)
_HEAD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")


_KNOWN_FUNCTIONS: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def _known_functions(adapter: Any, cur: Any, *, refresh: bool = False) -> frozenset[str]:
    """The function names the engine has loaded, cached per warehouse (listing them takes ~100 ms)."""
    known = _KNOWN_FUNCTIONS.get(adapter)
    if known is None or refresh:
        rows = cur.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions()").fetchall()
        known = _KNOWN_FUNCTIONS[adapter] = frozenset(str(r[0]) for r in rows)
    return known


def _check_functions_exist(adapter: Any, cur: Any, tree: exp.Expression) -> None:
    """Refuse functions the engine does not have loaded: calling one would install and load an extension."""
    names: set[str] = set()
    for node in tree.find_all(exp.Func):
        head = _HEAD.match(node.sql(dialect="duckdb"))
        if head and head.group(1).lower() not in _SYNTAX_FORMS:
            names.add(head.group(1).lower())
    missing = names - _known_functions(adapter, cur)
    if missing:  # an extension may have been loaded since the list was cached
        missing -= _known_functions(adapter, cur, refresh=True)
    if missing:
        raise _refuse(
            f"calls {sorted(missing)[0]}(), which this engine does not have",
            "extensions are not installed or loaded on demand here; check the function's name",
        )


def _duckdb(wh: Warehouse) -> DuckDBWarehouse:
    if not isinstance(wh, DuckDBWarehouse):
        raise ConfigError(
            f"the query sandbox runs on DuckDB only, not on {type(wh).__name__}",
            hint="query that engine with its own tools and permissions",
        )
    return wh


def lock_engine(wh: Warehouse) -> None:
    """Turn off the engine's file, network and extension access for good, and lock its configuration.

    This holds for the whole DuckDB instance until it closes and cannot be undone, so call it only on an
    instance opened for queries alone (:func:`open_query_warehouse`), never on one the collector shares.
    """
    cur = _duckdb(wh).connection()
    try:
        for statement in _ENGINE_GUARD:
            cur.execute(statement)
    finally:
        cur.close()


def engine_locked(cur: Any) -> bool:
    """Whether the engine guard is on for the instance ``cur`` belongs to."""
    row = cur.execute(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
    ).fetchone()
    return row is not None and row[0] is False and row[1] is True


def open_query_warehouse(settings: Settings) -> Warehouse:
    """The warehouse opened read-only in an instance of its own, with the engine guard on."""
    from touchpoint.warehouse.warehouse import open_warehouse

    wh = open_warehouse(settings, read_only=True)
    try:
        lock_engine(wh)
    except BaseException:
        wh.close()
        raise
    return wh


def _tables(cur: Any) -> set[str]:
    rows = cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database()"
    ).fetchall()
    return {str(r[0]).lower() for r in rows}


def _fetch(cur: Any, sql: str, max_rows: int) -> tuple[pa.Table, bool]:
    relation = cur.sql(sql)
    if relation is None:  # a statement with no result (the engine's locks refuse every write)
        return pa.table({}), False
    reader = relation.to_arrow_reader(min(max_rows + 1, 100_000))
    batches: list[pa.RecordBatch] = []
    seen = 0
    for batch in reader:
        batches.append(batch)
        seen += batch.num_rows
        if seen > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, max_rows), seen > max_rows


def run_readonly_query(
    wh: Warehouse,
    sql: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    hidden: frozenset[str] = CREDENTIAL_TABLES,
) -> QueryResult:
    """Check ``sql`` (:func:`check_query`) and run it with a time and a row limit; ``hidden`` tables are
    refused (the credential tables always; the HTTP API hides :data:`ADMIN_TABLES` from read keys too).

    Refused SQL, a timeout and engine errors raise :class:`~touchpoint.errors.InvalidInput` (HTTP 400)
    naming the construct or the limit and how to proceed. More than ``max_rows`` rows are cut to
    ``max_rows`` and reported as ``truncated``.
    """
    if max_rows < 1:
        raise InvalidInput(f"the row limit {max_rows} is below 1", hint="use --limit 1 or more")
    if not timeout_s > 0:
        raise InvalidInput(f"the time limit {timeout_s} s is not positive", hint="use --timeout 1 or more")
    import duckdb

    started = time.perf_counter()
    cur = _duckdb(wh).connection()
    timer = threading.Timer(timeout_s, cur.interrupt)
    try:
        try:
            tree = check_query(sql, _tables(cur), hidden)
            _check_functions_exist(wh, cur, tree)
            checked_sql = tree.sql(dialect="duckdb")
        except RecursionError:
            raise InvalidInput("the SQL nests too deeply to check", hint="flatten it (fewer nested levels)") from None
        locked = engine_locked(cur)
        cur.execute("BEGIN TRANSACTION")
        timer.start()
        try:
            table, truncated = _fetch(cur, checked_sql, max_rows)
        finally:
            timer.cancel()
            cur.execute("ROLLBACK")
    except duckdb.InterruptException:
        raise InvalidInput(
            f"the query ran longer than {timeout_s:g} s and was stopped",
            hint="narrow it (fewer rows, a WHERE on time), or allow more time with --timeout SECONDS",
        ) from None
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInput(f"the query failed: {first}", hint="check the SQL; only reads are allowed") from None
    finally:
        timer.cancel()
        cur.close()
    return QueryResult(table, truncated, max_rows, time.perf_counter() - started, locked)
