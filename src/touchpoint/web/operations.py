"""Data and users: sources and their volume, the jobs and how fresh each derived table is, the quarantine
(inspect, replay), privacy requests, and user management.

Replaying needs the analyst role; managing users needs admin. Both are checked here, on the server,
for every POST, after the CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.collect import quarantine
from touchpoint.errors import InvalidInput
from touchpoint.privacy import erase as privacy_erase
from touchpoint.web.pages import _audit, _checked_form, _ctx, _guard, router
from touchpoint.web.render import WebApp, render

PAGE = 50


def _quarantine(wh: Any, status: str) -> dict[str, Any]:
    wanted = None if status == "all" else status
    return {
        "total": quarantine.count(wh, status=wanted),
        "records": quarantine.list_records(wh, status=wanted, limit=PAGE),
        "status": status,
    }


def _jobs(state: Any) -> dict[str, Any]:
    """Each job's state and each derived table's staleness, as `touchpoint jobs list` shows them."""
    from touchpoint.jobs.status import overview

    return overview(state.warehouse, state.settings, runner=getattr(state, "runner", None))


@router.get("/data", response_class=HTMLResponse)
async def data(request: Request, status: str = "quarantined") -> Response:
    async def work(session: users.Session) -> Response:
        web, state = _ctx(request)
        if status not in ("quarantined", "replayed", "all"):
            raise InvalidInput(f"status {status!r} is not one of quarantined, replayed, all")
        q = await run_in_threadpool(_quarantine, state.warehouse, status)
        await _audit(request, session, "quarantine.list", rows=len(q["records"]))
        jobs = await run_in_threadpool(_jobs, state)
        context: dict[str, Any] = {"title": "Data", "entry": web.snapshot.get("data"), "section": "data"}
        context |= {"quarantine": q, "jobs": jobs}
        if users.allows(session.role, "admin"):  # who asked for an erasure is for admins
            context["erasures"] = await run_in_threadpool(privacy_erase.erasures, state.warehouse, PAGE)
        return render(request, "data.html", context, session)

    return await _guard(request, "viewer", work)


@router.get("/data/quarantine/{record_id}", response_class=HTMLResponse)
async def quarantine_record(request: Request, record_id: str) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        record = await run_in_threadpool(quarantine.get_record, state.warehouse, record_id)
        await _audit(request, session, "quarantine.read", record_id, 1)
        return render(request, "quarantine.html", {"title": f"Quarantine {record_id}", "record": record}, session)

    return await _guard(request, "viewer", work)


def _replayed(web: WebApp) -> None:
    if web.refresher is not None:
        web.refresher.request("data", "overview")


@router.post("/data/quarantine/replay", response_class=HTMLResponse)
async def replay(request: Request) -> Response:
    """Replay one record (``id``, optionally with a corrected ``payload``) or every quarantined one (``all``)."""

    async def work(session: users.Session) -> Response:
        web, state = _ctx(request)
        form = await _checked_form(request, session, "analyst")
        record_id = form.get("id") or None
        if record_id is None and form.get("all") != "1":
            raise InvalidInput("say which record to replay", hint="use the Replay button of a record, or Replay all")
        payload = form.get("payload") or None
        result = await run_in_threadpool(
            lambda: quarantine.replay(
                state.warehouse,
                [record_id] if record_id else None,
                payload_override=payload.encode() if payload and record_id else None,
                max_event_bytes=state.settings.max_event_bytes,
            )
        )
        await _audit(request, session, "quarantine.replay", record_id, len(result.replayed))
        _replayed(web)
        context = {"title": "Replay", "result": result.to_dict(), "record_id": record_id}
        return render(request, "replayed.html", context, session)

    return await _guard(request, "analyst", work)


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        found = await run_in_threadpool(users.list_users, state.warehouse)
        context = {
            "title": "Users",
            "users": found,
            "roles": users.ROLES,
            "created": request.query_params.get("created"),
        }
        return render(request, "users.html", context, session)

    return await _guard(request, "admin", work)


@router.post("/users", response_class=HTMLResponse)
async def create_user(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        form = await _checked_form(request, session, "admin")
        name = form.get("name", "").strip()
        await run_in_threadpool(
            users.create_user, state.warehouse, name, form.get("password", ""), form.get("role", "viewer")
        )
        await _audit(request, session, "users.create", name)
        return RedirectResponse(f"/users?created={name}", status_code=303)

    return await _guard(request, "admin", work)


@router.post("/users/{name}/disable", response_class=HTMLResponse)
async def disable_user(request: Request, name: str) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        await _checked_form(request, session, "admin")
        await run_in_threadpool(users.disable_user, state.warehouse, name)
        await _audit(request, session, "users.disable", name)
        return RedirectResponse("/users", status_code=303)

    return await _guard(request, "admin", work)
