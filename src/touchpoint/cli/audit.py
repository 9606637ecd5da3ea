"""``touchpoint audit list|verify``: who accessed or changed personal data, and whether the log is intact."""

from __future__ import annotations

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, err_console, parse_when, table, warehouse

app = typer.Typer(help="The audit log: every access to personal data, every privacy, key or user change.",
                  no_args_is_help=True)  # fmt: skip


@app.command("list")
def audit_list(
    since: str = typer.Option(None, "--since", help="Only entries from this instant on (ISO 8601, UTC)."),
    actor: str = typer.Option(None, "--actor", help="Only this actor: key:NAME, user:NAME, cli:USER, job:NAME."),
    action: str = typer.Option(None, "--action", help="Only this action, e.g. profiles.read."),
    subject: str = typer.Option(
        None, "--subject", help="Only entries about this: a profile id or name, or an email or user id (its pseudonym)."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="Most entries shown (newest first)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit entries, newest first: when, who, through what, which action, about whom, how many rows."""
    from touchpoint.privacy import audit

    with warehouse(data) as wh:
        found = audit.entries(
            wh, since=parse_when(since, "--since"), actor=actor, action=action, subject=subject, limit=limit
        )
    emit(
        [e.to_dict() for e in found],
        as_json,
        lambda: table(
            "audit log",
            ["#", "at (UTC)", "actor", "via", "action", "subject", "rows", "outcome"],
            [(e.seq, e.at, e.actor, e.surface, e.action, e.subject, e.rows, e.outcome) for e in found],
        ),
    )


@app.command("verify")
def audit_verify(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute the hash chain; exit 1 naming the first entry that was edited or deleted."""
    from touchpoint.privacy import audit

    with warehouse(data) as wh:
        result = audit.verify(wh)

    def render() -> None:
        if result.ok:
            console.print(
                f"the audit log is intact: {result.checked:,} entries; head #{result.head_seq} {result.head_hash}"
            )
        else:
            err_console.print(f"[bold red]the audit log is broken at entry #{result.broken_seq}:[/] {result.reason}")
            err_console.print(f"entries before it verify (the last good one is #{result.head_seq})")

    emit(result.to_dict(), as_json, render)
    if not result.ok:
        raise typer.Exit(1)
