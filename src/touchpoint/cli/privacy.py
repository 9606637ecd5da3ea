"""``touchpoint privacy export|erase|erasures``: access, portability and erasure (docs/privacy.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, settings_for, table, warehouse
from touchpoint.errors import InvalidInput

app = typer.Typer(
    help="Privacy requests: export everything held about a person, erase them down to the bytes.",
    no_args_is_help=True,
)

IdentifierArg = typer.Argument(..., help="A user id, anonymous id, email, phone or profile id of the person.")


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container without a passwd entry)
        return "cli"


@app.command("export")
def export(
    identifier: str = IdentifierArg,
    fmt: str = typer.Option("json", "--format", help="json (one document) or zip (a manifest and a file per table)."),
    out: Path = typer.Option(None, "--out", help="Write the export to this file (default: standard output)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything held about a person across every identifier of their profile (GDPR Art. 15 and 20)."""
    from touchpoint.privacy import export as privacy_export

    if fmt not in privacy_export.FORMATS:
        raise InvalidInput(f"export format {fmt!r} is not known", hint="use --format json or --format zip")
    with warehouse(data) as wh:
        doc = privacy_export.export(wh, identifier, settings=settings_for(data))
    body = privacy_export.render(doc, fmt)
    if out is None:
        if fmt == "json":
            sys.stdout.write(body.decode())
            sys.stdout.flush()
            return
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None or sys.stdout.isatty():
            raise InvalidInput("a zip export is not written to a terminal", hint="give --out FILE.zip")
        binary.write(body)
        binary.flush()
        return
    from touchpoint.warehouse.private_files import make_private

    out.write_bytes(body)
    make_private(out)  # it is personal data
    summary = {
        "out": str(out),
        "format": fmt,
        "bytes": len(body),
        "profile_ids": doc["subject"]["profile_ids"],
        "rows": {name: t["count"] for name, t in doc["tables"].items() if t["count"]},
    }
    emit(
        summary,
        as_json,
        lambda: console.print(
            f"wrote {out} ({len(body):,} bytes): " + ", ".join(f"{name} {n:,}" for name, n in summary["rows"].items())
        ),
    )


@app.command("erase")
def erase(
    identifier: str = IdentifierArg,
    yes: bool = typer.Option(False, "--yes", help="Confirm: the person's data is deleted for good."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person: every row, file and byte that holds them; their future events are dropped."""
    from touchpoint.privacy import erase as privacy_erase

    if not yes:
        raise InvalidInput(
            f"erasing {identifier!r} deletes every trace of that person for good",
            hint="export it first if needed (`touchpoint privacy export`), then run again with --yes",
        )
    settings = settings_for(data)
    with warehouse(data) as wh:
        out = privacy_erase.erase(wh, identifier, actor=_actor(), data_dir=Path(settings.data_dir).expanduser())

    def render() -> None:
        console.print(
            f"erased {out['identifiers']} identifiers ({out['erasure_id']}) in {out['seconds']} s; "
            f"compaction {out['compaction']['seconds']} s"
        )
        table("rows deleted", ["table", "rows"], sorted(out["deleted"].items()))
        for kind, files in out["files"].items():
            for name in files:
                console.print(f"  file {kind}: {name}")

    emit(out, as_json, render)


@app.command("erasures")
def erasures(
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The erasure requests (who, when, rows deleted) and the events dropped since for each."""
    from touchpoint.privacy import erase as privacy_erase

    with warehouse(data) as wh:
        got = privacy_erase.erasures(wh, limit)
    emit(
        got,
        as_json,
        lambda: table(
            "erasures",
            ["requested", "by", "identifiers", "rows deleted", "dropped since"],
            [
                (r["requested_at"], r["actor"], r["identifiers"], sum(r["deleted"].values()), r["dropped_since"])
                for r in got
            ],
        ),
    )
