"""``touchpoint serve``: the HTTP API (collector, read endpoints, docs at /docs)."""

from __future__ import annotations

import typer

from touchpoint.cli.common import DataOpt, err_console, settings_for


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (default: setting 'host', 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default: setting 'port', 8000)."),
    data: DataOpt = None,
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Start the HTTP server: Segment-compatible collector, API and docs at /docs."""
    import uvicorn

    from touchpoint.api.app import create_app
    from touchpoint.cli import relay

    settings = settings_for(data)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if changes:
        from touchpoint.config import override_settings

        settings = override_settings(**changes)
    app = create_app(settings)
    relay.attach(app, settings)  # other commands run through this server while it holds the warehouse
    err_console.print(
        f"touchpoint serving on http://{settings.host}:{settings.port} "
        f"(docs at /docs, warehouse {settings.resolved_warehouse_url()})"
    )
    if settings.public_url is None and settings.host in ("0.0.0.0", "::"):
        err_console.print(
            f"[yellow]note:[/] analytics.js will be told to send to {settings.resolved_public_url()}; "
            "set public_url (TOUCHPOINT_PUBLIC_URL) to the address browsers reach"
        )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
