"""Print touchpoint's package-level import graph as text, one edge a line.

Usage: ``uv run python scripts/import_graph.py > graph.txt``. An edge ``a -> b (n)`` means that n
module-level imports in ``touchpoint.a`` (or below it) import ``touchpoint.b`` (or below it). The lines after
the edges list which packages import the surface libraries (fastapi, typer, rich, starlette, uvicorn).
"""

from __future__ import annotations

from collections import Counter

import grimp

SURFACE_LIBRARIES = ("fastapi", "starlette", "typer", "rich", "uvicorn", "click")


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def main() -> None:
    graph = grimp.build_graph("touchpoint", include_external_packages=True, cache_dir=None)
    edges: Counter[tuple[str, str]] = Counter()
    surface: Counter[tuple[str, str]] = Counter()
    for importer in sorted(graph.modules):
        if not importer.startswith("touchpoint"):
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.startswith("touchpoint."):
                a, b = top(importer), top(imported)
                if a != b:
                    edges[(a, b)] += 1
            elif imported.split(".")[0] in SURFACE_LIBRARIES:
                surface[(top(importer), imported.split(".")[0])] += 1
    print("# package-level imports inside touchpoint: importer -> imported (number of module imports)")
    for (a, b), n in sorted(edges.items()):
        print(f"{a} -> {b} ({n})")
    print()
    print("# surface libraries imported by: package -> library (number of module imports)")
    for (a, b), n in sorted(surface.items()):
        print(f"{a} -> {b} ({n})")


if __name__ == "__main__":
    main()
