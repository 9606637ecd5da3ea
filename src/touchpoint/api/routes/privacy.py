"""Privacy requests over HTTP (admin key): a person's access export, and their erasure (docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from touchpoint.api.deps import AdminKey, Audit, State, audited, credentials
from touchpoint.privacy import audit
from touchpoint.privacy import erase as privacy_erase
from touchpoint.privacy import export as privacy_export

router = APIRouter(tags=["privacy"])


def _actor(request: Request, app: Any) -> str:
    from touchpoint import keys

    key, _ = credentials(request)
    found = keys.match_key(app.warehouse, "api_keys", key) if key else None
    return f"api:{found.name}" if found is not None else "api"


def _export(app: Any, identifier: str, fmt: str, note: Any) -> Response:
    note.subject = audit.pseudonym(app.warehouse, identifier)
    doc = privacy_export.export(app.warehouse, identifier, settings=app.settings)
    note.rows = sum(t["count"] for t in doc["tables"].values())
    body = privacy_export.render(doc, fmt)
    media = "application/json" if fmt == "json" else "application/zip"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="export.{fmt}"'})


@router.get(
    "/v1/privacy/export",
    summary="Everything held about a person (any identifier of theirs), as JSON or a ZIP",
    response_class=Response,
    **audited("privacy.export"),
)
def export_person(
    app: State,
    _key: AdminKey,
    note: Audit,
    identifier: str = Query(
        ..., min_length=1, max_length=1000, description="a user id, anonymous id, email or profile id"
    ),
    fmt: str = Query("json", alias="format", pattern="^(json|zip)$", description="json or zip"),
) -> Response:
    return _export(app, identifier, fmt, note)


class ExportRequest(BaseModel):
    identifier: str = Field(..., min_length=1, max_length=1000, description="any identifier of the person")
    format: str = Field("json", pattern="^(json|zip)$", description="json or zip")


@router.post(
    "/v1/privacy/export",
    summary="The same export, the identifier in the body (kept out of proxies' URL logs)",
    response_class=Response,
    **audited("privacy.export"),
)
def export_person_post(body: ExportRequest, app: State, _key: AdminKey, note: Audit) -> Response:
    return _export(app, body.identifier, body.format, note)


class EraseRequest(BaseModel):
    identifier: str = Field(..., min_length=1, max_length=1000, description="any identifier of the person")


@router.post(
    "/v1/privacy/erase",
    summary="Erase a person: rows, files and bytes; their future events are dropped",
    **audited("privacy.erase"),
)
def erase_person(body: EraseRequest, request: Request, app: State, _key: AdminKey, note: Audit) -> dict[str, Any]:
    note.subject = audit.pseudonym(app.warehouse, body.identifier)
    app.require_acknowledged()  # with the collector log: what was acknowledged before is loaded, then erased
    out = privacy_erase.erase(
        app.warehouse,
        body.identifier,
        actor=_actor(request, app),
        data_dir=Path(app.settings.data_dir).expanduser(),
        collector=app.committer,
    )
    note.rows = sum(out["deleted"].values())
    note.detail = {"erasure_id": out["erasure_id"]}
    return out


@router.get(
    "/v1/privacy/erasures",
    summary="Erasure requests: who, when, rows deleted, events dropped since",
    **audited("privacy.erasures"),
)
def list_erasures(app: State, _key: AdminKey, limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    return privacy_erase.erasures(app.warehouse, limit)
