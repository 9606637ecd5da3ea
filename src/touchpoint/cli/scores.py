"""``touchpoint scores create|list|show|run|explain|demote|entries|compare``: rule-based lead scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, audited, console, emit, parse_when, table, warehouse

app = typer.Typer(
    help="Lead scores: fit and engagement rules, bands, lifecycle stages (docs/audiences.md).", no_args_is_help=True
)


@app.command("create")
def create(
    name: str = typer.Argument(...),
    definition: Path = typer.Option(..., "--definition", help="A JSON file with the score definition."),
    description: str = typer.Option(None, "--description"),
    replace: bool = typer.Option(False, "--replace", help="Change an existing score (a new version)."),
    evaluate: bool = typer.Option(True, "--run/--no-run", help="Score every profile now."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a score definition and score every profile."""
    from touchpoint.audiences import scores
    from touchpoint.cli.audiences import _read_definition

    body = _read_definition(definition)
    with warehouse(data) as wh:
        out: dict[str, Any] = {"score": scores.save(wh, name, body, description=description, replace=replace)}
        if evaluate:
            out["run"] = scores.run(wh, name)
    emit(
        out,
        as_json,
        lambda: console.print(
            f"saved score [bold]{name}[/] version {out['score']['version']}"
            + (f"; bands {out['run']['bands']}" if "run" in out else "")
        ),
    )


@app.command("list")
def list_(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """The saved scores."""
    from touchpoint.audiences import scores

    with warehouse(data) as wh:
        rows = scores.list_all(wh)
    emit(
        {"scores": rows},
        as_json,
        lambda: table(
            "scores",
            ["name", "version", "updated", "description"],
            [(r["name"], r["version"], r["updated_at"], r["description"]) for r in rows],
        ),
    )


@app.command("show")
def show(
    name: str = typer.Argument(...),
    profile: str = typer.Option(None, "--profile", help="A profile id: its stored points, band and stage."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A score's definition, or (--profile) one profile's stored points, band and stage."""
    import json

    from touchpoint.audiences import scores

    if profile is not None:
        with warehouse(data) as wh, audited(wh, "scores.read", f"{name}/{profile}"):
            row = scores.profile_score(wh, name, profile)
        emit(
            row,
            as_json,
            lambda: console.print(
                f"{profile}: {row['points']} points (fit {row['fit']}, engagement {row['engagement']}), "
                f"band {row['band']}, stage {row['stage']}, computed at {row['computed_at']}"
            ),
        )
        return
    with warehouse(data) as wh:
        out = scores.get(wh, name)
    emit(out, as_json, lambda: console.print(json.dumps(out["definition"], indent=2), highlight=False))


@app.command("run")
def run(
    name: str = typer.Argument(...),
    at: str = typer.Option(None, "--at", help="Score as of (ISO 8601, UTC)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every profile now; record band entries and stage promotions."""
    from touchpoint.audiences import scores

    with warehouse(data) as wh:
        out = scores.run(wh, name, now=parse_when(at, "--at"))
    emit(
        out,
        as_json,
        lambda: console.print(
            f"{out['profiles']:,} scored; bands {out['bands']}; stages {out['stages']}; "
            f"{out['band_entries']:,} band entries"
        ),
    )


@app.command("explain")
def explain(
    name: str = typer.Argument(...),
    profile: str = typer.Argument(..., help="A profile id."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which rules gave a profile how many points, and the caps applied."""
    from touchpoint.audiences import scores

    with warehouse(data) as wh, audited(wh, "scores.explain", f"{name}/{profile}"):
        out = scores.explain(wh, name, profile)

    def render() -> None:
        console.print(f"{profile}: {out['points']} points ({out['band']}, stage {out['stage']})")
        table(
            None,
            ["rule", "kind", "group", "points"],
            [(r["rule"], r["kind"], r["group"], r["points"]) for r in out["rules"]],
        )
        table(
            None,
            ["group", "raw", "cap", "counted"],
            [(g["group"], round(g["raw"], 2), g["cap"], round(g["counted"], 2)) for g in out["groups"]],
        )

    emit(out, as_json, render)


@app.command("demote")
def demote(
    name: str = typer.Argument(...),
    profile: str = typer.Argument(...),
    stage: str = typer.Option(..., "--to", help="The earlier stage to move the profile back to."),
    reason: str = typer.Option(..., "--reason", help="Why (kept with the change)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a profile back to an earlier lifecycle stage (the only way a stage goes back)."""
    from touchpoint.audiences import scores

    with warehouse(data) as wh, audited(wh, "scores.demote", f"{name}/{profile}"):
        out = scores.demote(wh, name, profile, stage, reason=reason)
    emit(out, as_json, lambda: console.print(f"{profile}: {out['previous']} -> {out['stage']}"))


@app.command("entries")
def entries(
    since: str = typer.Option(..., "--since", help="Band entries after this instant (ISO 8601, UTC)."),
    name: str = typer.Option(None, "--score"),
    band: str = typer.Option(None, "--band"),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Band entries since an instant: the facts the sales hand-off acts on."""
    from touchpoint.audiences import scores

    when = parse_when(since, "--since")
    assert when is not None
    with warehouse(data) as wh, audited(wh, "scores.entries", name) as entry:
        rows = scores.band_entries(wh, when, score=name, band=band)
        entry.rows = len(rows)
    emit(
        {"entries": rows},
        as_json,
        lambda: table(
            "band entries",
            ["at", "score", "profile", "band", "from"],
            [(r["entered_at"], r["score"], r["profile_id"], r["band"], r["previous"]) for r in rows],
        ),
    )


@app.command("compare")
def compare(
    name: str = typer.Argument(...),
    event: str = typer.Option("Order Completed", "--event"),
    days: int = typer.Option(30, "--days", min=1, max=365),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The rule-based score beside the learned propensity model: AUC on the same out-of-time question."""
    from touchpoint.audiences import scores

    with warehouse(data) as wh:
        out = scores.compare(wh, name, event=event, days=days)
    emit(
        out,
        as_json,
        lambda: console.print(
            f"AUC for {event!r} within {days} days: rule-based {out['rule_based']['auc']}, "
            f"propensity {out['propensity']['auc']}"
        ),
    )
