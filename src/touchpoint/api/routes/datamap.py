"""The data-flow map over HTTP (read key): ``GET /v1/map`` as JSON, or ``?format=mermaid|svg`` as text;
the same map as ``touchpoint map`` (docs/privacy.md, "Data-flow map")."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from touchpoint.api.deps import ReadKey, State
from touchpoint.datamap import build, render

router = APIRouter(tags=["privacy"])
MEDIA = {"mermaid": "text/plain; charset=utf-8", "svg": "image/svg+xml"}


@router.get("/v1/map", summary="The data-flow map: sources, tables, jobs, models, actions, destinations")
def get_map(
    app: State,
    _key: ReadKey,
    fmt: Literal["json", "mermaid", "svg"] = Query("json", alias="format", description="json, mermaid or svg"),
) -> Any:
    drawn = render(build(app.settings, warehouse=app.warehouse), fmt)
    if fmt == "json":
        return drawn
    return Response(drawn, media_type=MEDIA[fmt])
