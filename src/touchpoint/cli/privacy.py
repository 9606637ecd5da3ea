"""``touchpoint privacy consent show|set|export|erase|erasures``: consent per purpose, access, portability and
erasure (docs/privacy.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from touchpoint.cli.common import (
    DataOpt,
    Group,
    JsonOpt,
    audited,
    console,
    emit,
    pseudonym,
    settings_for,
    table,
    warehouse,
)
from touchpoint.errors import InvalidInput

app = typer.Typer(
    help="Privacy: consent per purpose; export everything held about a person, erase them down to the bytes.",
    no_args_is_help=True,
)

consent_app = typer.Typer(help="A person's consent per purpose: show it, record it.", no_args_is_help=True)
app.add_typer(consent_app, name="consent", cls=Group)
bounces_app = typer.Typer(help="Bounces and spam complaints reported by the mail provider.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces", cls=Group)

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
    with warehouse(data) as wh, audited(wh, "privacy.export", pseudonym(wh, identifier)) as entry:
        doc = privacy_export.export(wh, identifier, settings=settings_for(data))
        entry.rows = sum(t["count"] for t in doc["tables"].values())
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
    with warehouse(data) as wh, audited(wh, "privacy.erase", pseudonym(wh, identifier)) as entry:
        out = privacy_erase.erase(wh, identifier, actor=_actor(), data_dir=Path(settings.data_dir).expanduser())
        entry.rows = sum(out["deleted"].values())

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

    with warehouse(data) as wh, audited(wh, "privacy.erasures") as entry:
        got = privacy_erase.erasures(wh, limit)
        entry.rows = len(got)
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


@consent_app.command("show")
def show(
    identifier: str = typer.Argument(..., help="Any identifier of the person, or their profile id."),
    id_type: str = typer.Option(None, "--type", help="Only match this identifier type (e.g. email)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a person's consent per purpose now (stated or by default) and its history."""
    from touchpoint.privacy import consent

    with warehouse(data) as wh, audited(wh, "consent.read", pseudonym(wh, identifier)):
        out = consent.show(wh, identifier, id_type=id_type)

    def render() -> None:
        table(
            f"consent of {out['profile_id']}",
            ["purpose", "granted", "how", "since"],
            [
                (p["purpose"], "yes" if p["granted"] else "no", "stated" if p["stated"] else p["default"], p["since"])
                for p in out["purposes"]
            ],
        )
        for h in out["history"]:
            word = "granted" if h["granted"] else "denied"
            until = f" until {h['valid_until']}" if h["valid_until"] else ""
            console.print(f"  {h['valid_from']}{until}  {h['purpose']} {word} ({h['source']}, proof {h['proof']})")

    emit(out, as_json, render)


@consent_app.command("set")
def set_(
    identifier: str = typer.Argument(..., help="Any identifier of the person, or their profile id."),
    purpose: str = typer.Argument(..., help="The purpose (see `touchpoint privacy consent show`)."),
    decision: str = typer.Argument(..., help="granted or denied."),
    id_type: str = typer.Option(None, "--type", help="Only match this identifier type (e.g. email)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that a person granted or denied a purpose (source: cli)."""
    from touchpoint.privacy import consent

    if decision not in ("granted", "denied"):
        raise InvalidInput(f"decision: {decision!r} is not granted or denied", hint="write granted or denied")
    with warehouse(data) as wh, audited(wh, "consent.set", pseudonym(wh, identifier)):
        out = consent.set_consent(
            wh, identifier, [purpose], decision == "granted", source="cli", actor="cli", id_type=id_type
        )
    emit(out, as_json, lambda: console.print(f"{out['profile_id']}: {purpose} {decision}"))


@bounces_app.command("import")
def bounces_import(
    file: Path = typer.Argument(..., help="JSON array, JSON lines or CSV of {type, email, message_id, time}."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record bounces and complaints: a complaint or hard bounce denies marketing_email; soft bounces are counted."""
    from touchpoint.privacy import bounces

    items = bounces.read_file(file)
    with warehouse(data) as wh, audited(wh, "consent.email_events") as entry:
        out = bounces.record(wh, items, actor=_actor())
        entry.rows, entry.detail = out["recorded"], dict(out["counts"])
    c = out["counts"]
    emit(
        out,
        as_json,
        lambda: console.print(
            f"{out['events']} events: {c['complaint']} complaints, {c['hard_bounce']} hard bounces "
            f"({out['recorded']} new denials of marketing_email), {c['soft_bounce']} soft bounces counted"
        ),
    )
