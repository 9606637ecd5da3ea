"""``touchpoint demo``: the simulated shop, loaded and analysed, then served."""

from __future__ import annotations

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, err_console, settings_for


def demo(
    customers: int = typer.Option(10_000, "--customers", min=1, help="How many customers the shop has."),
    weeks: int = typer.Option(104, "--weeks", min=8, help="How many weeks of history."),
    seed: int = typer.Option(42, "--seed", help="Random seed (same seed, same shop)."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the server when loaded."),
    analyse: bool = typer.Option(True, "--analyse/--no-analyse", help="Run every capability's analysis on the data."),
    host: str = typer.Option(None, "--host", help="Address to serve on (default: setting 'host')."),
    port: int = typer.Option(None, "--port", help="Port to serve on (default: setting 'port')."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a shop with known ground truth, import it as users would, analyse it, serve it."""
    from touchpoint.config import override_settings
    from touchpoint.demo.run import run_demo
    from touchpoint.demo.simulator import DemoConfig

    settings = settings_for(data)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if changes:
        settings = override_settings(**changes)
    say = (lambda _msg: None) if as_json else err_console.print
    from touchpoint.demo.run import DEMO_STEPS

    steps = DEMO_STEPS if analyse else ()
    summary = run_demo(settings, DemoConfig(customers=customers, weeks=weeks, seed=seed), say=say, steps=steps)

    def show() -> None:
        wh = summary["warehouse"]
        console.print(
            f"\n[bold green]demo loaded[/] in {summary['seconds']} s: {wh['events']:,} events, "
            f"{wh['spend_rows']:,} spend rows, {wh['quarantined']:,} quarantined, in {wh['url']}"
        )
        for area, result in summary["steps"].items():
            status = result.get("status")
            headline = result.get("headline", "")
            colour = {"ok": "green", "failed": "red"}.get(status, "yellow")
            console.print(f"  [{colour}]{area}[/]: {status} {headline}", highlight=False)
        keys = summary["keys"]
        console.print(f"  files and ground truth: {summary['files']}")
        console.print(
            f"  write key: {keys['write_key']}   read key: {keys['read_key']}   (saved in {keys['stored_in']})"
        )
        console.print(
            "\nthe dashboard: sign in with the user name empty and an API key as the password:\n"
            f"  admin key: {keys['admin_key']}   (or the read key above, to look without changing anything)",
            highlight=False,
        )
        start = "" if serve else "run `touchpoint serve`, then "
        console.print(f"{start}open [bold]{settings.resolved_public_url()}/[/]", highlight=False)

    emit(summary, as_json, show)
    if serve:
        from touchpoint.cli.serve import serve as serve_command

        serve_command(
            host=settings.host, port=settings.port, data=None, log_level="warning", log_format=None, no_jobs=False
        )
