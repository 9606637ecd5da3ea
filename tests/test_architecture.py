"""The architecture holds: import-linter's contracts (in pyproject.toml) are kept, and cover every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

SURFACES = {"api", "cli", "web"}  # the only packages that may import fastapi, typer or rich
ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out


def test_every_package_has_a_place_in_the_house() -> None:
    layers = next(c for c in CONFIG["contracts"] if c["type"] == "layers")["layers"]
    placed = {name.strip("() ") for layer in layers for name in layer.replace(":", "|").split("|")}
    src = ROOT / "src" / "touchpoint"
    modules = {p.stem for p in src.glob("*.py") if p.name != "__init__.py"}
    packages = modules | {p.parent.name for p in src.glob("*/__init__.py")}
    assert packages - placed == set(), "add these packages to the layers contract in pyproject.toml"
    library = {
        m.removeprefix("touchpoint.")
        for m in next(c for c in CONFIG["contracts"] if c["type"] == "forbidden")["source_modules"]
    }
    assert packages - library <= SURFACES, "add the new package to the forbidden contract's source_modules"
