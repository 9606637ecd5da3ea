"""The data-flow map: which sources feed which tables, which jobs and models derive which, what leaves where.

Generated from the code's own registries (the schema's tables, the job registry, the automation
channels, and :mod:`~touchpoint.datamap.registry` for sources, models and destinations), so it cannot
drift from a hand-drawn picture: a test fails when a table, job, channel or data-changing route is
missing from it. :func:`build` returns the graph, :func:`render` draws it as JSON, Mermaid, SVG or PNG
(``touchpoint map``, ``GET /v1/map``, the dashboard's "Data map"; docs/privacy.md, "Data-flow map").

It sits above the job runner (it reads the jobs' declarations) and below the surfaces.
"""

from __future__ import annotations

from touchpoint.datamap.build import COLUMNS, DataMap, Edge, Node, all_tables, build
from touchpoint.datamap.registry import DESTINATIONS, MODELS, READ_ONLY_ROUTES, SOURCES
from touchpoint.datamap.render import FORMATS, render

__all__ = [
    "COLUMNS",
    "DESTINATIONS",
    "FORMATS",
    "MODELS",
    "READ_ONLY_ROUTES",
    "SOURCES",
    "DataMap",
    "Edge",
    "Node",
    "all_tables",
    "build",
    "render",
]
