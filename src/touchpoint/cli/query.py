"""``touchpoint query``: read-only SQL over the warehouse."""

from __future__ import annotations

import csv
import sys

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, emit, table, warehouse
from touchpoint.errors import InvalidInput


def query(
    sql: str = typer.Argument(..., help='One SQL statement, e.g. "SELECT type, count(*) FROM events GROUP BY 1".'),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    limit: int = typer.Option(1000, "--limit", help="Most rows to print in the table view (JSON/CSV print all)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run read-only SQL over the warehouse (the connection is opened read-only)."""
    with warehouse(data, read_only=True) as wh:
        try:
            result = wh.query(sql)
        except Exception as exc:
            raise InvalidInput(f"the query failed: {exc}", hint="check the SQL; writes are refused") from None
    rows = result.to_pylist()
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.column_names)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in result.column_names])
        return

    def show() -> None:
        shown = rows[:limit]
        table(None, result.column_names, [[r[c] for c in result.column_names] for r in shown])
        if len(rows) > limit:
            typer.echo(f"({len(rows) - limit:,} more rows; use --csv or --json for all)")

    emit(rows, as_json, show)
