"""``touchpoint automations create|list|show|pause|resume|run|runs|outbox|replay|lift|split|test``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    JsonOpt,
    audited,
    console,
    emit,
    read_definition,
    settings_for,
    table,
    warehouse,
)

app = typer.Typer(
    help="Automations: a trigger, steps, a goal and a holdout (docs/automations.md); sent once, measured by lift.",
    no_args_is_help=True,
)

NameArg = typer.Argument(..., help="The automation's name.")


def _read_definition(path: Path) -> Any:
    from touchpoint.automations.workflow import load_definition

    return read_definition(path, load_definition)


EngineOpt = typer.Option("sequential", "--engine", help="frequentist, sequential or bayesian.")
AlphaOpt = typer.Option(0.05, "--alpha", help="1 - the interval's coverage.")


@app.command("create")
def create(
    definition: Path = typer.Option(..., "--definition", help="A JSON file with the definition ('-' reads stdin)."),
    replace: bool = typer.Option(False, "--replace", help="Change an existing automation (a new version)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save an automation from a JSON definition; it acts on triggers received from now on."""
    from touchpoint.automations import workflow

    body = _read_definition(definition)
    with warehouse(data) as wh:
        out = workflow.create(wh, body, replace=replace)
    a = out["automation"]
    emit(
        out,
        as_json,
        lambda: console.print(f"saved automation [bold]{a['name']}[/] (version {a['version']}, {a['status']})"),
    )


@app.command("list")
def list_(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """The saved automations with what they sent."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        rows = workflow.list_automations(wh)
    cols = ["name", "status", "version", "trigger", "steps", "holdout", "sent", "pending", "dead"]
    emit({"automations": rows}, as_json, lambda: table("automations", cols, [[r[c] for c in cols] for r in rows]))


@app.command("show")
def show(name: str = NameArg, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """One automation: its definition, watermark, entries per arm and outbox per status."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.show(wh, name)

    def render() -> None:
        console.print(f"[bold]{out['name']}[/] version {out['version']}, {out['status']}")
        console.print_json(data=out["definition"])
        console.print(f"entries: {out['entries'] or 'none'}")
        console.print(f"outbox: {out['outbox'] or 'empty'}")

    emit(out, as_json, render)


def _status(name: str, status: str, data: Path | None, as_json: bool) -> None:
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.pause(wh, name) if status == "paused" else workflow.resume(wh, name)
    emit(out, as_json, lambda: console.print(f"automation [bold]{name}[/] is {out['status']}"))


@app.command("pause")
def pause(name: str = NameArg, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop entering contacts and sending (triggers meanwhile are passed over)."""
    _status(name, "paused", data, as_json)


@app.command("resume")
def resume(name: str = NameArg, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Enter contacts and send again."""
    _status(name, "active", data, as_json)


@app.command("run")
def run(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Evaluate every trigger and send what is due now (the automations and deliveries jobs in the server)."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.run(wh, settings_for(data))

    def render() -> None:
        for d in out["decided"]:
            console.print(
                f"{d['automation']}: {d['triggers']} triggers, {d['entered']} entered "
                f"({d['held_out']} held out), {d['outbox']} to send, {d['suppressed']} without consent"
            )
        console.print(f"delivered: {out['delivered'] or 'nothing due'}")

    emit(out, as_json, render)


@app.command("outbox")
def outbox(
    automation: str = typer.Option(None, "--automation", help="Only this automation's rows."),
    failed: bool = typer.Option(False, "--failed", help="Only dead-lettered rows (replay them with `replay`)."),
    status: str = typer.Option(None, "--status", help="Only rows in this status (pending, retry, sent, ...)."),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000, help="At most this many rows, newest first."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The outbox: each message decided, its status, attempts and last error."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh, audited(wh, "automations.outbox", automation) as entry:
        rows = workflow.outbox_rows(wh, automation=automation, failed=failed, status=status, limit=limit)
        entry.rows = len(rows)
    cols = ["automation", "step", "profile_id", "channel", "status", "attempts", "due_at", "last_error", "pacing"]
    emit({"outbox": rows}, as_json, lambda: table("outbox", cols, [[r[c] for c in cols] for r in rows]))


@app.command("replay")
def replay(
    automation: str = typer.Option(None, "--automation", help="Only this automation's dead rows."),
    ids: list[str] = typer.Option(None, "--id", help="Only this outbox id (repeatable)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-queue dead-lettered messages; the next delivery sends them with their original key."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh, audited(wh, "automations.replay", automation):
        out = workflow.replay(wh, automation=automation, outbox_ids=list(ids or []) or None)
    emit(out, as_json, lambda: console.print(f"re-queued {out['replayed']} message(s)"))


@app.command("test")
def test(
    name: str = NameArg,
    profile: str = typer.Option(..., "--profile", help="The profile id to render the steps for."),
    to: str = typer.Option(None, "--to", help="Send the email steps to this address (nothing is recorded)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render an automation's steps for one profile, and send its emails to a test address."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh, audited(wh, "automations.test", name):
        out = workflow.test(wh, settings_for(data), name, profile, to=to)

    def render() -> None:
        for s in out["steps"]:
            console.print(f"[bold]step {s['step']}[/] ({s['kind']}, {s['after_seconds']:.0f} s after entry)")
            console.print_json(data=s["rendered"])
            if "outcome" in s:
                console.print(f"sent to {s['sent_to']}: {s['outcome']['status']} {s['outcome']['error'] or ''}")

    emit(out, as_json, render)


def _comparison(out: dict[str, Any], engine: str) -> None:
    """A lift's estimate with its interval, the sample ratio check and the verdict."""
    lf = out.get("lift")
    if lf and lf["estimate"] is not None:
        unit = "relative" if lf["relative"] else "absolute"
        console.print(f"lift ({unit}, {engine}): {lf['estimate']:.4f} [{lf['ci_low']:.4f}, {lf['ci_high']:.4f}]")
    if "srm" in out:
        console.print(f"sample ratio check: {'ok' if out['srm']['ok'] else 'FAILED'} (p = {out['srm']['p_value']:.3g})")
    console.print(out["verdict"])


@app.command("lift")
def lift(
    name: str = NameArg,
    engine: str = EngineOpt,
    alpha: float = AlphaOpt,
    absolute: bool = typer.Option(False, "--absolute", help="The lift in goal-rate points, not relative."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the automation earned: goal rate of treated vs held out, with interval and SRM check."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.lift(wh, name, engine=engine, alpha=alpha, relative=not absolute)

    def render() -> None:
        rate = out["goal_rate"]
        console.print(
            f"[bold]{name}[/]: goal {out['goal']['event']} within {out['goal']['within_days']} days; "
            f"entrants treated {out['entrants']['treated']:.0f}, held out {out['entrants']['holdout']:.0f}"
        )
        console.print(f"goal rate: treated {rate['treated']}, held out {rate['holdout']}")
        _comparison(out, engine)

    emit(out, as_json, render)


@app.command("runs")
def runs(
    name: str = NameArg,
    profile: str = typer.Option(None, "--profile", help="Only this profile's entries."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="At most this many entries, newest first."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many entries (paging)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each entry's path through the flow: steps reached, branch taken, waits, outcome."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh, audited(wh, "automations.runs", name) as entry:
        out = workflow.runs(wh, name, profile_id=profile, limit=limit, offset=offset)
        entry.rows = len(out["runs"])

    def render() -> None:
        console.print(f"[bold]{name}[/]: {out['total']} entries (showing {len(out['runs'])})")
        for r in out["runs"]:
            steps = []
            for p in r["path"]:
                what = p.get("taken") or p.get("outcome") or p.get("message") or ""
                steps.append(f"{p['step']}:{p['kind']}" + (f"={what}" if isinstance(what, str) and what else ""))
            where = f" at step {r['at']['step']} until {r['at']['until']}" if r.get("at") else ""
            console.print(f"{r['profile_id']} [{r['arm']}] {r['entered_at']}: {' -> '.join(steps) or '-'}"
                          f"  => {r['outcome']}{where}")  # fmt: skip

    emit(out, as_json, render)


@app.command("split")
def split(
    name: str = NameArg,
    step: int = typer.Option(None, "--step", help="The split step's number (when the flow has several)."),
    engine: str = EngineOpt,
    alpha: float = AlphaOpt,
    absolute: bool = typer.Option(False, "--absolute", help="Differences in goal-rate points, not relative."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A split's arms compared on the goal: each arm's goal rate and its lift over the first, with interval."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.split(wh, name, step=step, engine=engine, alpha=alpha, relative=not absolute)

    def render() -> None:
        console.print(f"[bold]{name}[/] split at step {out['step']}: goal {out['goal']['event']}")
        for arm in out["arms"]:
            console.print(f"  {arm}: {out['entrants'][arm]:.0f} entrants, goal rate {out['goal_rate'][arm]}")
        for c in out.get("comparisons", []):
            if c["estimate"] is not None:
                console.print(
                    f"  {c['arm']} vs {out['control']}: {c['estimate']:.4f} [{c['ci_low']:.4f}, {c['ci_high']:.4f}]"
                )
        console.print(out["verdict"])

    emit(out, as_json, render)


@app.command("programme-lift")
def programme_lift(
    goal: str = typer.Option(None, "--goal", help="The goal event (default: the goal every automation shares)."),
    within_days: int = typer.Option(None, "--within-days", min=1, max=366, help="Days after the first entry."),
    engine: str = EngineOpt,
    alpha: float = AlphaOpt,
    absolute: bool = typer.Option(False, "--absolute", help="The lift in goal-rate points, not relative."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The whole programme's lift: the global control group (never contacted) versus everyone else."""
    from touchpoint.automations import workflow

    with warehouse(data) as wh:
        out = workflow.programme_lift(
            wh,
            settings_for(data),
            goal=goal,
            within_days=within_days,
            engine=engine,
            alpha=alpha,
            relative=not absolute,
        )

    def render() -> None:
        rate, n = out["goal_rate"], out["entrants"]
        console.print(
            f"[bold]programme[/]: goal {out['goal']['event']} within {out['goal']['within_days']} days of the first "
            f"entry; entrants contacted-eligible {n['programme']:.0f}, global control {n['global_control']:.0f}"
        )
        console.print(f"goal rate: programme {rate['programme']}, global control {rate['global_control']}")
        _comparison(out, engine)

    emit(out, as_json, render)
