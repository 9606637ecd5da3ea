"""``touchpoint``: the command-line entry point and its one error boundary."""

from __future__ import annotations

import os
import sys

import typer

from touchpoint import __version__
from touchpoint.cli import (
    admin,
    demo,
    experiment,
    imports,
    journeys,
    mmm,
    predict,
    profiles,
    quarantine,
    query,
    serve,
)
from touchpoint.cli.common import err_console
from touchpoint.errors import TouchpointError

app = typer.Typer(
    name="touchpoint",
    help="touchpoint: collect, resolve, predict, measure and act on customer data, on one copy of it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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
        os.environ["TOUCHPOINT_DEBUG"] = "1"


app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("query")(query.query)
app.add_typer(admin.sources_app, name="sources")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(imports.app, name="import")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(experiment.app, name="experiment")
app.add_typer(journeys.journeys_app, name="journeys")
app.command("attribution")(journeys.attribution)
app.add_typer(profiles.app, name="profiles")
app.add_typer(predict.app, name="predict")
app.add_typer(mmm.app, name="mmm")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Expected errors print in red with their hint and exit 1; others exit 70."""
    try:
        app(args=argv, standalone_mode=False)
    except TouchpointError as exc:
        if os.environ.get("TOUCHPOINT_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {exc.hint}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[red]aborted[/]")
        sys.exit(130)
    except Exception as exc:  # click's usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("TOUCHPOINT_DEBUG"):
            raise
        err_console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}")
        err_console.print("[yellow]hint:[/] run again with `touchpoint --debug ...` for the traceback")
        sys.exit(70)


if __name__ == "__main__":
    main()
