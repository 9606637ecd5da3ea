"""The examples in the library's docstrings run, and print what they say they print.

Each module of ``src/touchpoint`` with a ``>>>`` example is one test, imported under its real name
(so the examples see the same classes and registries as the rest of the suite).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "touchpoint").rglob("*.py")
    if ">>> " in path.read_text()
)


def test_the_examples_are_found() -> None:
    assert len(MODULES) > 50


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder().find(module, name)
    assert any(t.examples for t in tests), f"{name} has '>>> ' outside a docstring example"
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
