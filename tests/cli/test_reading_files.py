"""Every command that reads a data file follows one convention (docs/cli.md, "Reading files")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.conftest import run_cli

from touchpoint.cli.main import app

#: The options (or the argument) through which a command reads a table of data.
DATA_FILE_OPTIONS = {"--file", "--orders", "--paths"}


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    children = getattr(command, "commands", None)  # typer ships its own click: match groups by shape
    if children:
        for name, child in sorted(children.items()):
            yield from _commands(child, f"{path} {name}")
    else:
        yield path, command


def _reads_a_data_file(path: str, command: Any) -> bool:
    options = {opt for p in command.params for opt in getattr(p, "opts", ())}
    return path.startswith("touchpoint import ") or bool(options & DATA_FILE_OPTIONS)


run = run_cli


def test_every_command_that_reads_a_data_file_renames_columns_with_map() -> None:
    readers = [(p, c) for p, c in _commands(typer.main.get_command(app), "touchpoint") if _reads_a_data_file(p, c)]
    assert {p for p, _ in readers} >= {
        "touchpoint import events",
        "touchpoint import orders",
        "touchpoint import spend",
        "touchpoint predict clv",
        "touchpoint experiment analyze",
        "touchpoint attribution",
        "touchpoint mmm fit",
    }
    without = [p for p, c in readers if not any("--map" in getattr(x, "opts", ()) for x in c.params)]
    assert without == []
    # and no visible option names a column another way (--x-col, --x-column): those are --map now
    column_options = [
        (p, opt)
        for p, c in readers
        for x in c.params
        if not getattr(x, "hidden", False)
        for opt in getattr(x, "opts", ())
        if opt.endswith(("-col", "-column"))
    ]
    assert column_options == []


def _weekly(path: Path) -> Path:
    path.write_text("week,sales,tv\n" + "".join(f"2024-01-{1 + 7 * i:02d},{100 + i},5\n" for i in range(4)))
    return path


def test_mmm_fit_reads_the_date_field_renamed_with_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _weekly(tmp_path / "w.csv")
    base = ["mmm", "fit", "--file", str(f), "--target", "sales", "--channel", "tv", "--json"]
    code, out, _ = run(capsys, *base)
    assert code == 1 and "'date'" in json.loads(out)["error"]["message"]  # no column named date
    code, out, _ = run(capsys, *base, "--map", "date=week")
    assert code == 1 and "only 4 weeks" in json.loads(out)["error"]["message"]  # read, then refused: too short
    code, out, err = run(capsys, *base, "--date-column", "week")
    assert code == 1 and "only 4 weeks" in json.loads(out)["error"]["message"]
    assert "--date-column week is now --map date=week" in err
    code, out, _ = run(capsys, *base, "--map", "week=date")
    assert code == 1 and "reads no field 'week'" in json.loads(out)["error"]["message"]


def test_a_malformed_map_is_refused_the_same_way_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _weekly(tmp_path / "w.csv")
    data = ["--data", str(tmp_path / "data"), "--json"]
    for command in (
        ["import", "orders", str(f)],
        ["predict", "clv", "--orders", str(f)],
        ["experiment", "analyze", "--file", str(f), "--control", "a", "--metric", "sales"],
        ["attribution", "--paths", str(f)],
        ["mmm", "fit", "--file", str(f), "--target", "sales", "--channel", "tv"],
    ):
        code, out, _ = run(capsys, *command, "--map", "no-equals-sign", *data)
        error = json.loads(out)["error"]
        assert (code, error["message"]) == (1, "--map 'no-equals-sign' is not FIELD=COLUMN"), command


def test_mmm_fit_reads_parquet_by_either_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(_weekly(tmp_path / "w.csv"))
    for name in ("w.parquet", "w.pq"):
        pq.write_table(table, tmp_path / name)
        args = ["mmm", "fit", "--file", str(tmp_path / name), "--map", "date=week", "--target", "sales"]
        code, out, _ = run(capsys, *args, "--channel", "tv", "--json")
        assert code == 1 and "only 4 weeks" in json.loads(out)["error"]["message"], name
