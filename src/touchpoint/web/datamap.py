"""The "Data map" page: the data-flow map drawn (inline SVG) with its tables' personal data, purposes and
retention, and what each destination sends; the same map as ``touchpoint map`` and ``GET /v1/map``."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.datamap import build, render
from touchpoint.web.pages import _ctx, _guard, router
from touchpoint.web.render import render as render_page


def _page_data(settings: Any, wh: Any) -> dict[str, Any]:
    m = build(settings, warehouse=wh)
    writers: dict[str, list[str]] = {}
    readers: dict[str, list[str]] = {}
    labels = {n.id: n.label for n in m.nodes}
    for e in m.edges:
        if e.kind == "writes":
            writers.setdefault(e.target, []).append(labels[e.source])
        elif e.kind in ("reads", "triggers"):
            readers.setdefault(e.source, []).append(labels[e.target])
    tables = [
        {**n.to_dict(), "writers": writers.get(n.id, []), "readers": readers.get(n.id, [])}
        for n in m.nodes
        if n.kind == "table"
    ]
    tables.sort(key=lambda t: (t["personal"]["status"] != "personal", t["name"]))
    return {
        "svg": Markup(render(m, "svg")),
        "tables": tables,
        "destinations": [n.to_dict() for n in m.nodes if n.kind == "destination"],
        "actions": [n.to_dict() for n in m.nodes if n.kind == "action"],
        "counts": m.to_dict()["counts"],
        "notes": m.notes,
    }


@router.get("/datamap", response_class=HTMLResponse)
async def datamap(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        data = await run_in_threadpool(_page_data, state.settings, state.warehouse)
        return render_page(request, "datamap.html", {"title": "Data map", "section": "datamap", "map": data}, session)

    return await _guard(request, "viewer", work)
