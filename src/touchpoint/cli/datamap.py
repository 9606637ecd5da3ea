"""``touchpoint map``: the data-flow map, from the code's own registries (docs/privacy.md, "Data-flow map")."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, settings_for, to_json, warehouse


def map_command(
    fmt: str = typer.Option(
        "mermaid", "--format", "-f", help="json, mermaid, svg or png (png needs --out).", show_default=True
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of standard output."),
    no_actions: bool = typer.Option(
        False, "--no-actions", help="Leave out the saved automations (the map of the code alone)."
    ),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw how data flows: sources -> tables -> jobs and models -> tables -> actions -> destinations."""
    from touchpoint.datamap import FORMATS, build, render
    from touchpoint.errors import InvalidInput, WarehouseError

    fmt = "json" if as_json else fmt
    if fmt not in FORMATS:
        raise InvalidInput(f"--format {fmt!r} is not known", hint=f"use one of {', '.join(FORMATS)}")
    if fmt == "png" and out is None:
        raise InvalidInput("--format png writes a binary file: give --out FILE", hint="or use --format svg or mermaid")
    settings = settings_for(data)
    if no_actions:
        m = build(settings)
    else:
        try:
            with warehouse(data, read_only=True) as wh:
                m = build(settings, warehouse=wh)
        except WarehouseError as exc:  # no warehouse yet: the map of the code still stands
            m = build(settings)
            m.notes.append(f"saved automations not shown: {exc.message}")
    drawn = render(m, fmt)
    body: str | bytes = to_json(drawn) + "\n" if fmt == "json" else drawn
    if out is None:
        sys.stdout.write(body if isinstance(body, str) else body.decode())
        sys.stdout.flush()
        return
    if isinstance(body, bytes):
        out.write_bytes(body)
    else:
        out.write_text(body, encoding="utf-8")
    console.print(f"wrote the data-flow map ({fmt}, {len(m.nodes)} nodes, {len(m.edges)} edges) to {out}")
