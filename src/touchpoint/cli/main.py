"""``touchpoint``: the command-line entry point and its one error boundary.

An expected error (:class:`~touchpoint.errors.TouchpointError`) exits 1, a usage error 2, an unexpected
one 70. A person sees a red message and a hint on stderr; a command given ``--json`` prints the HTTP
API's error shape, ``{"success": false, "error": {"code", "message", "hint"}}``, on stdout.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer
import typer._click  # typer >= 0.26 raises its own copy of click's exceptions

from touchpoint import __version__
from touchpoint.cli import (
    admin,
    audiences,
    audit,
    automations,
    datamap,
    demo,
    experiment,
    imports,
    jobs,
    journeys,
    kpis,
    mmm,
    plan,
    predict,
    privacy,
    profiles,
    quarantine,
    query,
    remote,
    scores,
    serve,
    users,
)
from touchpoint.cli.common import Group, debug_enabled, enable_debug, err_console, json_output, to_json
from touchpoint.errors import TouchpointError, error_body

app = typer.Typer(
    name="touchpoint",
    cls=Group,
    help="touchpoint: collect, resolve, predict, measure and act on customer data, on one copy of it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"touchpoint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback when a command fails."),
) -> None:
    if debug:
        enable_debug()


app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("query")(query.query)
app.add_typer(admin.sources_app, name="sources", cls=Group)
app.add_typer(admin.keys_app, name="keys", cls=Group)
app.add_typer(imports.app, name="import", cls=Group)
app.add_typer(quarantine.app, name="quarantine", cls=Group)
app.add_typer(experiment.app, name="experiment", cls=Group)
app.add_typer(journeys.journeys_app, name="journeys", cls=Group)
app.command("attribution")(journeys.attribution)
app.add_typer(profiles.app, name="profiles", cls=Group)
app.add_typer(privacy.app, name="privacy", cls=Group)
app.add_typer(predict.app, name="predict", cls=Group)
app.add_typer(audiences.app, name="audiences", cls=Group)
app.add_typer(scores.app, name="scores", cls=Group)
app.add_typer(automations.app, name="automations", cls=Group)
app.add_typer(mmm.app, name="mmm", cls=Group)
app.add_typer(jobs.app, name="jobs", cls=Group)
app.add_typer(users.app, name="users", cls=Group)
app.add_typer(audit.app, name="audit", cls=Group)
app.command("kpis")(kpis.kpis)
app.command("map")(datamap.map_command)
app.add_typer(plan.app, name="plan", cls=Group)
app.add_typer(privacy.app, name="privacy", cls=Group)


def _fail(exit_code: int, code: str, message: str, hint: str | None, *, label: str = "error") -> None:
    """Print one error (JSON on stdout under ``--json``, red on stderr otherwise) and exit."""
    if json_output.get():
        sys.stdout.write(to_json(error_body(code, message, hint)) + "\n")
        sys.stdout.flush()
    else:
        err_console.print(f"[bold red]{label}:[/] {message}", highlight=False)
        if hint:
            err_console.print(f"[yellow]hint:[/] {hint}", highlight=False)
    sys.exit(exit_code)


@functools.cache
def _command() -> Any:
    """The click command Typer builds from ``app``, once per process: ``app(...)`` builds the whole tree again
    on every call (~80 ms: every command's signature and type hints), which a process that runs several commands
    (the server's relay, the tests) paid each time. ``app`` has ``pretty_exceptions_enable=False``, so what
    ``Typer.__call__`` adds around the command (its traceback hook) does nothing here."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Expected errors exit 1 with their hint, usage errors 2, unexpected ones 70."""
    json_output.set(False)
    try:
        served = remote.run_if_served(sys.argv[1:] if argv is None else argv)
        if served is not None:  # a server holds the warehouse: the command ran there, its output is printed
            sys.exit(served)
        code = _command()(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # click returns a command's typer.Exit(code) when not standalone
            sys.exit(code)
    except TouchpointError as exc:
        if debug_enabled():
            raise
        _fail(1, exc.code, exc.message, exc.hint)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail(130, "aborted", "aborted", None)
    except typer._click.ClickException as exc:
        args = sys.argv[1:] if argv is None else argv
        options = args[: args.index("--")] if "--" in args else args
        if "--json" in options:
            json_output.set(True)  # the parser stopped before it reached the option
        if json_output.get():  # a usage error is the CLI's request validation: the API says invalid_input
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "touchpoint COMMAND"
            _fail(exc.exit_code, "invalid_input", exc.format_message(), f"see `{command} --help`")
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug_enabled():
            raise
        first_line = (str(exc).splitlines() or [""])[0][:300]  # an engine's message can run to pages
        _fail(
            70,
            "internal_error",
            f"{type(exc).__name__}: {first_line}",
            "run again with `touchpoint --debug ...` for the traceback",
            label="unexpected error",
        )


if __name__ == "__main__":
    main()
