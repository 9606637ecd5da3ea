"""``touchpoint sources`` (write keys) and ``touchpoint keys`` (API keys)."""

from __future__ import annotations

import typer

from touchpoint import keys as keylib
from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, table, warehouse

sources_app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the read and admin endpoints.", no_args_is_help=True)


@sources_app.command("create")
def sources_create(name: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Create a source and print its write key (shown once; only its hash is stored)."""
    with warehouse(data) as wh:
        key = keylib.create_source(wh, name)

    def show() -> None:
        console.print(f"source [bold]{name}[/] created. Write key (shown once, keep it safe):")
        console.print(key, highlight=False, soft_wrap=True)

    emit({"name": name, "write_key": key}, as_json, show)


@sources_app.command("list")
def sources_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List sources (names and key prefixes; keys themselves are not stored)."""
    with warehouse(data) as wh:
        infos = keylib.list_sources(wh)
    emit(
        [i.to_dict() for i in infos],
        as_json,
        lambda: table(
            "sources",
            ["name", "key prefix", "created"],
            [(i.name, i.key_prefix, i.created_at) for i in infos],
        ),
    )


@keys_app.command("create")
def keys_create(
    name: str,
    scope: str = typer.Option("read", "--scope", help="read (read endpoints) or admin (everything)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for the read or admin endpoints and print it (shown once)."""
    with warehouse(data) as wh:
        key = keylib.create_api_key(wh, name, scope)

    def show() -> None:
        console.print(f"{scope} key [bold]{name}[/] created (shown once, keep it safe):")
        console.print(key, highlight=False, soft_wrap=True)

    emit({"name": name, "scope": scope, "key": key}, as_json, show)


@keys_app.command("list")
def keys_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys (names, scopes and prefixes)."""
    with warehouse(data) as wh:
        infos = keylib.list_api_keys(wh)
    emit(
        [i.to_dict() for i in infos],
        as_json,
        lambda: table(
            "API keys",
            ["name", "scope", "key prefix", "created"],
            [(i.name, i.scope, i.key_prefix, i.created_at) for i in infos],
        ),
    )
