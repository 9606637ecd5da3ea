"""``touchpoint plan create|show|review|list``: the marketing plan (goal, behaviour changes, tactics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, table, warehouse

app = typer.Typer(
    help="The marketing plan: a goal, the behaviour changes that reach it, tactics, quarterly reviews.",
    no_args_is_help=True,
)


def _n(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, int | float) else str(v)


def _render_plan(p: dict[str, Any]) -> None:
    a, r = p["arithmetic"], p["rollup"]
    g = a["goal"]
    console.print(
        f"[bold]{p['name']}[/] ({p['plan_id']}, version {p['version']}): {g['metric']} from {_n(g['baseline'])} "
        f"to {_n(g['target'])} by {g['deadline'] or 'no deadline'}",
        highlight=False,
    )
    table(
        "behaviour changes",
        ["id", "audience", "behaviour", "from", "to", "adds", "share of gap", "tactics cover"],
        [
            [
                c["id"],
                c["audience"],
                c["behaviour"],
                _n(c["from"], 3),
                _n(c["to"], 3),
                _n(c["contribution"]),
                "-" if c["share_of_gap"] is None else f"{c['share_of_gap']:.0%}",
                "-" if c["tactics_cover"] is None else f"{c['tactics_cover']:.0%}",
            ]
            for c in a["behaviour_changes"]
        ],
    )
    console.print(a["verdict"], highlight=False)
    console.print(
        f"as planned: {g['metric']} {_n(r['expected'])} ({r['interval']:.0%} range {_n(r['low'])} to {_n(r['high'])}); "
        f"probability of reaching {_n(r['target'])}: {r['probability_of_attainment']:.0%}",
        highlight=False,
    )


def _render_review(v: dict[str, Any]) -> None:
    table(
        f"review {v['quarter']} of {v['plan_id']} (version {v['plan_version']})",
        ["tactic", "expected", "measured", "decision", "why"],
        [
            [
                t["tactic"],
                f"{t['expected']['effect']:+.4g} ({t['expected']['low']:+.4g}..{t['expected']['high']:+.4g})",
                f"{t['measured']['effect']:+.4g} ({t['measured']['low']:+.4g}..{t['measured']['high']:+.4g})"
                if t["measured"] and t["measured"].get("available")
                else "no evidence",
                t["decision"],
                t["reason"]
                + (
                    f"; test: {t['minimum_viable_test']['units_per_arm']:,} per arm"
                    + (
                        f", about {t['minimum_viable_test']['days']:.0f} days"
                        if t["minimum_viable_test"].get("days")
                        else ""
                    )
                    if t.get("minimum_viable_test", {}).get("possible")
                    else ""
                ),
            ]
            for t in v["tactics"]
        ],
    )
    console.print(v["arithmetic"]["verdict"], highlight=False)
    r, p = v["rollup"], v["rollup_as_planned"]
    console.print(
        f"[bold]probability of reaching the goal: {r['probability_of_attainment']:.0%}[/] "
        f"(as planned: {p['probability_of_attainment']:.0%}); expected {v['goal']['metric']} {_n(r['expected'])} "
        f"({r['interval']:.0%} range {_n(r['low'])} to {_n(r['high'])}) against the target {_n(r['target'])}",
        highlight=False,
    )


@app.command("create")
def create(
    file: Path = typer.Argument(..., help="The plan as JSON (docs/plan.md)."),
    new_version: bool = typer.Option(False, "--new-version", help="Store as the next version of an existing plan."),
    note: str = typer.Option("", "--note", help="What changed in this version."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a plan (or a new version of it) and show whether its behaviour changes add up to the goal."""
    from touchpoint.plan import workflow

    doc = workflow.read_document(file)
    with warehouse(data) as wh:
        result = workflow.create(wh, doc, new_version=new_version, note=note)
    emit(result, as_json, lambda: _render_plan(result))


@app.command("show")
def show(
    plan_id: str = typer.Argument(..., help="The plan's id."),
    version: int = typer.Option(None, "--version", help="A stored version (default: the latest)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A plan: goal, behaviour changes with the arithmetic, tactics, roll-up and past reviews."""
    from touchpoint.plan import workflow

    with warehouse(data, read_only=True) as wh:
        result = workflow.show(wh, plan_id, version=version)

    def render() -> None:
        _render_plan(result)
        for r in result["reviews"]:
            console.print(
                f"review {r['quarter']}: P(goal) {r['probability_of_attainment']:.0%}; {r['decisions']}",
                highlight=False,
            )

    emit(result, as_json, render)


@app.command("review")
def review(
    plan_id: str = typer.Argument(..., help="The plan's id."),
    quarter: str = typer.Option(..., "--quarter", help="The quarter reviewed, e.g. 2026Q3."),
    version: int = typer.Option(None, "--version", help="A stored version (default: the latest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the review without storing it."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per tactic the measured effect next to the expected one, scale/keep/stop/test, and P(goal)."""
    from touchpoint.plan import workflow

    with warehouse(data, read_only=dry_run) as wh:
        result = workflow.review(wh, plan_id, quarter=quarter, version=version, write=not dry_run)
    emit(result, as_json, lambda: _render_review(result))


@app.command("export")
def export(
    plan_id: str = typer.Argument(..., help="The plan's id."),
    quarter: str = typer.Option(..., "--quarter", help="The quarter reviewed, e.g. 2026Q3."),
    out: Path = typer.Option(..., "--out", help="The file to write: NAME.html or NAME.pdf."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The quarter's review as a one-pager (HTML or PDF): P(goal), the arithmetic, expected vs measured
    effect per tactic. Uses the latest stored review of the quarter, else reviews the plan now."""
    from touchpoint.plan.export import export as write

    with warehouse(data, read_only=True) as wh:
        result = write(wh, plan_id, quarter, out)
    emit(result, as_json, lambda: console.print(f"wrote {result['file']} (from {result['from']})"))


@app.command("list")
def list_cmd(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Every plan's latest version."""
    from touchpoint.plan import workflow

    with warehouse(data, read_only=True) as wh:
        rows = workflow.plans(wh)
    emit(
        rows,
        as_json,
        lambda: table(
            "plans",
            ["id", "version", "name", "saved"],
            [[r["plan_id"], r["version"], r["name"], r["created_at"]] for r in rows],
        ),
    )
