"""What every command shares: the ``--data``/``--json`` options, settings, the warehouse, output.

A command module defines ``app = typer.Typer()`` and its commands; each command that touches data
takes ``data: DataOpt = None`` and ``as_json: JsonOpt = False`` and calls :func:`settings_for`
and :func:`emit`. Errors are raised as :class:`~touchpoint.errors.TouchpointError`; the one error
boundary in :mod:`touchpoint.cli.main` prints them, as the API's JSON error shape when the command
was given ``--json`` (the option records it in :data:`json_output` before anything else is parsed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
import typer._click
from typer.core import TyperGroup, TyperOption

from touchpoint.errors import InvalidInput


class Group(TyperGroup):
    """A command group whose ``--help`` flag reads as False when absent.

    Typer leaves an absent ``--help`` as None and coerces that through pydantic, so every group the
    command line passes through would import pydantic (a third of a second) before a ``--help`` that
    needs none of it. A bool default is taken as it is.
    """

    def get_help_option(self, ctx: typer._click.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


if TYPE_CHECKING:
    from typing import TextIO

    from rich.console import Console

    from touchpoint.config import Settings
    from touchpoint.warehouse import Warehouse


@dataclass
class ServerSession:
    """A command run inside ``touchpoint serve`` for a client (:mod:`touchpoint.cli.relay`): the server's
    warehouse and settings, and the client's own output streams and consoles."""

    warehouse: Warehouse
    settings: Settings
    stdout: TextIO
    stderr: TextIO
    console: Console
    err_console: Console
    debug: bool = False
    runner: Any = None  # the server's JobRunner, when it runs jobs


#: Set while a command runs for a client inside the server; unset in a command run directly.
server_session: ContextVar[ServerSession | None] = ContextVar("touchpoint_server_session", default=None)


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs more than ``touchpoint --help`` may take.

    Inside the server, a command run for a client prints on that client's console instead.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _real(self) -> Console:
        session = server_session.get()
        if session is not None:
            return session.err_console if self._options.get("stderr") else session.console
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    # rich's Live (progress bars, spinners) enters the console it is given: dunders skip __getattr__
    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._real().__exit__(*exc)


console = cast("Console", _LazyConsole(soft_wrap=True))
err_console = cast("Console", _LazyConsole(stderr=True, soft_wrap=True))


def bound(lazy: Console) -> Console:
    """The console ``lazy`` stands for now, for rich objects that print from threads of their own
    (a ``Progress`` bar refreshes on its own thread, where a server session is not visible)."""
    return lazy._real() if isinstance(lazy, _LazyConsole) else lazy


def debug_enabled() -> bool:
    """Whether ``--debug`` is on for the running command (per client inside the server)."""
    session = server_session.get()
    return session.debug if session is not None else bool(os.environ.get("TOUCHPOINT_DEBUG"))


def enable_debug() -> None:
    session = server_session.get()
    if session is not None:
        session.debug = True  # never the server's environment: other clients' commands share it
    else:
        os.environ["TOUCHPOINT_DEBUG"] = "1"


DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Data directory (default: $TOUCHPOINT_DATA_DIR or ./touchpoint-data).",
        show_default=False,
    ),
]
#: How a command that reads a data file takes it (docs/cli.md, "Reading files"): the format from the
#: file's extension unless --format says, and each field under its documented name unless --map renames it.
FormatOpt = typer.Option(None, "--format", help="jsonl, csv or parquet (default: from the file's extension).")
MapOpt = typer.Option(
    None, "--map", help="FIELD=COLUMN: read FIELD from the file's COLUMN (repeatable; see docs/cli.md, Reading files)."
)


def file_mapping(pairs: Sequence[str] | None, fields: Sequence[str] | None = None) -> dict[str, str]:
    """``--map FIELD=COLUMN`` values as ``{field: column}``; with ``fields``, a field the command does not
    read is refused (a typo would otherwise be ignored)."""
    from touchpoint.collect.readers import parse_mapping

    mapping = parse_mapping(list(pairs or []))
    unknown = [name for name in mapping if fields is not None and name not in fields]
    if unknown:
        raise InvalidInput(
            f"--map {unknown[0]}=...: this command reads no field {unknown[0]!r}",
            hint=f"its fields: {', '.join(fields or ())}",
        )
    return mapping


def deprecated_column_options(mapping: dict[str, str], **old: tuple[str, str | None]) -> dict[str, str]:
    """Fold a replaced ``--x-column C`` option into ``mapping`` as ``FIELD=C``, with a warning on stderr.

    ``old`` maps each option's flag (as a keyword, ``_`` for ``-``) to ``(field, value)``.
    """
    for flag, (field, value) in old.items():
        if value is None:
            continue
        option = "--" + flag.replace("_", "-")
        err_console.print(
            f"[yellow]deprecated:[/] {option} {value} is now --map {field}={value} (docs/cli.md, Reading files)",
            highlight=False,
        )
        mapping.setdefault(field, value)
    return mapping


#: Whether the running command was given ``--json``; the error boundary prints errors as JSON then.
json_output: ContextVar[bool] = ContextVar("touchpoint_cli_json_output", default=False)


def _remember_json(value: bool) -> bool:
    if value:
        json_output.set(True)
    return value


# Eager: read before the other parameters, so the flag is known when one of them is invalid.
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print machine-readable JSON instead of a table.", callback=_remember_json, is_eager=True
    ),
]


def settings_for(data: Path | None = None) -> Settings:
    """The settings in force, with ``--data`` applied when given (inside the server: the server's,
    whose data directory is the one ``--data`` named; the client checked that)."""
    session = server_session.get()
    if session is not None:
        return session.settings
    from touchpoint.config import get_settings, override_settings

    if data is not None:
        return override_settings(data_dir=data)
    return get_settings()


@contextmanager
def warehouse(data: Path | None = None, *, read_only: bool = False) -> Iterator[Warehouse]:
    """The warehouse of ``--data``, opened for the command and closed after it; inside the server, the
    server's own open warehouse (its one write lock orders the command's writes with the collector's)."""
    session = server_session.get()
    if session is not None:
        yield session.warehouse
        return
    from touchpoint.warehouse import open_warehouse

    wh = open_warehouse(settings_for(data), read_only=read_only)
    try:
        yield wh
    finally:
        wh.close()


@contextmanager
def audited(wh: Warehouse, action: str, subject: str | None = None) -> Iterator[Any]:
    """Record the command's access to personal data (or its key or user change) in the audit log, as
    ``cli:<os user>``, when the block ends: ``with warehouse(data) as wh, audited(wh, "profiles.read") as note:``.
    Inside the server the same happens on the server's warehouse, so a relayed command is recorded once."""
    from touchpoint.privacy import audit

    with audit.recorded(wh, actor=audit.cli_actor(), surface="cli", action=action, subject=subject) as note:
        yield note


def pseudonym(wh: Warehouse, identifier: str) -> str:
    """How the audit log names an identifier given on the command line (an email, a user id): keyed."""
    from touchpoint.privacy.audit import pseudonym as keyed

    return keyed(wh, identifier)


@contextmanager
def query_warehouse(data: Path | None = None) -> Iterator[Warehouse]:
    """The warehouse for ``touchpoint query``: a read-only instance of its own with the engine guard on
    (:func:`touchpoint.warehouse.sandbox.open_query_warehouse`); inside the server, the server's warehouse,
    where the query sandbox's parse guard and a rolled-back transaction hold (the engine is shared)."""
    session = server_session.get()
    if session is not None:
        yield session.warehouse
        return
    from touchpoint.warehouse.sandbox import open_query_warehouse

    wh = open_query_warehouse(settings_for(data))
    try:
        yield wh
    finally:
        wh.close()


def read_definition(path: Path, load: Callable[[str, str], Any]) -> Any:
    """A JSON definition from the file ``path`` ('-' reads stdin), parsed by the domain's ``load(text,
    source)`` (e.g. :func:`touchpoint.audiences.workflow.load_definition`), with errors naming the file."""
    if str(path) == "-":
        return load(sys.stdin.read(), "the definition on stdin")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no definition file at {path}", hint="check the --definition path") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise InvalidInput(
            f"cannot read {path} as UTF-8 text: {exc}", hint="save the definition as a JSON file"
        ) from None
    return load(text, str(path))


def parse_when(value: str | None, name: str) -> datetime | None:
    """A command-line date or date-time (ISO 8601) as naive UTC; None when not given."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} {value!r} is not an ISO date-time", hint="e.g. 2026-03-01 or 2026-03-01T09:00"
        ) from None
    from touchpoint.warehouse.clock import naive_utc  # (the warehouse package loads Arrow: not for --help)

    return naive_utc(parsed, name)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def to_json(data: Any) -> str:
    import msgspec

    return msgspec.json.encode(data, enc_hook=_default).decode()


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON (``--json``) or call ``render`` to show it to a person."""
    if as_json or render is None:
        sys.stdout.write(to_json(data) + "\n")
        sys.stdout.flush()
    else:
        render()


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table with ``columns`` and ``rows``."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold")
    for name in columns:
        t.add_column(str(name))
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)
