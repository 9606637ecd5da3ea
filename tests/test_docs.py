"""Docs cannot drift: every CLI command and every setting is documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.main import app
from touchpoint.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _all_docs() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))


def _commands(group: Any, prefix: str) -> list[str]:
    if getattr(group, "commands", None):  # typer ships its own click; match groups by shape
        found = []
        for name, command in group.commands.items():
            found += _commands(command, f"{prefix} {name}")
        return found
    return [prefix]


def test_every_cli_command_is_documented() -> None:
    text = _all_docs()
    commands = _commands(typer.main.get_command(app), "touchpoint")
    assert len(commands) > 10
    missing = [c for c in commands if f"`{c}" not in text]
    assert missing == [], f"document these in docs/*.md: {missing}"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert missing == [], f"document these settings in docs/configuration.md: {missing}"


def test_readme_has_exactly_the_two_quick_start_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in quick.splitlines() if line.startswith(("python3 ", "./"))]
    assert commands == [
        "python3 -m pip install uv && python3 -m uv run --locked touchpoint demo",
        "./scripts/test",
    ]
