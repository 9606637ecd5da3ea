"""File paths on a command line, made absolute for a server whose working directory is another.

A command sent to the running server (:mod:`touchpoint.cli.relay`) reads and writes its files in the
server's process, where a relative path would resolve against the server's working directory. The
values of the command's path parameters (Typer parameters annotated ``Path``: ``import events FILE``,
``--orders``, ``--plot``, ``--chart``, ``--out``, ``--data``, ...) are found by the command's own
parser and joined to the client's directory; no other argument is touched.

>>> absolute_paths(["import", "events", "x.jsonl", "--source", "y"], "/home/ann")
['import', 'events', '/home/ann/x.jsonl', '--source', 'y']
>>> absolute_paths(["predict", "clv", "--orders=o.csv", "--json"], "/srv")
['predict', 'clv', '--orders=/srv/o.csv', '--json']
>>> absolute_paths(["query", "SELECT 1"], "/srv")
['query', 'SELECT 1']
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

_MARK = "tp-relay-argument-{}"


def _is_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    return any(_is_path(arg) for arg in typing.get_args(annotation))


def _leaf(argv: list[str]) -> tuple[Any, int] | None:
    """The command a command line runs, and the index of its first own argument."""
    from typer.main import get_command

    from touchpoint.cli.main import app

    command: Any = get_command(app)
    i = 0
    while hasattr(command, "get_command"):  # a group: its own options are flags, then the subcommand
        while i < len(argv) and argv[i].startswith("-"):
            i += 1
        if i >= len(argv):
            return None
        command = command.get_command(None, argv[i])
        if command is None:
            return None
        i += 1
    return command, i


def absolute_paths(argv: list[str], cwd: str) -> list[str]:
    """``argv`` with each relative value of a path parameter joined to ``cwd``."""
    found = _leaf(argv)
    if found is None:
        return list(argv)
    command, start = found
    paths = [p for p in command.params if _is_path(getattr(getattr(p, "type_descriptor", None), "annotation", None))]
    if not paths:
        return list(argv)
    options = {opt for p in command.params for opt in getattr(p, "opts", ()) if opt.startswith("-")}
    # --opt=value becomes --opt value, so that each value is one argument of its own
    tokens: list[tuple[int, str | None, str]] = []  # (index in argv, "--opt=" prefix or None, text)
    for index, arg in enumerate(argv[start:], start):
        name, eq, value = arg.partition("=")
        if eq and name in options:
            tokens.extend([(index, None, name), (index, name + "=", value)])
        else:
            tokens.append((index, None, arg))
    marked = [text if text in options or text == "--" else _MARK.format(n) for n, (_, _, text) in enumerate(tokens)]
    try:
        ctx = command.make_context(argv[start - 1] if start else "touchpoint", marked, resilient_parsing=True)
    except Exception:  # a command line the parser refuses: the command itself reports it
        return list(argv)
    result = list(argv)
    for param in paths:
        value = ctx.params.get(param.name)
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            text = str(item) if item is not None else ""
            if not text.startswith(_MARK.format("")):
                continue
            index, prefix, original = tokens[int(text[len(_MARK.format("")) :])]
            if os.path.isabs(original) or original in ("", "-"):
                continue
            joined = os.path.join(cwd, original)
            result[index] = (prefix or "") + joined
    return result
