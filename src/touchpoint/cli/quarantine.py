"""``touchpoint quarantine list|show|replay``."""

from __future__ import annotations

from pathlib import Path

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, audited, console, emit, settings_for, table, warehouse

app = typer.Typer(help="Inspect and replay input that could not be stored as valid events.", no_args_is_help=True)


@app.command("list")
def list_(
    status: str = typer.Option("quarantined", "--status", help="quarantined, replayed or all."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List quarantined input, newest first, with the reason for each."""
    from touchpoint.collect import quarantine as q

    wanted = None if status == "all" else status
    with warehouse(data) as wh, audited(wh, "quarantine.list") as entry:
        records = q.list_records(wh, status=wanted, limit=limit, offset=offset)
        entry.rows = len(records)
        total = q.count(wh, status=wanted)

    def show() -> None:
        table(
            f"quarantine ({total:,} {status})",
            ["id", "received", "source", "origin", "reason"],
            [(r["id"], r["received_at"], r["source"], r["origin"], r["reason"]) for r in records],
        )

    emit({"total": total, "records": records}, as_json, show)


@app.command("show")
def show(record_id: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Show one quarantine record, with the raw payload as received."""
    from touchpoint.collect import quarantine as q

    with warehouse(data) as wh, audited(wh, "quarantine.read", record_id) as entry:
        record = q.get_record(wh, record_id)
        entry.rows = 1

    def render() -> None:
        for key, value in record.items():
            if key != "payload":
                console.print(f"[bold]{key}[/]: {value}")
        console.print("[bold]payload[/]:")
        console.print(record["payload"], highlight=False, markup=False, soft_wrap=True)

    emit(record, as_json, render)


@app.command("replay")
def replay(
    ids: list[str] = typer.Argument(None, help="Quarantine ids to replay (default with --all: every one)."),
    all_: bool = typer.Option(False, "--all", help="Replay every quarantined record."),
    payload: Path = typer.Option(None, "--payload", help="A corrected JSON event to store instead (one id only)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate quarantined input again and store what now passes (idempotent)."""
    from touchpoint.collect import quarantine as q

    if not ids and not all_:
        raise typer.BadParameter("name quarantine ids, or pass --all")
    override = payload.read_bytes() if payload else None
    limit = settings_for(data).max_event_bytes
    with warehouse(data) as wh, audited(wh, "quarantine.replay") as entry:
        entry.detail["ids"] = "all" if all_ else len(ids)
        result = q.replay(wh, None if all_ else list(ids), payload_override=override, max_event_bytes=limit)

    def render() -> None:
        console.print(f"replayed {len(result.replayed)} record(s); {len(result.still_invalid)} still invalid")
        for item in result.still_invalid[:20]:
            console.print(f"  {item['id']}: {item['reason']}")

    emit(result.to_dict(), as_json, render)
