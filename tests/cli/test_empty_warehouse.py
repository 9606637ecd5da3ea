"""Every CLI command on an empty warehouse: a clean error or a clean empty result, never a traceback.

The commands are found by walking the CLI's command tree, so a new command is covered without
touching this file. Each runs in a fresh data directory, once before any warehouse exists there and once
on a fresh warehouse (its tables made, no rows in them), with only its required arguments (a made-up
name, a file that is empty), once as a person would and once with ``--json`` when it has that option.
``serve`` and ``demo`` are left out: one starts a server that runs until stopped, the other simulates
and analyses a whole shop (tests/cli/test_cli.py runs it on a small one).
"""

from __future__ import annotations

import enum
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from touchpoint.cli.main import app, main
from touchpoint.config import Settings, reset_settings
from touchpoint.warehouse import open_warehouse

SKIPPED = {"touchpoint serve", "touchpoint demo"}


def _leaves(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    children = getattr(command, "commands", None)  # typer ships its own click: match groups by shape
    if children:
        for name, child in sorted(children.items()):
            yield from _leaves(child, f"{path} {name}")
    else:
        yield path, command


COMMANDS = [(path, command) for path, command in _leaves(typer.main.get_command(app), "touchpoint")]
CASES = [
    pytest.param(path, command, as_json, made, id=f"{path[len('touchpoint ') :]}{' --json' if as_json else ''}-{made}")
    for path, command in COMMANDS
    if path not in SKIPPED
    for as_json in (False, True)
    if not as_json or any("--json" in getattr(p, "opts", ()) for p in command.params)
    for made in ("no-warehouse", "empty-warehouse")
]


def _annotation(param: Any) -> Any:
    """The Python type a parameter was declared with (typer 0.29 builds click's types lazily)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return descriptor.annotation
    return {"integer": int, "float": float, "path": Path}.get(getattr(param.type, "name", ""), str)


def _value(param: Any, folder: Path) -> str:
    """A minimal value for a required parameter: an empty file, the first choice, 1, or a name."""
    annotation = _annotation(param)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str(next(iter(annotation)).value)
    if annotation is Path:
        empty = folder / "empty.csv"
        empty.touch()
        return str(empty)
    if annotation is int:
        return "1"
    if annotation is float:
        return "1.0"
    return "x"


def _arguments(command: Any, folder: Path) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = _value(param, folder)
        if param.param_type_name == "argument":
            args += [value] * (1 if param.nargs == 1 else max(param.nargs, 1))
        else:
            args += [param.opts[0], value]
    return args


def test_the_walk_finds_every_command() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"touchpoint predict clv", "touchpoint import events", "touchpoint query"} <= paths
    assert len(CASES) > 4 * (len(paths) - len(SKIPPED)) * 0.8  # nearly every command also has --json


@pytest.fixture(scope="module")
def empty_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a fresh warehouse (every migration applied, no rows)."""
    folder = tmp_path_factory.mktemp("empty") / "data"
    open_warehouse(Settings(data_dir=folder)).close()
    return folder


@pytest.mark.parametrize(("path", "command", "as_json", "made"), CASES)
def test_command_on_an_empty_warehouse(
    path: str,
    command: Any,
    as_json: bool,
    made: str,
    empty_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOUCHPOINT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # anything a command writes next to it lands here
    reset_settings()
    if made == "empty-warehouse":  # the tables exist, with no rows: a copy of one migrated once for the module
        shutil.copytree(empty_data, tmp_path / "data")
    argv = [*path.split()[1:], *_arguments(command, tmp_path), *(["--json"] if as_json else [])]
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    where = f"`touchpoint {' '.join(argv)}` exited {code}\nstdout: {out[:2000]}\nstderr: {err[:2000]}"
    assert "Traceback" not in out + err, where
    assert code in (0, 1, 2), where
    if as_json:
        parsed = json.loads(out)  # a result or an error, always JSON
        if code:
            assert parsed["success"] is False and set(parsed["error"]) == {"code", "message", "hint"}, where
            assert parsed["error"]["message"] and parsed["error"]["code"] != "internal_error", where
    elif code:
        assert err.strip(), where  # a message says what went wrong
