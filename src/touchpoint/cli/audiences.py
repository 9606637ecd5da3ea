"""``touchpoint audiences create|list|show|preview|members|history|export|refresh|changes|delete``."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    JsonOpt,
    audited,
    console,
    emit,
    parse_when,
    read_definition,
    table,
    warehouse,
)
from touchpoint.errors import InvalidInput

app = typer.Typer(
    help="Audiences: who to act on, defined in JSON (docs/audiences.md), kept current with history.",
    no_args_is_help=True,
)

DefinitionOpt = typer.Option(..., "--definition", help="A JSON file with the definition ('-' reads stdin).")
AtOpt = typer.Option(None, "--at", help="Evaluate or read as of this instant (ISO 8601, UTC; default now).")


def _read_definition(path: Path) -> Any:
    from touchpoint.audiences.workflow import load_definition

    return read_definition(path, load_definition)


def _refresh_line(r: dict[str, Any]) -> str:
    return (
        f"{r['audience']}: {r['members']:,} members (+{r['entered']:,} / -{r['exited']:,}, "
        f"{r['mode']}{'' if r['candidates'] is None else ', ' + format(r['candidates'], ',') + ' re-checked'}) "
        f"in {r['seconds']} s"
    )


@app.command("create")
def create(
    name: str = typer.Argument(..., help="The audience's name (lower-case letters, digits, - and _)."),
    definition: Path = DefinitionOpt,
    description: str = typer.Option(None, "--description", help="What the audience is for, in words."),
    replace: bool = typer.Option(False, "--replace", help="Change an existing audience (a new version)."),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", help="Compute its members now."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save an audience from a JSON definition and compute its members."""
    from touchpoint.audiences import workflow

    body = _read_definition(definition)
    with warehouse(data) as wh:
        out = workflow.create(wh, name, body, description=description, replace=replace, evaluate=evaluate)

    def render() -> None:
        a = out["audience"]
        console.print(f"saved audience [bold]{a['name']}[/] (version {a['version']})")
        if "refresh" in out:
            console.print(_refresh_line(out["refresh"]))

    emit(out, as_json, render)


@app.command("list")
def list_(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """The saved audiences with their size at the last refresh."""
    from touchpoint.audiences import workflow

    with warehouse(data) as wh:
        rows = workflow.list_audiences(wh)
    emit(
        {"audiences": rows},
        as_json,
        lambda: table(
            "audiences",
            ["name", "version", "members", "evaluated at", "description"],
            [(r["name"], r["version"], r["members"], r["evaluated_at"], r["description"]) for r in rows],
        ),
    )


@app.command("show")
def show(
    name: str = typer.Argument(...),
    explain: bool = typer.Option(False, "--explain", help="Also print the SQL the evaluation runs."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An audience's definition, versions, last evaluation and size."""
    import json

    from touchpoint.audiences import workflow

    with warehouse(data) as wh:
        out = workflow.show(wh, name)
        if explain:
            out["sql"] = workflow.explain_audience(wh, name)

    def render() -> None:
        console.print(f"[bold]{out['name']}[/] version {out['version']}: {out['size']:,} members")
        if out["description"]:
            console.print(f"  {out['description']}")
        console.print(json.dumps(out["definition"], indent=2), highlight=False)
        state = out["state"]
        if state:
            console.print(f"last refresh: {state['mode']} at {state['evaluated_at']} in {state['seconds']} s")
        if out["used_by"]:
            console.print(f"used by: {', '.join(out['used_by'])}")
        if explain:
            console.print(out["sql"], highlight=False)

    emit(out, as_json, render)


@app.command("preview")
def preview(
    definition: Path = DefinitionOpt,
    sample: int = typer.Option(10, "--sample", min=0, max=1000, help="How many members to show."),
    at: str = AtOpt,
    explain: bool = typer.Option(False, "--explain", help="Also print the SQL the evaluation runs."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Count and a sample of who a definition selects, without saving it."""
    from touchpoint.audiences import workflow

    body = _read_definition(definition)
    with warehouse(data) as wh, audited(wh, "audiences.preview") as entry:
        out = workflow.preview(wh, body, now=parse_when(at, "--at"), sample=sample, sql=explain)
        entry.rows = len(out.get("sample") or [])

    def render() -> None:
        console.print(f"{out['count']:,} profiles match")
        table(
            None, ["profile", "user id", "email"], [(r["profile_id"], r["user_id"], r["email"]) for r in out["sample"]]
        )
        if explain:
            console.print(out["sql"], highlight=False)

    emit(out, as_json, render)


@app.command("members")
def members(
    name: str = typer.Argument(...),
    at: str = typer.Option(None, "--at", help="Who was a member at this instant (ISO 8601, UTC)."),
    limit: int = typer.Option(100, "--limit", min=0, max=100_000),
    offset: int = typer.Option(0, "--offset", min=0),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The members now, or at a past instant (--at), from the recorded history."""
    from touchpoint.audiences import workflow

    with warehouse(data) as wh, audited(wh, "audiences.members", name) as entry:
        out = workflow.members(wh, name, at=parse_when(at, "--at"), limit=limit, offset=offset)
        entry.rows = len(out["members"])

    def render() -> None:
        when = f" at {at}" if at else ""
        table(
            f"{name}{when}: {out['count']:,} members",
            ["profile", "user id", "email", "entered at"],
            [(m["profile_id"], m["user_id"], m["email"], m["entered_at"]) for m in out["members"]],
        )

    emit(out, as_json, render)


@app.command("history")
def history(
    name: str = typer.Argument(...),
    days: int = typer.Option(30, "--days", min=1, max=3660),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Size over time: entries, exits and size at the end of each day (UTC)."""
    from touchpoint.audiences import workflow

    with warehouse(data) as wh:
        out = workflow.history(wh, name, days=days)
    emit(
        out,
        as_json,
        lambda: table(
            f"{name}: last {days} days",
            ["date", "entered", "exited", "size"],
            [(r["date"], r["entered"], r["exited"], r["size"]) for r in out["days"]],
        ),
    )


@app.command("export")
def export(
    name: str = typer.Argument(...),
    purpose: str = typer.Option(
        None, "--purpose", help="What the export is for (e.g. marketing_email): only members who consent are exported."
    ),
    fmt: str = typer.Option("csv", "--format", help="csv or jsonl."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file (default: stdout)."),
    at: str = typer.Option(None, "--at", help="The members at this instant (ISO 8601, UTC)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the members who consent to --purpose (profile id, user id, email, entered at) as CSV or JSON lines."""
    from touchpoint.audiences import workflow

    with warehouse(data) as wh, audited(wh, "audiences.export", name) as entry:
        lines = workflow.export(wh, name, fmt, purpose=purpose, at=parse_when(at, "--at"))
        first = next(lines, "")  # a refused export fails before anything is written
        lines = itertools.chain([first], lines)
        if output is None:
            for line in lines:
                sys.stdout.write(line)
            sys.stdout.flush()
            return
        with output.open("w", encoding="utf-8", newline="") as fh:
            n = sum(1 for line in lines if fh.write(line) >= 0)
        entry.rows = n - 1 if fmt == "csv" else n
    rows = n - 1 if fmt == "csv" else n
    emit(
        {"audience": name, "format": fmt, "purpose": purpose, "rows": rows, "output": str(output)},
        as_json,
        lambda: console.print(f"wrote {rows:,} members to {output}"),
    )


@app.command("refresh")
def refresh(
    names: list[str] = typer.Argument(None, help="Audiences to refresh (default: all)."),
    full: bool = typer.Option(False, "--full", help="Evaluate everyone, not only what changed."),
    at: str = AtOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring memberships up to date (the server's job runner does this on its own)."""
    from touchpoint.audiences import workflow

    with warehouse(data) as wh:
        out = workflow.refresh_audiences(wh, names or None, now=parse_when(at, "--at"), full=full)

    def render() -> None:
        for r in out:
            console.print(_refresh_line(r))

    emit({"refreshed": out}, as_json, render)


@app.command("changes")
def changes(
    since: str = typer.Option(..., "--since", help="Entries and exits after this instant (ISO 8601, UTC)."),
    name: str = typer.Option(None, "--audience", help="Only this audience."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Entries and exits recorded since an instant: the facts automations trigger on."""
    from touchpoint.audiences import workflow

    when = parse_when(since, "--since")
    assert when is not None
    with warehouse(data) as wh, audited(wh, "audiences.changes", name) as entry:
        rows = workflow.changes(wh, when, audience=name)
        entry.rows = len(rows)
    emit(
        {"changes": rows},
        as_json,
        lambda: table(
            "changes",
            ["at", "audience", "change", "profile"],
            [(r["at"], r["audience"], r["change"], r["profile_id"]) for r in rows],
        ),
    )


@app.command("delete")
def delete(
    name: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Confirm: the membership history goes too."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete an audience and its membership history (its definition versions are kept)."""
    from touchpoint.audiences import workflow

    if not yes:
        raise InvalidInput(
            f"deleting audience {name!r} also deletes its membership history", hint="run again with --yes to delete it"
        )
    with warehouse(data) as wh:
        out = workflow.delete(wh, name)
    emit(out, as_json, lambda: console.print(f"deleted audience {name}"))
