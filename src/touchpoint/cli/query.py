"""``touchpoint query``: one read-only SQL statement over the warehouse, in the query sandbox."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, emit, err_console, query_warehouse, table, warehouse
from touchpoint.errors import TouchpointError


def _record(data: Path | None, rows: int | None, outcome: str) -> None:
    from touchpoint.privacy import audit

    with warehouse(data) as wh:
        audit.record(wh, actor=audit.cli_actor(), surface="cli", action="query.run", rows=rows, outcome=outcome)


def query(
    sql: str = typer.Argument(..., help='One SQL statement, e.g. "SELECT type, count(*) FROM events GROUP BY 1".'),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    limit: int = typer.Option(10_000, "--limit", help="Most rows the query may return; the rest are cut."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds the query may run before it is stopped."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one read-only SELECT over the warehouse's tables (files, URLs and writes are refused)."""
    from touchpoint.warehouse.sandbox import run_readonly_query

    # The query runs on a read-only instance of its own; its audit entry is written after, on a writable one
    # (inside the server both are the server's warehouse). The statement is not logged: its literals may be
    # someone's email.
    try:
        with query_warehouse(data) as wh:
            result = run_readonly_query(wh, sql, max_rows=limit, timeout_s=timeout)
    except TouchpointError as exc:
        _record(data, None, exc.code)
        raise
    _record(data, result.table.num_rows, "ok")
    columns = result.table.column_names
    rows = result.table.to_pylist()
    if result.truncated:
        err_console.print(f"[yellow]note:[/] stopped at {limit:,} rows; raise the cap with --limit N")
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        return
    emit(rows, as_json, lambda: table(None, columns, [[r[c] for c in columns] for r in rows]))
