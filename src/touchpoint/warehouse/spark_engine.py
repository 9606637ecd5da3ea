"""Apache Spark: the analytics over Parquet tables in a directory, on a local or cluster Spark session.

URLs (docs/configuration.md, docs/scaling.md):

* ``spark+local:///data/warehouse?threads=2`` - Spark in this process's JVM (``local[2]``; ``threads`` is
  ``*`` by default, every core) over the warehouse directory ``/data/warehouse``.
* ``spark://master:7077?warehouse=/mnt/shared/touchpoint`` - a Spark standalone cluster (the URL, less its
  query, is Spark's own master URL); ``warehouse`` is where the tables' files go: a directory mounted at the
  same path on this machine and every executor. HDFS and S3 locations are refused for now: a failed
  transaction's rollback hard-links files and opening lists the tables' directories, both on a file system.
* ``sc://host:15002?warehouse=...`` - a Spark Connect server (Databricks, EMR, ``start-connect-server.sh``;
  Connect's own parameters, such as ``/;token=...``, stay in the URL). The server runs Spark and writes the
  tables' files; this process holds a remote session per warehouse and reads and writes the same directory
  (links for rollback, the tables' directories at open, scratch folders), so ``warehouse`` must be the same
  path here and on the server and its executors (one machine, or shared storage mounted at one path).

Other query settings: ``memory`` (``spark.driver.memory``, default ``2g``), ``partitions``
(``spark.sql.shuffle.partitions``, default 8), ``database`` (the Spark database the tables are in,
default ``tp_`` and a hash of the warehouse location).

Temporary tables (identity's rounds, :meth:`SparkWarehouse.staged`) are Parquet files in
``<warehouse>/_tp_scratch/<host>-<pid>-<id>/`` (one folder per open warehouse, removed at close, or by the
next open on that machine once the process is gone) read back as temporary views.

Storage: every declared table is a Parquet table in ``<warehouse>/<table>/``, registered in Spark's own
catalog as an external table of its database. The catalog is the in-memory one (no metastore to run):
each open registers the declared tables again over their directories, so the files are the truth and
any process (or any Spark) can read them. Parquet has no transactions, so the adapter provides them
where the files are local (docs/decisions.md, 2026-12-02, "Spark: Parquet tables"):

* an append adds files; ``replace``, ``delete``, ``update`` and ``upsert`` compute the table's new rows
  (written as Parquet to the scratch folder and read back, so the table may be read while it is
  overwritten) and overwrite it (``INSERT OVERWRITE``): they cost a rewrite of the table, which is what a
  data lake does;
* before a transaction first changes a table it hard-links the table's files aside; an error restores
  them, a commit drops the links. A transaction a killed process left unfinished (its folder in
  ``.tp_transactions/`` not renamed ``*.done``) is rolled back by the next writable open the same way.
  Readers are not isolated from a transaction in progress.

One writer at a time in the process (every write lane shares one lock), and one process writing a
warehouse: a writable open takes ``flock`` on ``<warehouse>/.tp_writer.lock`` and is refused, naming the
holder, while another process has it (the kernel drops the lock when that process dies, however it
dies). The collector stays on DuckDB or PostgreSQL (ingestion on Spark is Parquet batches, not rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.errors import WarehouseError
from touchpoint.warehouse.base import WRITE_LANES, MigrationCursor, Transaction, Warehouse, sql_type

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend as PySparkBackend
    from pyspark.sql import DataFrame, SparkSession

    from touchpoint.warehouse.schema import TableSpec

log = logging.getLogger(__name__)
_names = itertools.count()
_root: SparkSession | None = None  # the process's Spark session (one JVM, one SparkContext)
_root_guard = threading.Lock()
#: settings every session of the process takes; the first warehouse opened starts Spark with its own
DEFAULT_MEMORY = "2g"
DEFAULT_PARTITIONS = "8"
ROWS_PER_FILE = 1_000_000  # rows per Parquet file an append writes (at most; fewer rows make one file)


def tick(name: str) -> str:
    """``name`` as a Spark SQL identifier (backticks; an inner one doubled).

    >>> tick("events"), tick("a`b")
    ('`events`', '`a``b`')
    """
    return "`" + name.replace("`", "``") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_url(url: str) -> dict[str, str]:
    """The Spark master, the warehouse location, the database and the session settings ``url`` names.

    >>> parse_url("spark+local:///data/wh?threads=2")["master"]
    'local[2]'
    >>> p = parse_url("spark://m:7077?warehouse=/mnt/shared/tp&memory=4g")
    >>> p["master"], p["warehouse"], p["memory"]
    ('spark://m:7077', '/mnt/shared/tp', '4g')
    """
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if parts.scheme == "spark+local":
        warehouse = options.pop("warehouse", None) or (parts.netloc + parts.path)
        master = f"local[{options.pop('threads', '*')}]"
    elif parts.scheme in ("spark", "sc"):
        warehouse = options.pop("warehouse", "")
        master = urlunsplit(parts._replace(query=""))
    else:
        raise WarehouseError(f"{url!r} is not a Spark URL", hint="use spark+local:///path, spark://host:7077 or sc://")
    if not warehouse:
        raise WarehouseError(
            f"the Spark URL {url!r} names no warehouse location",
            hint="give the tables' directory: spark+local:///data/warehouse, or ?warehouse=/mounted/dir for a cluster",
        )
    if "://" in warehouse and not warehouse.startswith("file://"):
        raise WarehouseError(
            f"the Spark warehouse location {warehouse!r} is not a directory on this machine",
            hint="HDFS and S3 locations are not supported yet (rollback and opening need a file system): use a "
            "directory every executor mounts at the same path, e.g. ?warehouse=/mnt/shared/touchpoint",
        )
    warehouse = str(Path(warehouse.removeprefix("file://")).absolute())
    database = options.pop("database", "tp_" + hashlib.sha256(warehouse.encode()).hexdigest()[:12])
    return {
        "scheme": parts.scheme,
        "master": master,
        "warehouse": warehouse,
        "database": database,
        "memory": options.pop("memory", DEFAULT_MEMORY),
        "partitions": options.pop("partitions", DEFAULT_PARTITIONS),
        **options,
    }


def _pyspark() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise WarehouseError(
            "the Spark warehouse needs pyspark", hint="install touchpoint with the spark extra: touchpoint[spark]"
        ) from exc
    return SparkSession


def _cannot_start(settings: dict[str, str], exc: Exception) -> WarehouseError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if settings["scheme"] == "sc":
        return WarehouseError(
            f"cannot reach the Spark Connect server {settings['master']}: {first}",
            hint="start it (start-connect-server.sh, or your platform's cluster) and check the URL's host, port "
            "and token; the client needs the spark extra (touchpoint[spark]: grpcio and the other Connect libraries)",
        )
    return WarehouseError(
        f"cannot start Spark ({settings['master']}): {first}",
        hint="a local Spark needs a Java 17 runtime on the PATH or in JAVA_HOME (Debian: "
        "openjdk-17-jre-headless); a cluster URL must name a master that answers",
    )


def session(settings: dict[str, str]) -> SparkSession:
    """The process's Spark session, started with ``settings`` the first time (a JVM takes 10-20 s to start).

    Spark runs one SparkContext per process; every warehouse opened afterwards shares it (its master,
    memory and partitions are the first one's) through a session of its own (:func:`open_session`).
    Not for Spark Connect URLs: the server holds the SparkContext, and each warehouse has a remote session.
    """
    global _root
    with _root_guard:
        if _root is not None and not _stopped(_root):
            return _root
        builder = (
            _pyspark()
            .builder.appName("touchpoint")
            .master(settings["master"])
            .config("spark.driver.memory", settings["memory"])
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.shuffle.partitions", settings["partitions"])
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.pyspark.python", sys.executable)  # a Python UDF's workers: this interpreter
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        )
        try:
            started = builder.getOrCreate()
        except Exception as exc:  # no Java, a cluster that does not answer
            raise _cannot_start(settings, exc) from exc
        started.sparkContext.setLogLevel("ERROR")
        _root = started
        return started


def open_session(settings: dict[str, str]) -> SparkSession:
    """A Spark session of one warehouse's own (its temporary views, current database and settings apart from
    other warehouses'): a new session of the process's Spark (``newSession``), or for a Spark Connect URL
    (``sc://``) a new remote session on that server (Connect has no ``newSession``; the server runs Spark, and
    its own settings - master, memory, catalog - are the server's). A remote session takes the settings a
    session may set: UTC as its time zone (timestamps are naive UTC everywhere) and ``partitions`` (ignored
    where a platform fixes it).

    The remote session comes from Connect's own builder, not ``SparkSession.builder.remote``: that one marks
    the whole process as Spark Connect's (``SPARK_CONNECT_MODE_ENABLED``), after which ``pyspark.sql.functions``
    builds Connect columns and a local Spark in the same process (another warehouse, the tests) breaks. So
    the adapter takes its column functions from the session's kind (:func:`functions`)."""
    if settings["scheme"] != "sc":
        return session(settings).newSession()
    _pyspark()
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError as exc:  # pyspark without its connect extra
        raise _cannot_start(settings, exc) from exc
    _share_release_pool()
    builder = RemoteSession.builder.remote(settings["master"])
    try:
        remote = builder.config("spark.sql.shuffle.partitions", settings["partitions"]).create()
        remote.conf.set("spark.sql.session.timeZone", "UTC")
    except Exception as exc:  # no server there, a refused token
        raise _cannot_start(settings, exc) from exc
    return remote  # type: ignore[return-value]  # Connect's session has the classic one's interface


def functions(remote: bool) -> tuple[Any, Any]:
    """PySpark's column functions and ``Window`` for a classic session or (``remote``) a Spark Connect one."""
    if remote:
        from pyspark.sql.connect.functions import builtin
        from pyspark.sql.connect.window import Window as RemoteWindow

        return builtin, RemoteWindow
    from pyspark.sql import Window
    from pyspark.sql import functions as classic

    return classic, Window


def _share_release_pool() -> None:
    """Keep pyspark 4.0's Spark Connect client from shutting down the thread pool every remote session of the
    process shares (it sends the server ``ReleaseExecute`` calls for finished results). Any session's close,
    or its garbage collection, shuts that pool down, and a query of another session still open can then
    fail: ``RuntimeError: cannot schedule new futures after shutdown`` (seen here, 2 of 19 operations in
    one run; apache/spark#51369 and SPARK-55406 fix it upstream after 4.0). With a remote session per
    warehouse, sessions close while others run, so the shutdown is made a no-op: the pool's idle threads
    end with the process, and a closed session's server state is dropped by its ``release_session``."""
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator as Results

    if getattr(Results, "_tp_shared", False):
        return
    Results.shutdown = classmethod(lambda cls: None)  # type: ignore[method-assign,assignment]
    Results._tp_shared = True  # type: ignore[attr-defined]


def _stopped(spark: SparkSession) -> bool:
    return bool(spark.sparkContext._jsc is None)


def stop() -> None:
    """Stop the process's Spark session (tests stop it at the end of the run; a new open starts another)."""
    global _root
    with _root_guard:
        if _root is not None:
            _root.stop()
            _root = None


def _compiler() -> Any:
    """Ibis's PySpark compiler with what the domains need beyond it (each run on every engine by
    tests/engines/test_adapter_operations.py): a JSON object read as a map of each key's JSON text, and a JSON
    array as a list of each element's (Spark 4's variant: ``try_parse_json``, then ``MAP<STRING, VARIANT>``
    or ``ARRAY<VARIANT>``, each value back to JSON), as DuckDB and PostgreSQL give them; several arrays
    unnested in one select side by side (:func:`_zip_explodes`)."""
    import sqlglot as sg
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.base import NULL
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    as_map = sg.parse_one(
        "TRANSFORM_VALUES(TRY_VARIANT_GET(TRY_PARSE_JSON(__tp_arg), '$', 'MAP<STRING, VARIANT>'),"
        " (__tp_k, __tp_v) -> TO_JSON(__tp_v))",
        read="spark",
    )
    as_array = sg.parse_one(
        "TRANSFORM(TRY_VARIANT_GET(TRY_PARSE_JSON(__tp_arg), '$', 'ARRAY<VARIANT>'), __tp_v -> TO_JSON(__tp_v))",
        read="spark",
    )

    def put(template: Any, arg: Any) -> Any:
        return template.transform(
            lambda node: arg.copy() if isinstance(node, sge.Column) and node.name == "__tp_arg" else node
        )

    from ibis.backends.sql.datatypes import PySparkType

    class Types(PySparkType):  # JSON is text in Spark's tables (and in a cast)
        @classmethod
        def from_ibis(cls, dtype: dt.DataType) -> Any:
            if dtype.is_json():
                return sge.DataType.build("STRING", dialect="spark")
            return super().from_ibis(dtype)

    import ibis.expr.operations as ops

    native = (ops.UnwrapJSONString, ops.UnwrapJSONInt64, ops.UnwrapJSONFloat64, ops.UnwrapJSONBoolean)

    class Compiler(PySparkCompiler):
        type_mapper = Types
        SIMPLE_OPS: ClassVar = {op: name for op, name in PySparkCompiler.SIMPLE_OPS.items() if op not in native}

        def to_sqlglot(self, expr: Any, *, limit: Any = None, params: Any = None) -> Any:
            query = super().to_sqlglot(expr, limit=limit, params=params)
            for select in list(query.find_all(sge.Select)):
                _zip_explodes(select)
            return query

        def visit_ToJSONMap(self, op: Any, *, arg: Any) -> Any:
            return put(as_map, arg)

        def visit_ToJSONArray(self, op: Any, *, arg: Any) -> Any:
            return put(as_array, arg)

        # JSON scalars in Spark itself, as Databricks' compiler does (Ibis's PySpark one runs Python UDFs)
        def _unwrap(self, arg: Any, kinds: tuple[str, ...], to: str) -> Any:
            value = self.f.try_parse_json(arg)
            return self.if_(
                self.f.schema_of_variant(value).isin(*(sge.convert(k) for k in kinds)),
                self.f.try_variant_get(value, "$", to),
                NULL,
            )

        def visit_UnwrapJSONString(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("STRING",), "STRING")

        def visit_UnwrapJSONInt64(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("BIGINT",), "BIGINT")

        def visit_UnwrapJSONFloat64(self, op: Any, *, arg: Any) -> Any:  # any number (objects give NULL)
            value = self.f.try_parse_json(arg)
            text = self.f.schema_of_variant(value).isin(sge.convert("STRING"), sge.convert("BOOLEAN"))
            return self.if_(text, NULL, self.f.try_variant_get(value, "$", "DOUBLE"))

        def visit_UnwrapJSONBoolean(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("BOOLEAN",), "BOOLEAN")

        def visit_ArrayCollect(
            self, op: Any, *, arg: Any, where: Any, order_by: Any, include_null: Any, distinct: Any
        ) -> Any:
            if not order_by:
                return super().visit_ArrayCollect(
                    op, arg=arg, where=where, order_by=order_by, include_null=include_null, distinct=distinct
                )
            if distinct:
                raise NotImplementedError("Spark: a collect cannot be both distinct and ordered")
            keep = where
            if not include_null:
                present = arg.is_(sg.not_(NULL, copy=False))
                keep = present if keep is None else sge.And(this=present, expression=keep)
            ascending = [(k.ascending, k.nulls_first) for k in op.order_by]
            return _ordered_collect(arg, [o.this for o in order_by], ascending, keep)

    return Compiler()


def _ordered_collect(arg: Any, keys: list[Any], directions: list[tuple[bool, bool]], keep: Any) -> Any:
    """``arg``'s values of a group as an array in the order of ``keys`` (each ``(ascending, nulls_first)``), as
    DuckDB's and PostgreSQL's ``ARRAY_AGG(arg ORDER BY ...)``: Spark's ``collect_list`` keeps no order and
    Ibis 12 refuses ``order_by`` there ("ordering of order-sensitive aggregations"). Each row becomes a struct
    of its sort keys and value, ``collect_list`` gathers the structs (only the rows ``keep`` is true for),
    ``array_sort`` with a comparator orders them by the keys (NULL keys first or last as asked, each key
    ascending or descending), and ``transform`` takes the values out. Ties keep no defined order, as on the
    other engines."""
    import sqlglot as sg
    import sqlglot.expressions as sge

    def field(var: str, name: str) -> Any:
        return sge.Dot(this=sg.to_identifier(var), expression=sg.to_identifier(name))

    def num(n: int) -> Any:
        return sge.convert(n) if n >= 0 else sge.Neg(this=sge.convert(-n))

    names = [f"__tp_k{i}" for i in range(len(keys))]
    struct = sge.func(
        "NAMED_STRUCT",
        *[part for n, k in zip([*names, "__tp_v"], [*keys, arg], strict=True) for part in (sge.convert(n), k)],
    )
    element = struct if keep is None else sge.If(this=keep, true=struct, false=sge.Null())

    def null(var: str, name: str) -> Any:
        return sge.Is(this=field(var, name), expression=sge.Null())

    def not_null(var: str, name: str) -> Any:
        return sge.Not(this=null(var, name))

    ifs = []  # one flat CASE: a key that ties (equal, or NULL on both sides) falls through to the next
    for name, (ascending, nulls_first) in zip(names, directions, strict=True):
        null_side = -1 if nulls_first else 1
        order_side = -1 if ascending else 1
        left, right = field("__tp_l", name), field("__tp_r", name)
        ifs += [
            sge.If(this=sge.and_(null("__tp_l", name), not_null("__tp_r", name)), true=num(null_side)),
            sge.If(this=sge.and_(not_null("__tp_l", name), null("__tp_r", name)), true=num(-null_side)),
            sge.If(this=sge.LT(this=left.copy(), expression=right.copy()), true=num(order_side)),
            sge.If(this=sge.GT(this=left, expression=right), true=num(-order_side)),
        ]
    compare = sge.Case(ifs=ifs, default=num(0))
    comparator = sge.Lambda(this=compare, expressions=[sg.to_identifier("__tp_l"), sg.to_identifier("__tp_r")])
    ordered = sge.func("ARRAY_SORT", sge.func("COLLECT_LIST", element), comparator)
    value = sge.Lambda(this=field("__tp_e", "__tp_v"), expressions=[sg.to_identifier("__tp_e")])
    return sge.func("TRANSFORM", ordered, value)


def _zip_explodes(select: Any) -> None:
    """Unnest several arrays in one SELECT side by side, as DuckDB does (the i-th row takes each array's i-th
    element; a shorter array gives NULL): Spark crosses two ``EXPLODE``s instead. They become one generator,
    ``INLINE(ARRAYS_ZIP(a, b)) AS (x, y)``, in place of the first (the others must follow it directly, so the
    columns keep their order)."""
    import sqlglot.expressions as sge

    projections = list(select.expressions)
    spots = [
        i
        for i, p in enumerate(projections)
        if isinstance(p, sge.Alias) and isinstance(p.this, sge.Explode) and not isinstance(p.this, sge.Posexplode)
    ]
    if len(spots) < 2:
        return
    if spots != list(range(spots[0], spots[0] + len(spots))):
        raise NotImplementedError("Spark: the arrays unnested in one select must be adjacent columns")
    arrays = [projections[i].this.this for i in spots]
    names = [sge.to_identifier(projections[i].alias, quoted=True) for i in spots]
    zipped = sge.Aliases(this=sge.func("INLINE", sge.func("ARRAYS_ZIP", *arrays)), expressions=names)
    select.set("expressions", [*projections[: spots[0]], zipped, *projections[spots[-1] + 1 :]])


def _backend_class() -> type[PySparkBackend]:
    """Ibis's PySpark backend with what the warehouse needs of it:

    * temporary tables (Ibis's raise ``NotImplementedError``): the query's rows computed now, written as
      Parquet to the warehouse's scratch folder and read back under a temporary view (cut from the query that
      made them), so an iterative computation (identity's rounds) plans one step a round, not a query growing
      every round; dropping one removes its files;
    * the declared schema's JSON columns typed JSON (Parquet stores them as text);
    * results through Arrow (Spark 4's ``toArrow``), not pandas (Ibis's way, slower, and noisy on pandas 3);
    * in-memory tables (``ibis.memtable``) through Arrow too: Ibis's pandas frame turned NULLs into NaN.
    """
    import ibis
    from ibis.backends.pyspark import Backend

    ibis.pyspark  # noqa: B018  (loading it through Ibis registers its options, which its compiler reads)

    class WarehouseBackend(Backend):
        json_columns: dict[str, frozenset[str]]  # set by SparkWarehouse._backend, as are the two below
        scratch_root: str  # where temporary tables' files go (the warehouse's _tp_scratch folder)
        scratch: dict[str, str]
        temp_json: dict[str, frozenset[str]]  # this session's temporary tables' JSON columns

        def create_table(self, name: str, /, obj: Any = None, *, temp: bool | None = None, **kwargs: Any) -> Any:
            if not temp:
                return super().create_table(name, obj, temp=temp, **kwargs)
            import ibis

            table = obj if isinstance(obj, ir.Expr) else ibis.memtable(obj, schema=kwargs.get("schema"))
            self._run_pre_execute_hooks(table)
            self.temp_table_from_sql(name, str(self.compile(table)))
            # Parquet keeps JSON as text: the columns that were JSON read back as JSON (get_schema), so a
            # saved table of events is queried as the events table is (identity's incremental update)
            self.temp_json[name] = frozenset(n for n, t in table.schema().items() if t.is_json())
            return self.table(name)

        def temp_table_from_sql(self, name: str, sql: str) -> None:
            # Parquet files in the warehouse's scratch folder, read back as a temporary view: a checkpointed
            # frame joined with itself fails in Spark 4.0's analyser ("key not found"), files do not. Read
            # with the query's own schema: inferring it from the files is a Spark job of its own (identity's
            # rebuild saves about 40 tables: 204 jobs became 167)
            folder = os.path.join(self.scratch_root, f"{name}-{uuid.uuid4().hex[:8]}")
            frame = self._session.sql(sql)
            frame.write.parquet(folder)
            self._session.read.schema(frame.schema).parquet(folder).createOrReplaceTempView(name)
            self.scratch[name] = folder

        def drop_table(self, name: str, /, *, database: Any = None, force: bool = False) -> None:
            folder = self.scratch.pop(name, None)
            self.temp_json.pop(name, None)
            if folder is None:
                super().drop_table(name, database=database, force=force)
                return
            self._session.catalog.dropTempView(name)
            shutil.rmtree(folder.removeprefix("file:"), ignore_errors=True)

        def _register_in_memory_table(self, op: Any) -> None:
            # through Arrow (Spark 4 takes it), not Ibis's pandas frame, where a NULL integer became NaN and a
            # NULL string the text 'NaN' (so every value of such a column read as NULL or 'NaN')
            from ibis.backends.sql.datatypes import PySparkType

            schema = op.schema
            rows = _spark_ready(op.data.to_pyarrow(schema))
            if rows.num_rows:
                frame = self._session.createDataFrame(rows)
            else:  # a remote (Spark Connect) session cannot infer a schema from no rows: it is given one
                columns = ", ".join(f"{tick(n)} {PySparkType.from_ibis(k).sql('spark')}" for n, k in schema.items())
                frame = self._session.createDataFrame([], schema=columns)
            typed = [
                frame[tick(name)].cast(PySparkType.from_ibis(kind).sql("spark")).alias(name)
                for name, kind in schema.items()
            ]
            frame.select(*typed).createOrReplaceTempView(op.name)

        def get_schema(self, table_name: str, *, catalog: str | None = None, database: str | None = None) -> Any:
            import ibis

            found = super().get_schema(table_name, catalog=catalog, database=database)
            json = self.temp_json.get(table_name) or self.json_columns.get(table_name)
            if not json:
                return found
            return ibis.schema({c: (dt.json if c in json else kind) for c, kind in found.items()})

        def to_pyarrow(self, expr: Any, /, *, params: Any = None, limit: Any = None, **kwargs: Any) -> Any:
            from ibis.formats.pyarrow import PyArrowData

            self._run_pre_execute_hooks(expr)
            table_expr = expr.as_table()
            arrow = self._session.sql(str(self.compile(table_expr, params=params, limit=limit))).toArrow()
            return expr.__pyarrow_result__(PyArrowData.convert_table(arrow, table_expr.schema()))

        def execute(self, expr: Any, /, *, params: Any = None, limit: Any = None, **kwargs: Any) -> Any:
            from ibis.formats.pandas import PandasData

            table_expr = expr.as_table()
            frame = self.to_pyarrow(table_expr, params=params, limit=limit).to_pandas()
            return expr.__pandas_result__(PandasData.convert_table(frame, table_expr.schema()))

    return WarehouseBackend


def _drop_killed_writes(root: str) -> None:
    """Remove what a killed process's Spark write left in the tables' directories: ``_temporary`` (Hadoop's
    file committer stages each task's files there and moves them into the table when the job commits) and
    ``.spark-staging-*``. Readers skip them, but the next write's commit would not: it moves every committed
    task's files found under ``_temporary/0``, so a killed append's files would be added by the next one,
    past its dedup (``insert_new``). Run at a writable open (one process writes a Spark warehouse)."""
    for table in _files(root):
        folder = os.path.join(root, table)
        if not os.path.isdir(folder) or table.startswith((".", "_")):
            continue
        for name in _files(folder):
            if name == "_temporary" or name.startswith(".spark-staging-"):
                log.warning("removing %s: the files of a write that did not finish", os.path.join(folder, name))
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _restore(root: str, backups: str) -> list[str]:
    """Put back the tables whose files a transaction linked into ``backups`` (one folder per table; a
    ``*.partial`` folder was still being linked, so its table was not changed yet). Idempotent: running it
    again after a kill in the middle restores the same files."""
    restored = []
    for table in _files(backups):
        if table.endswith(".partial"):
            continue
        target = os.path.join(root, table)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        for name in _files(os.path.join(backups, table)):
            os.link(os.path.join(backups, table, name), os.path.join(target, name))
        restored.append(table)
    return restored


def _recover_transactions(root: str) -> None:
    """Roll back what killed processes' transactions left half done (run by the writer, holding its lock):
    a folder in ``.tp_transactions/`` not marked ``*.done`` belongs to a transaction whose caller never saw
    it commit, so its tables get their files back; marked ones committed and only their links remain."""
    folder = os.path.join(root, ".tp_transactions")
    for name in _files(folder):
        path = os.path.join(folder, name)
        if not name.endswith(".done"):
            restored = _restore(root, path)
            if restored:
                log.warning("rolled back a transaction a killed process left unfinished: %s", ", ".join(restored))
        shutil.rmtree(path, ignore_errors=True)


def _remove_dead_scratch(root: str) -> None:
    """Remove the scratch folders (temporary tables) of processes on this machine that are gone."""
    folder = os.path.join(root, "_tp_scratch")
    for name in _files(folder):
        owner = _SCRATCH_OWNER.fullmatch(name)
        if owner and owner.group(1) == _HOST and _alive(int(owner.group(2))):
            continue
        if owner and owner.group(1) != _HOST:
            continue  # another machine's process (a shared directory): only it knows whether it is done
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HOST = socket.gethostname().replace("-", "_")
_SCRATCH_OWNER = re.compile(r"(.+)-(\d+)-[0-9a-f]{8}")

# one writer process per warehouse directory: path -> (the lock file's descriptor, open writable warehouses)
_WRITER_LOCKS: dict[str, tuple[int, int]] = {}
_WRITER_GUARD = threading.Lock()


def _lock_writer(root: str, url: str) -> bool:
    """Take the warehouse's writer lock for this process; True when this call took it (not already held)."""
    import fcntl

    key = os.path.realpath(root)
    with _WRITER_GUARD:
        held = _WRITER_LOCKS.get(key)
        if held is not None:
            _WRITER_LOCKS[key] = (held[0], held[1] + 1)
            return False
        path = os.path.join(root, ".tp_writer.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            from touchpoint.warehouse.lockholder import flock_holder

            holder = flock_holder(path)
            raise WarehouseError(
                f"the Spark warehouse {url} is open for writing by {holder.describe()}: one process writes a "
                "Spark warehouse",
                hint=holder.hint() + " (or open it read-only to read)",
            ) from None
        _WRITER_LOCKS[key] = (fd, 1)
        return True


def _unlock_writer(root: str) -> None:
    key = os.path.realpath(root)
    with _WRITER_GUARD:
        held = _WRITER_LOCKS.get(key)
        if held is None:
            return
        if held[1] > 1:
            _WRITER_LOCKS[key] = (held[0], held[1] - 1)
            return
        del _WRITER_LOCKS[key]
        os.close(held[0])  # releases the flock


def _files(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


class SparkTransaction(Transaction):
    """The writes of one :meth:`SparkWarehouse.write` block (module doc: appends add files, other writes
    overwrite the table; the first change to a table links its files aside for a rollback)."""

    def __init__(self, warehouse: SparkWarehouse) -> None:
        self.warehouse = warehouse
        self.spark = warehouse.spark
        self.backups: dict[str, str] = {}  # table -> the directory its files were linked into
        self.folder = os.path.join(warehouse.local_root or "", ".tp_transactions", uuid.uuid4().hex)

    # -- rollback by files ------------------------------------------------------------------------------
    def _touch(self, table: str) -> None:
        """Link ``table``'s files aside before this transaction first changes it (local warehouses). The links
        are made in ``<table>.partial`` and the folder renamed when complete, so a kill while linking leaves
        nothing a recovery would restore from (the table itself is unchanged until this returns)."""
        if table in self.backups or self.warehouse.local_root is None:
            return
        source = self.warehouse.location(table)
        backup = os.path.join(self.folder, table)
        os.makedirs(backup + ".partial")
        for name in _files(source):
            os.link(os.path.join(source, name), os.path.join(backup + ".partial", name))
        os.rename(backup + ".partial", backup)
        self.backups[table] = backup

    def rollback(self) -> None:
        if self.backups:
            _restore(self.warehouse.local_root or "", self.folder)
            for table in self.backups:
                self.spark.catalog.refreshTable(self.warehouse.qualified(table))
        shutil.rmtree(self.folder, ignore_errors=True)
        self.backups.clear()

    def finish(self) -> None:
        """The transaction committed: mark its folder done (one rename, so a kill from here on is no
        rollback at the next open), then drop the links."""
        if self.backups:
            os.rename(self.folder, self.folder + ".done")
            shutil.rmtree(self.folder + ".done", ignore_errors=True)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.backups.clear()

    # -- rows as Spark frames -----------------------------------------------------------------------------
    def _frame(self, rows: pa.Table | ir.Table) -> DataFrame:
        if isinstance(rows, pa.Table):
            return self.spark.createDataFrame(_spark_ready(rows))
        backend = self.warehouse.ibis
        backend._run_pre_execute_hooks(rows)
        return self.spark.sql(str(backend.compile(rows)))

    def _conform(self, table: str, frame: DataFrame) -> DataFrame:
        """``frame`` as ``table``'s columns in its order (matched by name; missing ones NULL), cast to its types."""
        F, _ = functions(self.warehouse.remote)

        target = self.spark.table(self.warehouse.qualified(table)).schema
        have = set(frame.columns)
        unknown = have - {f.name for f in target.fields}
        if unknown:
            raise WarehouseError(
                f"the rows for {table!r} carry columns it does not have: {sorted(unknown)}",
                hint="write only the table's declared columns",
            )
        return frame.select(
            *[
                (F.col(tick(f.name)) if f.name in have else F.lit(None)).cast(f.dataType).alias(f.name)
                for f in target.fields
            ]
        )

    def _stored(self, table: str) -> DataFrame:
        return self.spark.table(self.warehouse.qualified(table))

    @contextmanager
    def _computed(self, frame: DataFrame) -> Iterator[DataFrame]:
        """``frame``'s rows computed now, written as Parquet to the warehouse's scratch folder and read back:
        cut from their lineage, so the table they were read from may be overwritten with them, and a later
        step reads the rows as they were. The files are removed when the block ends. ``localCheckpoint`` did
        this before; a Spark Connect session cannot find a checkpointed frame again ("No DataFrame with id
        ... is found in the session"), and files work on every session (temporary tables are made the same
        way, :func:`_backend_class`)."""
        folder = os.path.join(self.warehouse.scratch_folder, f"rows-{uuid.uuid4().hex[:12]}")
        frame.write.parquet(folder)
        try:
            yield self.spark.read.schema(frame.schema).parquet(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _overwrite(self, table: str, frame: DataFrame, *, count: bool = False) -> int | None:
        """Replace ``table``'s rows with ``frame``'s, computed first (they may be read from the table itself);
        with ``count``, returns how many rows the table now holds (one more Spark job)."""
        self._touch(table)
        with self._computed(self._conform(table, frame)) as ready:
            ready.write.insertInto(self.warehouse.qualified(table), overwrite=True)
            return ready.count() if count else None

    def _add(self, table: str, frame: DataFrame, n: int | None = None) -> int:
        self._touch(table)
        ready = self._conform(table, frame)
        if n is None:
            with self._computed(ready) as computed:
                return self._add(table, computed, computed.count())
        if n:  # one file per ROWS_PER_FILE rows (an import's chunk is one file, not one per partition)
            ready.coalesce(max(1, -(-n // ROWS_PER_FILE))).write.insertInto(self.warehouse.qualified(table))
        return n

    def _key(self, table: str) -> list[str]:
        spec = self.warehouse.spec(table)
        if spec is None or not spec.key:
            raise WarehouseError(f"the table {table!r} declares no key", hint="pass the key, or append the rows")
        return list(spec.key)

    # -- the contract -----------------------------------------------------------------------------------------
    def append(self, table: str, rows: pa.Table | ir.Table) -> int:
        if isinstance(rows, pa.Table):
            return self._add(table, self._frame(rows), rows.num_rows) if rows.num_rows else 0
        return self._add(table, self._frame(rows))

    def insert_new(self, table: str, rows: pa.Table, *, assume_new: bool = False) -> int:
        if rows.num_rows == 0:
            return 0
        F, Window = functions(self.warehouse.remote)

        key = self._key(table)
        # a key the rows hold twice keeps its first row, as ON CONFLICT DO NOTHING does on the other engines
        # (dropDuplicates keeps whichever row a partition's aggregate meets first: no order is promised)
        numbered = self._frame(rows.append_column("__tp_row", pa.array(range(rows.num_rows), pa.int64())))
        first = Window.partitionBy(*key).orderBy("__tp_row")
        numbered = numbered.withColumn("__tp_nth", F.row_number().over(first))
        new = numbered.where(F.col("__tp_nth") == 1).drop("__tp_row", "__tp_nth")
        new = new.join(self._stored(table).select(*key), on=key, how="left_anti")
        return self._add(table, new)

    def upsert(self, table: str, rows: pa.Table, key: Sequence[str], compare: Sequence[str] = ()) -> int:
        if rows.num_rows == 0:
            return 0
        F, _ = functions(self.warehouse.remote)

        key = list(key)
        incoming = self._frame(rows).alias("n")
        stored = self._stored(table).alias("s")
        if compare:  # rows whose compared columns all equal the stored row's are not written
            same = F.lit(True)
            for column in compare:
                same = same & F.col(f"s.{tick(column)}").eqNullSafe(F.col(f"n.{tick(column)}"))
            matched = [F.col(f"s.{tick(k)}") == F.col(f"n.{tick(k)}") for k in key]
            unchanged = incoming.join(stored, on=[*matched, same], how="left_semi")
            incoming = incoming.join(unchanged.alias("u"), on=key, how="left_anti")
        with self._computed(self._conform(table, incoming)) as changed:
            n = changed.count()
            if n == 0:
                return 0
            kept = self._stored(table).join(changed.select(*key), on=key, how="left_anti")
            self._overwrite(table, kept.unionByName(changed))
        return n

    def replace(self, table: str, rows: pa.Table | ir.Table) -> int:
        written = self._overwrite(table, self._frame(rows), count=not isinstance(rows, pa.Table))
        return int(rows.num_rows) if isinstance(rows, pa.Table) else int(written or 0)

    def delete(self, table: str, column: str | None = None, values: ir.Column | Sequence[Any] | None = None) -> None:
        F, _ = functions(self.warehouse.remote)

        stored = self._stored(table)
        if column is None:
            self._overwrite(table, stored.limit(0))
            return
        if isinstance(values, ir.Column):
            keys = self._frame(values.name("__tp_key").as_table()).where(F.col("__tp_key").isNotNull())
            kept = stored.join(keys, on=stored[tick(column)] == keys["__tp_key"], how="left_anti")
        else:
            listed = [v for v in (values or []) if v is not None]
            if not listed:
                return
            kept = stored.where(~F.coalesce(F.col(tick(column)).isin(listed), F.lit(False)))
        self._overwrite(table, kept)

    def update(self, table: str, values: dict[str, Any], *, key: str, value: Any) -> None:
        F, _ = functions(self.warehouse.remote)

        stored = self._stored(table)
        hit = F.coalesce(F.col(tick(key)) == F.lit(value), F.lit(False))
        changed = {
            c: F.when(hit, F.lit(v).cast(stored.schema[c].dataType)).otherwise(F.col(tick(c)))
            for c, v in values.items()
        }
        self._overwrite(table, stored.withColumns(changed))


def _spark_ready(rows: pa.Table) -> pa.Table:
    """``rows`` in types Spark takes from Arrow: dictionaries decoded, timestamps naive UTC microseconds."""
    columns = []
    for column in rows.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_null(kind):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz="UTC"))
        elif pa.types.is_large_string(kind):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=rows.column_names)


class _SparkMigrationCursor(MigrationCursor):
    """Migrations are written in standard SQL (double-quoted names, ``?`` parameters); the statements the
    adapter writes itself (DDL) are Spark SQL already, the others are translated by sqlglot."""

    def __init__(self, warehouse: SparkWarehouse) -> None:
        self.warehouse = warehouse

    def _spark_sql(self, sql: str) -> str:
        if not sql or sql.startswith(SPARK_SQL):
            return sql[len(SPARK_SQL) :]
        import sqlglot

        return str(sqlglot.transpile(sql, read="postgres", write="spark")[0])

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        statement = self._spark_sql(sql)
        if statement.strip():
            self.warehouse.spark.sql(statement, args=list(params) or None).collect()
        if statement.startswith("CREATE TABLE") and self.warehouse.local_root is not None:
            # Spark makes an empty table's directory only when rows arrive; the next open registers the
            # tables whose directory exists (SparkWarehouse._register_stored_tables)
            name = statement.split(" LOCATION ")[0].split("(")[0].split(".")[-1].strip().strip("`")
            os.makedirs(self.warehouse.location(name), exist_ok=True)

    def rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        yield from (tuple(r) for r in self.warehouse.spark.sql(self._spark_sql(sql)).collect())


SPARK_SQL = "/* spark */ "  # marks a statement the adapter wrote in Spark SQL (the migration cursor runs it as is)


class SparkWarehouse(Warehouse):
    """Spark behind the warehouse contract: Parquet tables in a directory, one writer at a time."""

    dialect = "spark"

    def __init__(self, url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> None:
        self.url = url
        self.read_only = read_only
        self.settings = parse_url(url)
        self.root = self.settings["warehouse"]
        local = self.root if "://" not in self.root else (self.root[7:] if self.root.startswith("file://") else None)
        self.local_root: str | None = local
        self.database = self.settings["database"]
        self._local = threading.local()
        self._backends: dict[threading.Thread, PySparkBackend] = {}
        self._guard = threading.Lock()
        self._closed = False
        lock = threading.RLock()  # no MVCC under Parquet files: the lanes share one writer
        self._write_locks = dict.fromkeys(WRITE_LANES, lock)
        self._writer = False
        if local is not None:
            from touchpoint.warehouse.private_files import private_dir

            private_dir(Path(local))
            if not read_only and _lock_writer(local, url):
                self._writer = True
                try:  # what a killed writer left: unfinished transactions, uncommitted files
                    _recover_transactions(local)
                    _drop_killed_writes(local)
                except BaseException:
                    _unlock_writer(local)
                    raise
            elif not read_only:
                self._writer = True  # another open of this process holds the lock (and recovered at its open)
            _remove_dead_scratch(local)
        self.scratch_folder = os.path.join(self.root, "_tp_scratch", f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        from touchpoint.warehouse import schema

        self._json_columns = {
            spec.name: frozenset(n for n, t in spec.schema.items() if t.is_json()) for spec in schema.all_tables()
        }
        self._compiler = _compiler()
        self.remote = self.settings["scheme"] == "sc"  # a Spark Connect session (the server runs Spark)
        try:
            self.spark = open_session(self.settings)
            create = f"CREATE DATABASE IF NOT EXISTS {tick(self.database)} LOCATION {_literal(self.root)}"
            self.spark.sql(create).collect()
            self.spark.catalog.setCurrentDatabase(self.database)
            self._register_stored_tables()
        except BaseException:  # no Spark: the writer's lock goes back (and a remote session, if one was made)
            if self._writer and self.local_root is not None:
                _unlock_writer(self.local_root)
            if self.remote and hasattr(self, "spark"):
                with contextlib.suppress(Exception):
                    self.spark.stop()
            raise

    # -- the catalog --------------------------------------------------------------------------------------------
    def qualified(self, table: str) -> str:
        return f"{tick(self.database)}.{tick(table)}"

    def location(self, table: str) -> str:
        return os.path.join(self.root, table)

    def spec(self, table: str) -> TableSpec | None:
        from touchpoint.warehouse import schema

        return {s.name: s for s in schema.all_tables()}.get(table)

    def _register_stored_tables(self) -> None:
        """Register every declared table whose directory exists (Spark's in-memory catalog forgets them when
        the process ends; the declared schema reads older files too: a column they lack reads as NULL)."""
        if self.local_root is None:
            return
        from touchpoint.warehouse import schema

        # A DDL statement runs when issued (classic and Connect sessions alike): collecting its empty result was a
        # second round trip per table (an open of 48 tables: 1.3 s -> 0.7 s).
        for spec in schema.all_tables():
            if os.path.isdir(self.location(spec.name)):
                self.spark.sql(self.create_table_sql(spec)[len(SPARK_SQL) :])

    # -- reads ----------------------------------------------------------------------------------------------------
    def _backend(self) -> PySparkBackend:
        backend: PySparkBackend | None = getattr(self._local, "backend", None)
        if backend is not None:
            return backend
        with self._guard:
            if self._closed:
                raise WarehouseError(f"the warehouse {self.url} is closed", hint="open it again")
        backend = _backend_class()().connect(self.spark)
        backend.compiler = self._compiler
        backend.json_columns = self._json_columns
        backend.scratch_root = self.scratch_folder
        backend.scratch = {}
        backend.temp_json = {}
        with self._guard:
            self._backends[threading.current_thread()] = backend
        self._local.backend = backend
        return backend

    @property
    def ibis(self) -> PySparkBackend:
        return self._backend()

    def tables(self) -> list[str]:
        return sorted(t.name for t in self.spark.catalog.listTables(self.database) if not t.isTemporary)

    def query(self, sql: str) -> pa.Table:
        result: pa.Table = self.spark.sql(sql).toArrow()
        return result

    def ping(self) -> None:
        self.spark.sql("SELECT 1").collect()

    def identifier(self, name: str) -> str:
        return tick(name)

    def create_temp_table(self, name: str, sql: str) -> None:
        self._backend().temp_table_from_sql(name, sql)

    def temp_table(self, name: str, schema: Any = None, *, built: Any = None) -> ir.Table:
        """The temporary table ``name``; its columns that were JSON in ``built`` (the expression it was computed
        from) read back as JSON, as a table saved through ``create_table`` does (Parquet keeps JSON as text)."""
        backend = self._backend()
        if built is not None:
            json = frozenset(n for n, t in built.items() if t.is_json())
            if json:
                backend.temp_json[name] = json
        return backend.table(name)

    # -- writes -----------------------------------------------------------------------------------------------------
    @contextmanager
    def write(self, *, lane: str = "main") -> Iterator[Transaction]:
        if lane not in self._write_locks:
            raise ValueError(f"write lane {lane!r} is not known; use one of {', '.join(WRITE_LANES)}")
        outer: SparkTransaction | None = getattr(self._local, "transaction", None)
        if outer is not None:
            yield outer
            return
        if self.read_only:
            raise WarehouseError(
                f"the warehouse {self.url} is open read-only", hint="open it without read_only to write"
            )
        with self._write_locks[lane]:
            tx = SparkTransaction(self)
            self._local.transaction = tx
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            else:
                tx.finish()
            finally:
                self._local.transaction = None

    def compact(self) -> dict[str, Any]:
        """Nothing to rewrite: on Parquet a delete rewrites the table's files and removes the old ones (and a
        transaction's links to them when it ends), so deleted rows leave the disk when the delete commits.
        Reports the warehouse directory's size."""
        if getattr(self._local, "transaction", None) is not None:
            raise WarehouseError("compact() cannot run inside a write transaction", hint="call it after the write")
        start = time.perf_counter()
        size = _size(self.local_root) if self.local_root else 0
        return {
            "engine": "spark",
            "method": "none needed: a delete overwrites the table's Parquet files and removes the old ones",
            "seconds": round(time.perf_counter() - start, 3),
            "bytes_before": size,
            "bytes_after": size,
        }

    # -- schema --------------------------------------------------------------------------------------------------------
    def column_type(self, dtype: dt.DataType) -> str:
        if dtype.is_json() or dtype.is_uuid():
            return "STRING"
        from ibis.backends.sql.datatypes import PySparkType

        return sql_type(PySparkType, dtype, "spark")

    def create_table_sql(self, spec: TableSpec) -> str:
        """A Parquet table over ``<warehouse>/<name>``. Keys and NOT NULL are the adapter's to keep: Spark's
        Parquet tables declare neither (``insert_new`` and ``upsert`` skip or replace stored keys)."""
        columns = ", ".join(f"{tick(n)} {self.column_type(t)}" for n, t in spec.schema.items())
        return (
            f"{SPARK_SQL}CREATE TABLE IF NOT EXISTS {self.qualified(spec.name)} ({columns}) USING parquet"
            f" LOCATION {_literal(self.location(spec.name))}"
        )

    def add_column_sql(self, table: str, column: str, dtype: dt.DataType) -> str:
        """``ALTER TABLE ... ADD COLUMNS``, or nothing when the column is there (Spark has no ``IF NOT EXISTS``
        for it; a table registered from the declared schema has every declared column already)."""
        if column in self.spark.table(self.qualified(table)).columns:
            return SPARK_SQL
        return f"{SPARK_SQL}ALTER TABLE {self.qualified(table)} ADD COLUMNS ({tick(column)} {self.column_type(dtype)})"

    @contextmanager
    def migration_transaction(self) -> Iterator[MigrationCursor]:
        with self.write():
            yield _SparkMigrationCursor(self)

    # -- lifecycle ----------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Forget this warehouse's connections; the process's Spark keeps running for the next (:func:`stop`). A
        Spark Connect session is stopped (the server drops its temporary views); the server keeps running."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._backends.clear()
        if self.local_root is not None:
            shutil.rmtree(self.scratch_folder, ignore_errors=True)
            if self._writer:
                _unlock_writer(self.local_root)
        if self.remote:  # the server forgets the session's temporary views and settings
            with contextlib.suppress(Exception):
                self.spark.stop()


def _size(folder: str) -> int:
    total = 0
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(parent, name))
    return total
