"""Automations over HTTP: list, show, outbox and lift (read key); create, pause, resume, replay (admin key);
and the unsubscribe endpoint an email's link and ``List-Unsubscribe`` header point at (its signed token
is the credential: no key).

``POST /v1/unsubscribe?token=...`` records the unsubscribe: the RFC 8058 one-click request a mail client
sends (body ``List-Unsubscribe=One-Click``), or the button of the page ``GET`` shows. ``GET`` only shows
that page: link scanners and mail previews fetch links, and must not unsubscribe anyone.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited, client_host
from touchpoint.automations import workflow

router = APIRouter(tags=["automations"])


class AutomationIn(BaseModel):
    definition: dict[str, Any] = Field(..., description="the definition language of docs/automations.md")
    replace: bool = False


class ReplayIn(BaseModel):
    outbox_ids: list[str] | None = Field(None, max_length=10_000)


@router.get("/v1/automations", summary="Saved automations with what they sent")
def list_automations(app: State, _key: ReadKey) -> dict[str, Any]:
    return {"automations": workflow.list_automations(app.warehouse)}


@router.post("/v1/automations", summary="Save an automation (acts on triggers from now on)", status_code=201)
def create_automation(body: AutomationIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.create(app.warehouse, body.definition, replace=body.replace)


@router.get("/v1/automations/{name}", summary="An automation: definition, watermark, entries per arm, outbox")
def show_automation(name: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return workflow.show(app.warehouse, name)


@router.post("/v1/automations/{name}/pause", summary="Stop entering contacts and sending")
def pause_automation(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.pause(app.warehouse, name)


@router.post("/v1/automations/{name}/resume", summary="Enter contacts and send again")
def resume_automation(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.resume(app.warehouse, name)


@router.get(
    "/v1/automations/{name}/outbox",
    summary="The automation's messages and their status",
    **audited("automations.outbox"),
)
def automation_outbox(
    name: str,
    app: State,
    _key: ReadKey,
    note: Audit,
    failed: bool = Query(False),
    status: str | None = Query(None),
    limit: int = Query(100, ge=1, le=10_000),
) -> dict[str, Any]:
    rows = workflow.outbox_rows(app.warehouse, automation=name, failed=failed, status=status, limit=limit)
    note.rows = len(rows)
    return {"outbox": rows}


@router.post(
    "/v1/automations/{name}/replay",
    summary="Re-queue the automation's dead-lettered messages",
    **audited("automations.replay"),
)
def replay_automation(name: str, body: ReplayIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.replay(app.warehouse, automation=name, outbox_ids=body.outbox_ids)


@router.get("/v1/automations-programme/lift", summary="The whole programme's lift: global control vs the rest")
def programme_lift(
    app: State,
    _key: ReadKey,
    goal: str | None = Query(None, max_length=200),
    within_days: int | None = Query(None, ge=1, le=366),
    engine: str = Query("sequential"),
    alpha: float = Query(0.05, gt=0, lt=1),
    relative: bool = Query(True),
) -> dict[str, Any]:
    return workflow.programme_lift(
        app.warehouse,
        app.settings,
        goal=goal,
        within_days=within_days,
        engine=engine,
        alpha=alpha,
        relative=relative,
    )


@router.get("/v1/automations/{name}/lift", summary="Goal rate of treated vs held out, with interval and SRM")
def automation_lift(
    name: str,
    app: State,
    _key: ReadKey,
    engine: str = Query("sequential"),
    alpha: float = Query(0.05, gt=0, lt=1),
    relative: bool = Query(True),
) -> dict[str, Any]:
    return workflow.lift(app.warehouse, name, engine=engine, alpha=alpha, relative=relative)


@router.get(
    "/v1/automations/{name}/runs",
    summary="Each entry's path through the flow: steps reached, branch taken, waits, outcome",
    **audited("automations.runs"),
)
def automation_runs(
    name: str,
    app: State,
    _key: ReadKey,
    note: Audit,
    profile_id: str | None = Query(None),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    out = workflow.runs(app.warehouse, name, profile_id=profile_id, limit=limit, offset=offset)
    note.rows = len(out["runs"])
    return out


@router.get("/v1/automations/{name}/split", summary="A split step's arms compared on the goal, with interval")
def automation_split(
    name: str,
    app: State,
    _key: ReadKey,
    step: int | None = Query(None),
    engine: str = Query("sequential"),
    alpha: float = Query(0.05, gt=0, lt=1),
    relative: bool = Query(True),
) -> dict[str, Any]:
    return workflow.split(app.warehouse, name, step=step, engine=engine, alpha=alpha, relative=relative)


@router.post(
    "/v1/unsubscribe",
    summary="Record an unsubscribe (RFC 8058 one-click; the token is the credential)",
    **audited("consent.unsubscribe"),
)
def unsubscribe(
    request: Request, app: State, note: Audit, token: str = Query(..., min_length=10, max_length=2000)
) -> dict[str, Any]:
    app.rates.address(client_host(request))  # a link's token is guessed by nobody, but tries cost work
    request.state.audit_actor = "link:unsubscribe"  # the signed link is the credential: whoever holds it
    out = workflow.unsubscribe(app.warehouse, app.settings, token)
    note.subject = out.get("profile_id")
    return out


@router.get("/v1/unsubscribe", summary="A page with the unsubscribe button (a GET changes nothing)")
def unsubscribe_page(token: str = Query(..., min_length=10, max_length=2000)) -> HTMLResponse:
    action = html.escape(f"/v1/unsubscribe?token={token}", quote=True)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title></head><body>"
        "<h1>Unsubscribe</h1><p>Stop receiving these messages?</p>"
        f"<form method='post' action='{action}'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form></body></html>"
    )
    return HTMLResponse(page)
