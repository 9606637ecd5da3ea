"""``touchpoint jobs list|show|run``: the jobs ``touchpoint serve`` runs, their runs and table staleness.

Without a server these read the run log in the warehouse and ``run`` runs the job here, recorded like a
server's run (trigger ``manual``).
"""

from __future__ import annotations

from typing import Any

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, server_session, settings_for, table, warehouse

app = typer.Typer(help="The jobs that keep profiles, predictions and models current.", no_args_is_help=True)


def _runner() -> Any:
    """The server's job runner when this command runs inside ``touchpoint serve``, else ``None``."""
    session = server_session.get()
    return session.runner if session is not None else None


def _when(value: str | None) -> str:
    return "-" if not value else value.replace("T", " ")[:19]


@app.command("list")
def list_(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Every job (cadence, last run, status, next due, failures) and how stale each derived table is."""
    from touchpoint.jobs import overview

    settings = settings_for(data)
    with warehouse(data) as wh:
        out = overview(wh, settings, runner=_runner())

    def render() -> None:
        table(
            "jobs",
            ["job", "cadence", "status", "last run", "result", "next due", "failures"],
            [
                (
                    j["name"],
                    j["cadence"],
                    j["status"],
                    _when((j["last_run"] or {}).get("started_at")),
                    (j["last_run"] or {}).get("status", "-"),
                    _when(j["next_due"]) if j["next_due"] != "after new events" else j["next_due"],
                    j["failures"],
                )
                for j in out["jobs"]
            ],
        )
        table(
            "derived tables",
            ["table", "job", "refreshed", "age (s)", "events since"],
            [
                (t["table"], t["job"], _when(t["refreshed_at"]), t["age_seconds"], t["events_since"])
                for t in out["tables"]
            ],
        )

    emit(out, as_json, render)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The job's name (`touchpoint jobs list` shows them)."),
    history: int = typer.Option(20, "--history", min=1, max=500, help="How many of the latest runs to show."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One job: its cadence, state and latest runs (with their errors)."""
    from touchpoint.jobs import one

    settings = settings_for(data)
    with warehouse(data) as wh:
        out = one(wh, settings, name, runner=_runner(), history=history)

    def render() -> None:
        console.print(f"[bold]{out['name']}[/]: {out['doc']}", highlight=False)
        console.print(f"cadence: {out['cadence']}; enabled: {out['enabled']}; status: {out['status']}", highlight=False)
        console.print(
            f"tables: {', '.join(out['tables']) or '-'}; failures in a row: {out['failures']}", highlight=False
        )
        table(
            "latest runs",
            ["started", "trigger", "attempt", "status", "seconds", "rows", "error"],
            [
                (_when(r["started_at"]), r["trigger"], r["attempt"], r["status"], r["seconds"], r["rows"], r["error"])
                for r in out["history"]
            ],
        )

    emit(out, as_json, render)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="The job's name (`touchpoint jobs list` shows them)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a job now and record the run (exit 1 if it failed). While a server runs, its runner runs it,
    so it never overlaps the server's own run of the job."""
    from touchpoint.errors import JobFailed, WarehouseError
    from touchpoint.jobs import configured, execute, get

    settings = settings_for(data)
    job = get(name, configured(settings))
    runner = _runner()
    if runner is not None:
        finished = runner.wait(name, runner.run_now(name))
        if finished is None:
            raise WarehouseError(f"job {name} did not finish: the server is stopping", hint="run it again later")
        result = finished.to_dict()
    else:
        with warehouse(data) as wh:
            result = execute(wh, settings, job, trigger="manual").to_dict()

    def render() -> None:
        console.print(
            f"job {name}: {result['status']} in {result['seconds']}s"
            + (f", {result['rows']:,} rows" if result["rows"] is not None else ""),
            highlight=False,
        )

    if result["status"] == "failed":
        raise JobFailed(f"job {name} failed: {result['error']}", hint=f"`touchpoint jobs show {name}`")
    emit(result, as_json, render)
