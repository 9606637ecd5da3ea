"""``touchpoint users``: the people who sign in to the dashboard: create, list, disable."""

from __future__ import annotations

import sys

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, audited, console, emit, table, warehouse
from touchpoint.errors import InvalidInput

app = typer.Typer(help="Dashboard users: a role (viewer, analyst, admin) and a password.", no_args_is_help=True)

RoleOpt = typer.Option("viewer", "--role", help="viewer (reads), analyst (also replays quarantine), admin (all).")
StdinOpt = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of stdin instead of prompting."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("no password on stdin", hint="pipe it in: printf '%s\\n' \"$PASSWORD\" | ...")
        return password
    if not sys.stdin.isatty():
        raise InvalidInput(
            "cannot prompt for a password: stdin is not a terminal", hint="use --password-stdin and pipe it in"
        )
    typed: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return typed


@app.command("create")
def users_create(
    name: str,
    role: str = RoleOpt,
    password_stdin: bool = StdinOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a dashboard user (the password is asked for; only its scrypt hash is stored)."""
    from touchpoint import users as userlib

    userlib.check_role(role)
    password = _password(password_stdin)
    with warehouse(data) as wh, audited(wh, "users.create", name) as entry:
        entry.detail["role"] = role
        user = userlib.create_user(wh, name, password, role)
    emit(user.to_dict(), as_json, lambda: console.print(f"user [bold]{name}[/] created with role {role}"))


@app.command("list")
def users_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List dashboard users: role, status, last sign-in (never passwords)."""
    from touchpoint import users as userlib

    with warehouse(data) as wh:
        found = userlib.list_users(wh)
    emit(
        [u.to_dict() for u in found],
        as_json,
        lambda: table(
            "users",
            ["name", "role", "status", "last sign-in", "created"],
            [(u.name, u.role, u.status, u.last_sign_in_at or "never", u.created_at) for u in found],
        ),
    )


@app.command("disable")
def users_disable(name: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop a user signing in and end their sessions now."""
    from touchpoint import users as userlib

    with warehouse(data) as wh, audited(wh, "users.disable", name):
        user = userlib.disable_user(wh, name)
    emit(user.to_dict(), as_json, lambda: console.print(f"user [bold]{name}[/] disabled; their sessions ended"))
