"""Audiences over HTTP: definitions, members (now or at a past instant), history, exports and the
entry/exit facts (read key); creating, changing, refreshing and deleting them (admin key)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.audiences import workflow
from touchpoint.warehouse.clock import naive_utc

router = APIRouter(tags=["audiences"])


class AudienceIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    definition: dict[str, Any] = Field(..., description="the definition language of docs/audiences.md")
    description: str | None = Field(None, max_length=2000)
    evaluate: bool = True


class DefinitionIn(BaseModel):
    definition: dict[str, Any]
    description: str | None = Field(None, max_length=2000)
    evaluate: bool = True


class PreviewIn(BaseModel):
    definition: dict[str, Any]
    sample: int = Field(10, ge=0, le=1000)
    at: datetime | None = None
    explain: bool = False


@router.get("/v1/audiences", summary="Saved audiences with their size at the last refresh")
def list_audiences(app: State, _key: ReadKey) -> dict[str, Any]:
    return {"audiences": workflow.list_audiences(app.warehouse)}


@router.post("/v1/audiences", summary="Save a new audience and compute its members", status_code=201)
def create_audience(body: AudienceIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.create(
        app.warehouse, body.name, body.definition, description=body.description, evaluate=body.evaluate
    )


@router.post(
    "/v1/audiences/preview",
    summary="Count and a sample of who a definition selects (not saved)",
    **audited("audiences.preview"),
)
def preview_audience(body: PreviewIn, app: State, _key: ReadKey, note: Audit) -> dict[str, Any]:
    out = workflow.preview(
        app.warehouse, body.definition, now=naive_utc(body.at, "at"), sample=body.sample, sql=body.explain
    )
    note.rows = len(out.get("sample") or [])
    return out


@router.get(
    "/v1/audiences/changes",
    summary="Entries and exits recorded after an instant (oldest first)",
    **audited("audiences.changes"),
)
def audience_changes(
    app: State,
    _key: ReadKey,
    note: Audit,
    since: datetime = Query(..., description="ISO 8601 instant"),
    audience: str | None = Query(None),
) -> dict[str, Any]:
    since_naive = naive_utc(since, "since")
    assert since_naive is not None
    changes = workflow.changes(app.warehouse, since_naive, audience=audience)
    note.subject, note.rows = audience, len(changes)
    return {"changes": changes}


@router.post("/v1/audiences/refresh", summary="Refresh every audience (incremental where it can)")
def refresh_all(app: State, _key: AdminKey, full: bool = Query(False)) -> dict[str, Any]:
    return {"refreshed": workflow.refresh_audiences(app.warehouse, full=full)}


@router.get("/v1/audiences/{name}", summary="An audience: definition, versions, last refresh, size")
def show_audience(name: str, app: State, _key: ReadKey, explain: bool = Query(False)) -> dict[str, Any]:
    out = workflow.show(app.warehouse, name)
    if explain:
        out["sql"] = workflow.explain_audience(app.warehouse, name)
    return out


@router.put("/v1/audiences/{name}", summary="Change an audience's definition (a new version)")
def replace_audience(name: str, body: DefinitionIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.create(
        app.warehouse, name, body.definition, description=body.description, replace=True, evaluate=body.evaluate
    )


@router.delete("/v1/audiences/{name}", summary="Delete an audience and its membership history")
def delete_audience(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.delete(app.warehouse, name)


@router.post("/v1/audiences/{name}/refresh", summary="Refresh one audience")
def refresh_audience(name: str, app: State, _key: AdminKey, full: bool = Query(False)) -> dict[str, Any]:
    return workflow.refresh_audiences(app.warehouse, [name], full=full)[0]


@router.get(
    "/v1/audiences/{name}/members", summary="Members now, or at a past instant (?at=)", **audited("audiences.members")
)
def audience_members(
    name: str,
    app: State,
    _key: ReadKey,
    note: Audit,
    at: datetime | None = Query(None, description="ISO 8601 instant; default now"),
    limit: int = Query(100, ge=0, le=10_000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    out = workflow.members(app.warehouse, name, at=naive_utc(at, "at"), limit=limit, offset=offset)
    note.rows = len(out["members"])
    return out


@router.get("/v1/audiences/{name}/history", summary="Entries, exits and size per day")
def audience_history(name: str, app: State, _key: ReadKey, days: int = Query(30, ge=1, le=3660)) -> dict[str, Any]:
    return workflow.history(app.warehouse, name, days=days)


@router.get("/v1/audiences/{name}/export", summary="The members as CSV or JSON lines", **audited("audiences.export"))
def export_audience(
    name: str,
    app: State,
    _key: ReadKey,
    fmt: Literal["csv", "jsonl"] = Query("csv", alias="format"),
    purpose: str | None = Query(None, max_length=64, description="what the export is for; only members who consent"),
    at: datetime | None = Query(None),
) -> StreamingResponse:
    lines: Iterator[str] = workflow.export(app.warehouse, name, fmt, purpose=purpose, at=naive_utc(at, "at"))
    first = next(lines, "")  # errors (an unknown audience) surface before the response starts

    def body() -> Iterator[str]:
        yield first
        yield from lines

    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return StreamingResponse(body(), media_type=media, headers=headers)
