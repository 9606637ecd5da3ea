"""``touchpoint import events|orders|spend FILE``, with a progress bar on large files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    FormatOpt,
    JsonOpt,
    MapOpt,
    bound,
    console,
    emit,
    err_console,
    server_session,
    settings_for,
    warehouse,
)

if TYPE_CHECKING:
    from touchpoint.collect.files import ImportReport

app = typer.Typer(help="Import events, orders or spend from JSONL, CSV or Parquet files.", no_args_is_help=True)

FileArg = typer.Argument(..., help="A .jsonl, .csv or .parquet file.", show_default=False)
SourceOpt = typer.Option(None, "--source", help="Source name recorded on each event.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


@contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=bound(err_console), transient=True) as bar:
        task = bar.add_task(f"importing {path.name}", total=path.stat().st_size)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance


def _report(kind: str, report: ImportReport, as_json: bool) -> None:
    data = report.to_dict()

    def show() -> None:
        known = f", {data['already_quarantined']:,} already in quarantine" if data["already_quarantined"] else ""
        console.print(
            f"{kind} from [bold]{report.file}[/]: {data['stored']:,} stored, {data['duplicates']:,} already there, "
            f"{data['quarantined']:,} quarantined{known}"
            + (f", {data['suppressed']:,} from erased people dropped" if data.get("suppressed") else "")
            + " "
            f"({data['seconds']:.1f} s, {data['events_per_second']:,}/s)"
        )
        for reason in report.sample_reasons:
            console.print(f"  [yellow]quarantined[/] {reason}", highlight=False)
        if data["quarantined"] or data["already_quarantined"]:
            console.print("  see them with `touchpoint quarantine list`")

    emit(data, as_json, show)


def _run(
    kind: str,
    path: Path,
    data: Path | None,
    as_json: bool,
    quiet: bool,
    fn: Callable[..., ImportReport],
    **kwargs: Any,
) -> None:
    from touchpoint.collect.readers import check_file

    check_file(path)
    with warehouse(data) as wh, _progress(path, not (quiet or as_json)) as progress:
        report = fn(wh, path, progress=progress, **kwargs)
    _report(kind, report, as_json)


@app.command("events")
def events(
    path: Path = FileArg,
    fmt: str = FormatOpt,
    mapping: list[str] = MapOpt,
    source: str = SourceOpt,
    quiet: bool = QuietOpt,
    engine: bool | None = typer.Option(
        None,
        "--engine/--no-engine",
        help="Judge the file in the warehouse engine, or line by line in Python (same rules, same result). "
        "Default: the engine from about 160,000 events, where it is the faster.",
        show_default=False,
    ),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import Segment-shaped events (validated, deduplicated by messageId, bad ones quarantined)."""
    from touchpoint.collect.files import import_events
    from touchpoint.collect.readers import parse_mapping

    settings = settings_for(data)
    if engine is None and server_session.get() is not None:
        # run by the server that holds the warehouse: the line-by-line path, whose memory and CPU burst are the
        # smaller, beside the collector (the engine's is up to 3 GB and both cores for a large file)
        engine = False
    _run(
        "events",
        path,
        data,
        as_json,
        quiet,
        import_events,
        fmt=fmt,
        mapping=parse_mapping(mapping),
        source=source or "import",
        chunk_events=settings.import_chunk_events,
        max_event_bytes=settings.max_event_bytes,
        engine=engine,
    )


@app.command("orders")
def orders(
    path: Path = FileArg,
    fmt: str = FormatOpt,
    mapping: list[str] = MapOpt,
    source: str = SourceOpt,
    revenue_is_order_total: bool = typer.Option(
        False,
        "--revenue-is-order-total",
        help="The revenue column holds the order's total, repeated on each line.",
    ),
    quiet: bool = QuietOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import orders (one row per order or order line) as "Order Completed" events.

    Columns: customer_id, order_id, timestamp, revenue (or price and quantity); optional email,
    currency, product_id, sku, name, category, quantity, price. Rename with --map.
    """
    from touchpoint.collect.orders import import_orders
    from touchpoint.collect.readers import parse_mapping

    _run(
        "orders",
        path,
        data,
        as_json,
        quiet,
        import_orders,
        fmt=fmt,
        mapping=parse_mapping(mapping),
        source=source or "orders-import",
        revenue_is_order_total=revenue_is_order_total,
    )


@app.command("spend")
def spend(
    path: Path = FileArg,
    fmt: str = FormatOpt,
    mapping: list[str] = MapOpt,
    source: str = SourceOpt,
    quiet: bool = QuietOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import marketing spend: date, channel, amount; optional campaign, currency, impressions, clicks."""
    from touchpoint.collect.readers import parse_mapping
    from touchpoint.collect.spend import import_spend

    _run(
        "spend rows",
        path,
        data,
        as_json,
        quiet,
        import_spend,
        fmt=fmt,
        mapping=parse_mapping(mapping),
        source=source or "spend-import",
    )
