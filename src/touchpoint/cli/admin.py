"""``touchpoint sources`` (write keys) and ``touchpoint keys`` (API keys): create, list, rotate, revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, audited, console, emit, table, warehouse

if TYPE_CHECKING:
    from touchpoint.keys import KeyInfo

sources_app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the read and admin endpoints.", no_args_is_help=True)

GraceOpt = typer.Option(
    "24h", "--grace", help="How long the old key keeps working: e.g. 30m, 24h, 7d; 0 stops it now (at most 90d)."
)


def _when(value: object) -> str:
    return "never" if value is None else str(value)


def _show_rotated(what: str, name: str, key: str, info: KeyInfo) -> None:
    console.print(f"{what} [bold]{name}[/] has a new key (shown once, keep it safe):")
    console.print(key, highlight=False, soft_wrap=True)
    if info.status == "rotating":
        console.print(f"the old key keeps working until {info.previous_key_expires_at} UTC, then stops")
    else:
        console.print("the old key no longer works")


def _rotated(info: KeyInfo, key_field: str, key: str) -> dict[str, object]:
    return {**info.to_dict(), key_field: key}


@sources_app.command("create")
def sources_create(name: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Create a source and print its write key (shown once; only its hash is stored)."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh, audited(wh, "sources.create", name):
        key = keylib.create_source(wh, name)

    def show() -> None:
        console.print(f"source [bold]{name}[/] created. Write key (shown once, keep it safe):")
        console.print(key, highlight=False, soft_wrap=True)

    emit({"name": name, "write_key": key}, as_json, show)


@sources_app.command("list")
def sources_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List sources: key prefixes, status and last use (keys themselves are not stored)."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh:
        infos = keylib.list_sources(wh)
    emit(
        [i.to_dict() for i in infos],
        as_json,
        lambda: table(
            "sources",
            ["name", "key prefix", "status", "last used", "created"],
            [(i.name, i.key_prefix, i.status, _when(i.last_used_at), i.created_at) for i in infos],
        ),
    )


@sources_app.command("rotate")
def sources_rotate(name: str, grace: str = GraceOpt, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Give a source a new write key; the old one keeps working for --grace, then stops."""
    from touchpoint import keys as keylib

    period = keylib.parse_grace(grace)
    with warehouse(data) as wh, audited(wh, "sources.rotate", name):
        key, info = keylib.rotate(wh, "sources", name, grace=period)
    emit(_rotated(info, "write_key", key), as_json, lambda: _show_rotated("source", name, key, info))


@sources_app.command("revoke")
def sources_revoke(name: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop a source's write keys now (`sources rotate NAME` later issues a fresh one)."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh, audited(wh, "sources.revoke", name):
        info = keylib.revoke(wh, "sources", name)
    emit(info.to_dict(), as_json, lambda: console.print(f"source [bold]{name}[/]: every write key revoked"))


@keys_app.command("create")
def keys_create(
    name: str,
    scope: str = typer.Option("read", "--scope", help="read (read endpoints) or admin (everything)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for the read or admin endpoints and print it (shown once)."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh, audited(wh, "keys.create", name) as entry:
        key = keylib.create_api_key(wh, name, scope)
        entry.detail["scope"] = scope

    def show() -> None:
        console.print(f"{scope} key [bold]{name}[/] created (shown once, keep it safe):")
        console.print(key, highlight=False, soft_wrap=True)

    emit({"name": name, "scope": scope, "key": key}, as_json, show)


@keys_app.command("list")
def keys_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys: scopes, prefixes, status and last use."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh:
        infos = keylib.list_api_keys(wh)
    emit(
        [i.to_dict() for i in infos],
        as_json,
        lambda: table(
            "API keys",
            ["name", "scope", "key prefix", "status", "last used", "created"],
            [(i.name, i.scope, i.key_prefix, i.status, _when(i.last_used_at), i.created_at) for i in infos],
        ),
    )


@keys_app.command("rotate")
def keys_rotate(name: str, grace: str = GraceOpt, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Give an API key a new secret with the same scope; the old one keeps working for --grace, then stops."""
    from touchpoint import keys as keylib

    period = keylib.parse_grace(grace)
    with warehouse(data) as wh, audited(wh, "keys.rotate", name):
        key, info = keylib.rotate(wh, "api_keys", name, grace=period)
    emit(_rotated(info, "key", key), as_json, lambda: _show_rotated("API key", name, key, info))


@keys_app.command("revoke")
def keys_revoke(name: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop an API key now (also an old key still in its grace period)."""
    from touchpoint import keys as keylib

    with warehouse(data) as wh, audited(wh, "keys.revoke", name):
        info = keylib.revoke(wh, "api_keys", name)
    emit(info.to_dict(), as_json, lambda: console.print(f"API key [bold]{name}[/] revoked"))
