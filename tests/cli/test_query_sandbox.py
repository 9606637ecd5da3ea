"""The query sandbox: every known way out of `touchpoint query` is refused, with a clear reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import run_cli

from touchpoint.config import Settings
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse, open_warehouse
from touchpoint.warehouse.sandbox import (
    ADMIN_TABLES,
    CREDENTIAL_TABLES,
    open_query_warehouse,
    run_readonly_query,
)

run = run_cli


@pytest.fixture
def data(tmp_path: Path) -> str:
    directory = tmp_path / "data"
    open_warehouse(Settings(data_dir=directory)).close()  # create and migrate it
    return str(directory)


def escapes(tmp_path: Path) -> list[tuple[str, str]]:
    """(SQL, what the refusal must say), one per known escape."""
    out = tmp_path / "out"
    return [
        ("SELECT * FROM read_text('/etc/passwd')", "read_text()"),
        ("SELECT content FROM read_blob('/etc/passwd')", "read_blob()"),
        ("SELECT * FROM read_csv('/etc/passwd', sep=':')", "read_csv()"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto()"),
        ("SELECT * FROM read_json_auto('/etc/passwd')", "read_json_auto()"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "read_parquet()"),
        ("SELECT * FROM parquet_scan('/etc/passwd')", "parquet_scan()"),
        ("SELECT * FROM glob('/etc/*')", "glob()"),
        ("SELECT * FROM '/etc/passwd'", "'/etc/passwd', which DuckDB would open as a file"),
        (f'SELECT * FROM "{tmp_path}/x.csv"', "which DuckDB would open as a file"),
        ("WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f", "read_text()"),
        ("SELECT 1 WHERE 1 IN (SELECT length(content) FROM read_text('/etc/passwd'))", "read_text()"),
        ("SELECT * FROM events, LATERAL (SELECT * FROM glob('/'))", "glob()"),
        ("SELECT * FROM query('SELECT 1')", "query()"),
        ("SELECT getenv('HOME')", "getenv()"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings()"),
        (f"COPY events TO '{out}.csv'", "COPY statement"),
        (f"COPY (SELECT 1) TO '{out}.csv'", "COPY statement"),
        (f"EXPORT DATABASE '{out}'", "EXPORT statement"),
        (f"ATTACH '{out}.duckdb' AS other (READ_WRITE)", "ATTACH statement"),
        ("INSTALL httpfs", "INSTALL statement"),
        ("LOAD httpfs", "LOAD statement"),
        ("SET enable_external_access = true", "SET statement"),
        ("PRAGMA version", "PRAGMA statement"),
        ("CALL pragma_version()", "CALL statement"),
        ("SELECT 1; SELECT 2", "has 2 statements"),
        (f"SELECT 1; COPY events TO '{out}.csv'", "has 2 statements"),
        ("DELETE FROM events", "DELETE statement"),
        ("CREATE TABLE t AS SELECT 1", "CREATE statement"),
        ("SELECT * FROM other.main.events", "names the database 'other'"),
        ("SELECT st_point(1, 2)", "st_point(), which this engine does not have"),  # would autoload spatial
    ]


def test_every_escape_is_refused_by_the_cli(capsys: pytest.CaptureFixture[str], data: str, tmp_path: Path) -> None:
    for sql, reason in escapes(tmp_path):
        code, out, err = run(capsys, "query", sql, "--data", data)
        assert code == 1, sql
        assert "refused" in err and reason in err, (sql, err)
        assert out == "" and "root:" not in err and "Traceback" not in err, sql
    assert list(tmp_path.glob("out*")) == []  # nothing written


def test_escapes_are_refused_on_a_shared_writable_warehouse_too(warehouse: Warehouse, tmp_path: Path) -> None:
    """Where the engine guard cannot be used (an instance the collector shares), the parse guard holds."""
    for sql, reason in escapes(tmp_path):
        with pytest.raises(InvalidInput, match="refused") as info:
            run_readonly_query(warehouse, sql)
        assert reason in info.value.message, sql
    assert list(tmp_path.glob("out*")) == []
    # The shared instance keeps its external access: the rest of the system can still read files.
    json_file = tmp_path / "rows.json"
    json_file.write_text('[{"a": 1}]')
    cur = warehouse.connection()
    assert cur.execute(f"SELECT a FROM read_json('{json_file}')").fetchall() == [(1,)]
    cur.close()


def test_the_engine_guard_holds_even_when_sql_gets_past_the_parser(data: str, tmp_path: Path) -> None:
    wh = open_query_warehouse(Settings(data_dir=Path(data)))
    try:
        cur = wh.connection()
        with pytest.raises(duckdb.PermissionException):
            cur.execute("SELECT * FROM read_text('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="locked"):
            cur.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="locked"):
            cur.execute("SET autoinstall_known_extensions = true")
        with pytest.raises(duckdb.PermissionException):
            cur.execute(f"ATTACH '{tmp_path}/x.duckdb' AS x")
        assert run_readonly_query(wh, "SELECT count(*) AS n FROM events").engine_locked
    finally:
        wh.close()
    assert not (tmp_path / "x.duckdb").exists()


def test_reads_still_work(capsys: pytest.CaptureFixture[str], data: str) -> None:
    code, out, _ = run(capsys, "query", "SHOW TABLES", "--data", data, "--json")
    assert code == 0 and {"events", "sources"} <= {r["name"] for r in json.loads(out)}
    sql = "WITH t AS (SELECT range AS n FROM range(5)) SELECT n FROM t WHERE n IN (SELECT 1 UNION SELECT 3) ORDER BY n"
    code, out, _ = run(capsys, "query", sql, "--data", data, "--json")
    assert code == 0 and json.loads(out) == [{"n": 1}, {"n": 3}]
    code, out, _ = run(capsys, "query", "SELECT count(*) AS n FROM main.events", "--data", data, "--json")
    assert json.loads(out) == [{"n": 0}]


def test_row_limit_cuts_and_says_how_to_raise_it(capsys: pytest.CaptureFixture[str], data: str) -> None:
    code, out, err = run(capsys, "query", "SELECT * FROM range(50000) ORDER BY 1", "--data", data, "--json")
    assert code == 0 and len(json.loads(out)) == 10_000 and "--limit" in err
    sql = "SELECT * FROM range(25) ORDER BY 1"
    code, out, err = run(capsys, "query", sql, "--limit", "20", "--data", data, "--csv")
    assert out.splitlines()[1:4] == ["0", "1", "2"] and len(out.splitlines()) == 21 and "stopped at 20 rows" in err
    code, out, err = run(capsys, "query", "SELECT * FROM range(50000)", "--limit", "60000", "--data", data, "--json")
    assert code == 0 and len(json.loads(out)) == 50_000 and err == ""


def test_timeout_stops_a_runaway_query(capsys: pytest.CaptureFixture[str], data: str) -> None:
    sql = "SELECT count(*) FROM range(1000000000000) a"
    code, _, err = run(capsys, "query", sql, "--timeout", "0.5", "--data", data)
    assert code == 1 and "longer than 0.5 s" in err and "--timeout" in err


def test_results_and_limits_from_the_library(warehouse: Warehouse) -> None:
    result = run_readonly_query(warehouse, "SELECT * FROM range(7)", max_rows=3)
    assert result.truncated and result.table.num_rows == 3 and not result.engine_locked
    assert result.to_dict()["rows"] == [{"range": 0}, {"range": 1}, {"range": 2}]
    with pytest.raises(InvalidInput, match="does not parse"):
        run_readonly_query(warehouse, "SELEC nonsense")
    with pytest.raises(InvalidInput, match="not a table of the warehouse"):
        run_readonly_query(warehouse, "SELECT * FROM nope")
    with pytest.raises(InvalidInput, match="longer than"):
        run_readonly_query(warehouse, "SELECT count(*) FROM range(1000000000000)", timeout_s=0.3)
    with pytest.raises(InvalidInput, match="row limit 0"):
        run_readonly_query(warehouse, "SELECT 1", max_rows=0)
    # a connection that was interrupted leaves the warehouse usable
    assert run_readonly_query(warehouse, "SELECT count(*) AS n FROM events").table.to_pylist() == [{"n": 0}]


def _iter_tables(wh: Warehouse) -> Iterator[str]:
    yield from wh.query("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").column("table_name").to_pylist()


def test_sandbox_reads_every_warehouse_table_but_the_credentials(warehouse: Warehouse) -> None:
    names = list(_iter_tables(warehouse))
    assert set(names) >= CREDENTIAL_TABLES
    for name in names:
        sql = f'SELECT count(*) AS n FROM "{name}"'
        if name in CREDENTIAL_TABLES:  # key and password hashes, session tokens: never through a query
            with pytest.raises(InvalidInput, match=f"reads {name}, which is not open to this query"):
                run_readonly_query(warehouse, sql)
        else:
            assert run_readonly_query(warehouse, sql).table.num_rows == 1
    hidden = CREDENTIAL_TABLES | ADMIN_TABLES  # what the HTTP API hides from a read key
    with pytest.raises(InvalidInput, match="only an admin key reads it"):
        run_readonly_query(warehouse, "SELECT * FROM audit_log", hidden=hidden)
    for sql in (
        "WITH x AS (SELECT * FROM users) SELECT * FROM x",
        "WITH users AS (SELECT * FROM users) SELECT * FROM users",  # a CTE named like it reads the real one
        "SELECT * FROM main.web_sessions",
        'SELECT * FROM "API_KEYS"',
    ):
        with pytest.raises(InvalidInput, match="holds credentials"):
            run_readonly_query(warehouse, sql)


def test_ordinary_analytics_sql_is_not_refused(warehouse: Warehouse) -> None:
    sql = """
        WITH orders AS (
            SELECT user_id, timestamp AS t, revenue, properties->>'plan' AS plan, context
            FROM events WHERE type = 'track' AND event = 'Order Completed'
        )
        SELECT date_trunc('week', t) AS week, coalesce(plan, '(none)') AS plan,
               count(*) AS n, count(DISTINCT user_id) AS buyers, sum(revenue) FILTER (WHERE revenue > 0) AS rev,
               median(revenue) AS med, quantile_cont(revenue, 0.9) AS p90, approx_count_distinct(user_id) AS approx,
               CAST(avg(revenue) AS DECIMAL(10, 2)) AS aov, try_cast(max(plan) AS INTEGER) AS tier,
               extract(year FROM max(t)) AS yr, strftime(max(t), '%Y-%m') AS ym, max(t) + INTERVAL 1 DAY AS next_day,
               list_transform(list(revenue), lambda x: x * 2)[1] AS first_double, string_agg(user_id, ',') AS users,
               arg_max(user_id, revenue) AS top, json_extract_string(any_value(context), '$.ip') AS ip,
               CASE WHEN count(*) > 1 THEN 'many' ELSE 'one' END AS size, row_number() OVER (ORDER BY 1) AS rn
        FROM orders GROUP BY ALL ORDER BY week
    """
    assert run_readonly_query(warehouse, sql).table.num_rows == 0


_FRAGMENTS = [
    "SELECT",
    "WITH",
    "FROM",
    "WHERE",
    "UNION",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "*",
    "1",
    "events",
    "sources",
    "x",
    "read_text('/etc/passwd')",
    "'/etc/passwd'",
    '"/tmp/a.csv"',
    "glob('*')",
    "range(3)",
    "COPY",
    "TO",
    "ATTACH",
    "INSTALL",
    "LOAD",
    "SET",
    "PRAGMA",
    "CALL",
    "EXPORT DATABASE",
    "LATERAL",
    "JOIN",
    "ON",
    "TRUE",
    "--",
    "/*",
    "*/",
    "$$",
    "'",
    '"',
    "->",
    "::",
    "[",
    "]",
    "{",
    "}",
    "getenv('HOME')",
    "query('SELECT 1')",
    "=",
    "IN",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=8)), max_size=14),
)
def test_any_text_is_run_or_refused_cleanly(warehouse: Warehouse, tmp_path: Path, parts: list[str]) -> None:
    """Whatever arrives, the answer is rows or an InvalidInput (a 400 over HTTP), never another error."""
    sql = " ".join(parts)
    try:
        run_readonly_query(warehouse, sql, max_rows=10, timeout_s=5)
    except InvalidInput as exc:
        assert exc.message
    assert not (tmp_path / "a.csv").exists()


def test_the_rest_of_the_process_keeps_its_file_access_after_a_query(
    capsys: pytest.CaptureFixture[str], data: str, tmp_path: Path
) -> None:
    """The locked instance is the query's own: once it closes, imports and file reads work as before."""
    code, _, _ = run(capsys, "query", "SELECT count(*) FROM events", "--data", data)
    assert code == 0
    events = tmp_path / "e.jsonl"
    events.write_text('{"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "m1"}\n')
    code, out, _ = run(capsys, "import", "events", str(events), "--data", data, "--json")
    assert code == 0 and json.loads(out)["stored"] == 1
    wh = open_warehouse(Settings(data_dir=Path(data)))
    try:
        cur = wh.connection()
        assert cur.execute(f"SELECT count(*) FROM read_json('{events}')").fetchone() == (1,)
        assert cur.execute("SELECT value FROM duckdb_settings() WHERE name = 'lock_configuration'").fetchone() == (
            "false",
        )
    finally:
        wh.close()
    code, out, _ = run(capsys, "query", "SELECT user_id FROM events", "--data", data, "--json")
    assert json.loads(out) == [{"user_id": "u1"}]


def test_the_timeout_stops_only_its_own_query(warehouse: Warehouse) -> None:
    """On an instance shared with the collector, the interrupt must not hit other connections."""
    done: dict[str, object] = {}

    def other() -> None:
        cur = warehouse.connection()
        try:
            done["count"] = cur.execute("SELECT count(*) FROM range(500000000)").fetchone()
        except Exception as exc:  # recorded so the assertion below shows it
            done["error"] = exc
        finally:
            cur.close()

    thread = threading.Thread(target=other)
    thread.start()
    with pytest.raises(InvalidInput, match="longer than"):
        run_readonly_query(warehouse, "SELECT count(*) FROM range(100000000000)", timeout_s=0.2)
    thread.join()
    assert done == {"count": (500_000_000,)}
