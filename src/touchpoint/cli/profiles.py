"""``touchpoint profiles rebuild|update|show|events|search|split|merge|stats|log``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, audited, console, emit, pseudonym, table, warehouse
from touchpoint.errors import InvalidInput

app = typer.Typer(
    help="Resolve identities into unified customer profiles; look them up, split and merge them.",
    no_args_is_help=True,
)

RulesOpt = typer.Option(
    None, "--rules", help="A JSON file of merge rules (priority, limits, blocked_values, external_ids...)."
)
AsOfOpt = typer.Option(None, "--as-of", help="Instant recency counts from (ISO 8601; default: now, UTC).")


def _render_summary(data: dict[str, Any]) -> None:
    r = data["identity"]
    console.print(
        f"identity {r['mode']}: {r['events']:,} events, {r['profiles']:,} profiles, "
        f"{r['refused_links']:,} refused links, {r['merges_logged']:,} merges logged in {r['seconds']} s"
    )
    for note in r.get("notes") or []:
        console.print(f"  [yellow]{note}[/]")
    p = data["profiles"]
    console.print(f"profiles: {p['profiles']:,} profiles, {p['traits']:,} traits in {p['seconds']} s")


@app.command("rebuild")
def rebuild(rules: Path = RulesOpt, as_of: datetime = AsOfOpt, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve every event from scratch, then rebuild the profiles (manual splits/merges are kept)."""
    from touchpoint.profiles import workflow

    with warehouse(data) as wh:
        out = workflow.rebuild(wh, workflow.rules_from_file(rules), as_of=as_of)
    emit(out, as_json, lambda: _render_summary(out))


@app.command("update")
def update(rules: Path = RulesOpt, as_of: datetime = AsOfOpt, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve only the events stored since the last run, then refresh the profiles."""
    from touchpoint.profiles import workflow

    with warehouse(data) as wh:
        out = workflow.update(wh, workflow.rules_from_file(rules), as_of=as_of)
    emit(out, as_json, lambda: _render_summary(out))


@app.command("show")
def show(
    identifier: str = typer.Argument(..., help="Any identifier of the profile, or its profile id."),
    id_type: str = typer.Option(None, "--type", help="Only match this identifier type (e.g. email)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a profile: computed traits, traits with their source, identifiers, merge history."""
    from touchpoint.profiles.lookup import get_profile

    with warehouse(data) as wh, audited(wh, "profiles.read", pseudonym(wh, identifier)) as entry:
        p = get_profile(wh, identifier, id_type)
        entry.subject, entry.rows = p["profile_id"], 1

    def render() -> None:
        waiting = p["pending"]
        if waiting["provisional"]:
            console.print(
                f"[bold]provisional profile[/] (matched {p['matched']['type']} {p['matched']['value']!r}): "
                f"{waiting['events']} event(s) stored since the last identity update, not resolved yet"
            )
        else:
            console.print(f"[bold]{p['profile_id']}[/] (matched {p['matched']['type']} {p['matched']['value']!r})")
            if waiting["events"]:
                console.print(f"  [dim]{waiting['events']} event(s) since the last profile update: traits included[/]")
        c = p["computed"] or {}
        for key in (
            "first_seen",
            "last_seen",
            "events",
            "sessions",
            "orders",
            "revenue",
            "average_order_value",
            "days_since_last_order",
            "channels",
            "rfm",
        ):
            console.print(f"  {key}: {c.get(key)}")
        table(
            "identifiers",
            ["type", "value", "first seen", "events"],
            [(i["type"], i["value"], i["first_seen"], i["events"]) for i in p["identifiers"]],
        )
        table(
            "traits",
            ["trait", "value", "source", "at"],
            [
                (k, json.dumps(v), p["trait_sources"][k]["source"], p["trait_sources"][k]["timestamp"])
                for k, v in p["traits"].items()
            ],
        )
        if p["merge_history"]:
            table(
                "merge history",
                ["when", "kind", "profiles", "event"],
                [(h["logged_at"], h["kind"], h["merged_profile_ids"], h["message_id"]) for h in p["merge_history"]],
            )

    emit(p, as_json, render)


@app.command("events")
def events(
    identifier: str = typer.Argument(..., help="Any identifier of the profile, or its profile id."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    event_type: str = typer.Option(None, "--type", help="Only this event type (track, page, identify...)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The profile's timeline across all its identifiers, newest first."""
    from touchpoint.profiles.timeline import timeline

    with warehouse(data) as wh, audited(wh, "profiles.events", pseudonym(wh, identifier)) as entry:
        page = timeline(wh, identifier, limit=limit, offset=offset, event_type=event_type)
        entry.subject, entry.rows = page["profile_id"], len(page["events"])

    def render() -> None:
        table(
            f"{page['profile_id']}: {page['total']:,} events",
            ["time", "type", "event/page", "user", "anonymous"],
            [
                (e["timestamp"], e["type"], e["event"] or e["name"], e["user_id"], e["anonymous_id"])
                for e in page["events"]
            ],
        )

    emit(page, as_json, render)


@app.command("search")
def search_(
    criteria: list[str] = typer.Argument(..., help="trait=value pairs, e.g. plan=pro rfm=555"),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Profiles whose traits (or computed traits) have the given values."""
    from touchpoint.profiles.lookup import search

    pairs: dict[str, str] = {}
    for item in criteria:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"{item!r} is not trait=value", hint="write e.g. plan=pro")
        pairs[name] = value
    with warehouse(data) as wh, audited(wh, "profiles.search") as entry:
        found = search(wh, pairs, limit=limit, offset=offset)
        entry.rows, entry.detail["criteria"] = len(found["profiles"]), sorted(pairs)

    def render() -> None:
        table(
            f"{found['total']:,} profiles",
            ["profile", "user", "email", "orders", "revenue", "rfm", "last seen"],
            [
                (
                    r["profile_id"],
                    r["user_id"],
                    r["email"],
                    r["orders"],
                    r["revenue"],
                    r["rfm"],
                    r["last_seen"],
                )
                for r in found["profiles"]
            ],
        )

    emit(found, as_json, render)


@app.command("split")
def split(
    profile: str = typer.Argument(..., help="The profile (its id or any identifier)."),
    identifier: str = typer.Option(..., "--identifier", help="The identifier to cut out of the profile."),
    id_type: str = typer.Option(None, "--type", help="The identifier's type when the value is ambiguous."),
    note: str = typer.Option(None, "--note", help="Why (kept in the merge log)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Undo a bad merge: cut an identifier from everything it linked, recompute, refresh profiles."""
    from touchpoint.profiles import workflow

    with warehouse(data) as wh, audited(wh, "profiles.split", pseudonym(wh, profile)) as entry:
        out = workflow.split(wh, profile, identifier, id_type, note=note)
        entry.subject = out["profile_id"]
    emit(
        out,
        as_json,
        lambda: console.print(
            f"split {out['identifier']['type']} {out['identifier']['value']!r} "
            f"into {out['split_profile_id']}; the rest is {out['profile_id']}"
        ),
    )


@app.command("merge")
def merge(
    first: str = typer.Argument(..., help="A profile id or any identifier."),
    second: str = typer.Argument(..., help="Another profile id or identifier."),
    note: str = typer.Option(None, "--note", help="Why (kept in the merge log)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge two profiles (lifting any split between them, else forcing a link), refresh profiles."""
    from touchpoint.profiles import workflow

    with warehouse(data) as wh, audited(wh, "profiles.merge") as entry:
        out = workflow.merge(wh, first, second, note=note)
        entry.subject = out["profile_id"]
    emit(out, as_json, lambda: console.print(f"merged into {out['profile_id']}"))


@app.command("stats")
def stats_(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Counts: profiles, identifiers by type, links and refusals by reason."""
    from touchpoint.profiles.lookup import stats

    with warehouse(data) as wh:
        s = stats(wh)

    def render() -> None:
        for k, v in s.items():
            console.print(f"{k}: {v}")

    emit(s, as_json, render)


def _link(r: dict[str, Any]) -> str:
    if not r["src_type"]:
        return ""
    return f"{r['src_type']} {r['src_value']} ~ {r['dst_type']} {r['dst_value']}"


@app.command("log")
def log(limit: int = typer.Option(50, "--limit"), data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """The merge log, newest first: merges, splits and renames with the link and event that caused them."""
    from touchpoint.identity import tables

    with warehouse(data) as wh, audited(wh, "profiles.log") as entry:
        t = wh.table(tables.MERGE_LOG)
        rows: list[dict[str, Any]] = wh.to_arrow(t.order_by(t.logged_at.desc()).limit(limit)).to_pylist()
        entry.rows = len(rows)

    def render() -> None:
        table(
            "merge log",
            ["when", "kind", "profile", "from", "link", "event"],
            [
                (
                    r["logged_at"],
                    r["kind"],
                    r["profile_id"],
                    r["merged_profile_ids"],
                    _link(r),
                    r["message_id"],
                )
                for r in rows
            ],
        )

    emit(rows, as_json, render)
