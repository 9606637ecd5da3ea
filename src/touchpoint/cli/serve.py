"""``touchpoint serve``: the HTTP API (collector, read endpoints, docs at /docs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from touchpoint.cli.common import DataOpt, err_console, settings_for
from touchpoint.errors import InvalidInput

if TYPE_CHECKING:
    from touchpoint.config import Settings

#: allocations between two collections of the youngest generation (CPython's default is 700)
GC_YOUNG_THRESHOLD = 50_000


def collect_garbage_rarely() -> None:
    """Make Python's cyclic garbage collector cheap for a server: what start-up made (modules, compiled
    expressions: about 230,000 objects) is frozen out of its passes, and the youngest generation is collected
    every 50,000 allocations, not 700. Each of those passes walked the request's containers (a batch's 100
    rows, a group's 20,000): at 35,000 events/s the collector took 4.6 s of CPU in 40 s (3.6 µs an event,
    under the interpreter lock), about 1 s after, start-up's collections included (docs/decisions.md,
    2026-12-04). Reference counting frees all but cycles at once, as before; the memory ceiling still collects
    in full when over it."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def engine_threads(configured: int | None) -> int | None:
    """DuckDB's threads in the server: ``duckdb_threads`` when set, else one fewer than the cores this process may
    use (at least one). The interpreter that answers HTTP and validates events runs on one core whatever DuckDB
    does; with every core DuckDB's threads took that core from it during each load of the collector log, and
    acknowledgements waited (on 2 cores: 50,700 against 53,300-55,700 events/s with one thread, and less CPU
    an event; docs/decisions.md, 2026-12-05). None leaves DuckDB's default (every core) on a single core.

    >>> engine_threads(3)
    3
    """
    if configured is not None:
        return configured
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores - 1 if cores > 1 else None


def serving_settings(settings: Settings, **options: Any) -> Settings:
    """The settings a server runs with: ``settings`` with the command's ``options`` that were given (host, port...)
    and DuckDB's threads for a server (:func:`engine_threads`)."""
    changes = {name: value for name, value in options.items() if value is not None}
    threads = engine_threads(settings.duckdb_threads)
    if threads != settings.duckdb_threads:
        changes["duckdb_threads"] = threads
    if not changes:
        return settings
    from touchpoint.config import override_settings

    return override_settings(**changes)


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (default: setting 'host', 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default: setting 'port', 8000)."),
    data: DataOpt = None,
    log_level: str = typer.Option("info", "--log-level", help="Lowest level logged: debug, info, warning, error."),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text, or json: one JSON object per line (default: setting 'log_format')."
    ),
    no_jobs: bool = typer.Option(
        False, "--no-jobs", help="Run no jobs (collector and API only; default: setting 'run_jobs')."
    ),
) -> None:
    """Start the HTTP server: Segment-compatible collector, API, docs at /docs, and the jobs that keep
    profiles, predictions and models current. SIGTERM stops it gracefully (exit 0)."""
    import sys

    import uvicorn

    from touchpoint.api import logs, security
    from touchpoint.api.app import create_app
    from touchpoint.api.server import GracefulServer
    from touchpoint.cli import relay
    from touchpoint.warehouse.urls import redact

    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise InvalidInput(f"--log-level {log_level!r} is not known", hint="use debug, info, warning or error")
    settings = serving_settings(settings_for(data), host=host, port=port, log_format=log_format)
    security.check_production(settings)  # production: no default secret, TLS in front (docs/security.md)
    # the threads that wait on sockets (HTTP, SMTP senders) get the interpreter lock back sooner from a job
    # computing in Python: trigger latency, docs/decisions.md (2026-12-03)
    sys.setswitchinterval(settings.server_switch_interval_ms / 1000)
    logs.configure(settings.log_format, log_level)
    app = create_app(settings, run_jobs=False if no_jobs else None)
    relay.attach(app, settings)  # other commands run through this server while it holds the warehouse
    import logging

    log = logging.getLogger("touchpoint.server")
    options = security.server_options(settings)
    where = f"{'https' if 'ssl_certfile' in options else 'http'}://{settings.host}:{settings.port}"
    if settings.log_format == "json":  # every line on stderr is then one JSON object
        log.info("touchpoint serving on %s", where, extra={"fields": {"url": where, "docs": f"{where}/docs"}})
    else:
        err_console.print(
            f"touchpoint serving on {where} (docs at /docs, warehouse {redact(settings.resolved_warehouse_url())})"
        )
    if settings.public_url is None and settings.host in ("0.0.0.0", "::"):
        note = (
            f"analytics.js will be told to send to {settings.resolved_public_url()}; "
            "set public_url (TOUCHPOINT_PUBLIC_URL) to the address browsers reach"
        )
        if settings.log_format == "json":
            log.warning(note)
        else:
            err_console.print(f"[yellow]note:[/] {note}")
    server = GracefulServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=log_level.lower(),
            log_config=None,  # our handler (logs.configure) formats uvicorn's lines too
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            **options,
        )
    )
    collect_garbage_rarely()
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's exit code for a failed start; it has logged why
