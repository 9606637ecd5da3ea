"""The dashboard's routes: sign-in, the pages, CSV downloads, and the few actions (replay, users).

Every route is thin: it checks who is asking (auth.py), reads the cached section (snapshot.py) or runs
one quick library read, and renders a template. Actions are POST forms with the session's CSRF token,
checked on the server for the role they need.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.errors import (
    InvalidInput,
    NotConverged,
    NotFound,
    RateLimited,
    TooManyAttempts,
    TouchpointError,
    http_status,
)
from touchpoint.jobs.runner import quick
from touchpoint.web import auth
from touchpoint.web.render import WebApp, render
from touchpoint.web.snapshot import Refresher

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"style.css": "text/css"}
MAX_FORM_BYTES = 64 * 1024


#: The dashboard sections a job's run may change: refreshed as soon as the job has run.
SECTIONS_BY_JOB = {
    "profiles": ("owners", "overview"),
    "sessions": ("journeys",),
    "attribution": ("journeys",),
    "experiments": ("experiments", "plan"),
    "predictions": ("overview", "owners", "plan"),
    "mmm": ("mmm", "overview"),
    "audiences": ("audiences",),
    "scores": ("audiences", "scores"),
    "automations": ("automations",),
    "deliveries": ("automations",),
    "flows": ("automations",),
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan (after the warehouse is open): start the refresher, stop it first.
    When the server runs jobs, a job's successful run asks for the sections it changes at once."""
    web = WebApp.of(app)
    state = app.state.touchpoint
    refresher = web.refresher = Refresher(web.snapshot, state.warehouse, state.settings.data_dir).start()
    runner = getattr(state, "runner", None)
    if runner is not None:

        def job_ran(job: Any, run: Any) -> None:
            if run.status == "succeeded" and job.name in SECTIONS_BY_JOB:
                # a job due every few seconds (profiles, automations, deliveries) marks its sections stale, to be
                # recomputed when their min_age allows: not after each of its runs in a burst of events
                refresher.request(*SECTIONS_BY_JOB[job.name], soft=quick(job))

        runner.listeners.append(job_ran)
    try:
        yield
    finally:
        web.refresher.stop()


router = APIRouter(include_in_schema=False, lifespan=lifespan)


def _ctx(request: Request) -> tuple[WebApp, Any]:
    return WebApp.of(request.app), request.app.state.touchpoint


async def _audit(
    request: Request, session: users.Session, action: str, subject: str | None = None, rows: int | None = None
) -> None:
    """Record a page's access to personal data (or a user change) as ``user:<name>`` (docs/privacy.md, Audit)."""
    from touchpoint.privacy import audit

    _, state = _ctx(request)
    actor = f"user:{session.user_name}"
    await run_in_threadpool(
        partial(audit.record, state.warehouse, actor=actor, surface="web", action=action, subject=subject, rows=rows)
    )


def _session(request: Request) -> tuple[str, users.Session]:
    web, state = _ctx(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    found = web.auth.session(state.warehouse, token) if token else None
    if token is None or found is None:
        raise auth.SignInRequired()
    return token, found


def _next_path(value: str | None) -> str:
    """Only a local path may be the target after sign-in (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form (the only kind the pages send), at most 64 KB; the last value of each field.

    An empty body is an empty form, so a POST without fields is refused for its missing CSRF token (403).
    """
    body = await request.body()
    if not body:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidInput("forms must be sent as application/x-www-form-urlencoded", hint="use the page's form")
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("the form is too large", hint="send at most 64 KB")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


async def _checked_form(request: Request, session: users.Session, role: str | None = None) -> dict[str, str]:
    """The form of a signed-in POST, after its CSRF token and (``role``) the session's role are checked."""
    form = await _form(request)
    auth.check_csrf(session.csrf_token, form.get("csrf"))
    if role is not None:
        auth.require_role(session, role)
    return form


def _error_page(request: Request, exc: TouchpointError, session: users.Session | None) -> Response:
    status = http_status(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts | RateLimited) else None
    return render(request, "error.html", {"title": "Error", "error": exc, "status": status}, session, status, headers)


async def _guard(request: Request, needed: str, work: Any) -> Response:
    """Run a page: signed-out means a redirect to sign-in; a library error becomes an error page.

    The answer carries ``Server-Timing: app;dur=<ms>``, the server's time for it (``bench/dashboard.py``).
    """
    started = time.perf_counter()
    response = await _run(request, needed, work)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


async def _run(request: Request, needed: str, work: Any) -> Response:
    try:
        _, session = await run_in_threadpool(_session, request)
    except auth.SignInRequired:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
    try:
        auth.require_role(session, needed)
        result: Response = await work(session)
        return result
    except TouchpointError as exc:
        return _error_page(request, exc, session)


# -- sign-in ---------------------------------------------------------------------------------------------
@router.get("/signin")
async def signin_page(request: Request) -> Response:
    return _signin_form(request, None, 200)


def _signin_form(request: Request, error: str | None, status: int, headers: dict[str, str] | None = None) -> Response:
    _, state = _ctx(request)
    token = auth.new_signin_token()
    context = {
        "title": "Sign in",
        "signin_token": token,
        "error": error,
        "next": _next_path(request.query_params.get("next")),
    }
    response = render(request, "signin.html", context, None, status, headers)
    response.set_cookie(
        auth.SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=auth.secure(request, state.settings),
        max_age=3600,
        path="/signin",
    )
    return response


@router.post("/signin")
async def signin(request: Request) -> Response:
    web, state = _ctx(request)
    try:
        form = await _form(request)
        auth.check_csrf(request.cookies.get(auth.SIGNIN_COOKIE), form.get("csrf"))
    except TouchpointError as exc:
        return _error_page(request, exc, None)
    try:
        state.rates.address(auth.client_address(request))  # every try, failed or not (brute force)
        web.auth.limit.configure(state.settings)
        token, _ = await run_in_threadpool(
            auth.sign_in,
            state.warehouse,
            web.auth,
            auth.client_address(request),
            form.get("username", ""),
            form.get("password", ""),
        )
    except (TooManyAttempts, RateLimited) as exc:
        return _signin_form(request, f"{exc.message} ({exc.hint})", 429, {"Retry-After": str(exc.retry_after)})
    except TouchpointError as exc:
        return _signin_form(request, exc.message, 401)
    response = RedirectResponse(_next_path(form.get("next")), status_code=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=auth.secure(request, state.settings),
        max_age=int(users.SESSION_HOURS * 3600),
        path="/",
    )
    response.delete_cookie(auth.SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        web, state = _ctx(request)
        await _checked_form(request, session)
        token = request.cookies.get(auth.SESSION_COOKIE, "")
        await run_in_threadpool(users.end_session, state.warehouse, token)
        web.auth.forget(token)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    return await _guard(request, "viewer", work)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"})


# -- pages reading the snapshot ----------------------------------------------------------------------------
def _section_page(path: str, section: str, template: str, title: str) -> None:
    async def page(request: Request) -> Response:
        async def work(session: users.Session) -> Response:
            web, _ = _ctx(request)
            entry = web.snapshot.get(section)
            return render(request, template, {"title": title, "entry": entry, "section": section}, session)

        return await _guard(request, "viewer", work)

    page.__name__ = f"page_{section}"
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)


_section_page("/", "overview", "overview.html", "Overview")
_section_page("/journeys", "journeys", "journeys.html", "Journeys")
_section_page("/mmm", "mmm", "mmm.html", "Marketing mix")
_section_page("/audiences", "audiences", "audiences.html", "Audiences")
_section_page("/automations", "automations", "automations.html", "Automations")
_section_page("/plan", "plan", "plan.html", "Plan and KPIs")


@router.get("/csv/{section}/{name}.csv")
async def csv_download(request: Request, section: str, name: str) -> Response:
    async def work(session: users.Session) -> Response:
        web, _ = _ctx(request)
        entry = web.snapshot.get(section)
        tables = (entry.data or {}).get("tables", {}) if entry is not None else {}
        if name not in tables:
            raise NotFound(f"no table {name!r} in {section!r}", hint="the page lists its downloads")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(tables[name]["columns"])
        writer.writerows([_cell(v) for v in row] for row in tables[name]["rows"])
        headers = {"Content-Disposition": f'attachment; filename="{section}-{name}.csv"'}
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    return await _guard(request, "viewer", work)


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@router.get("/mmm/case.pdf")
async def case_pdf(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        path = Path(state.settings.data_dir) / "mmm" / "case.pdf"
        if not path.exists():
            raise NotFound("no investment case yet", hint="run `touchpoint mmm case` (the demo writes one)")
        fit = path.parent / "fit.json"
        if fit.exists() and not json.loads(fit.read_text()).get("reliable", False):
            raise NotConverged(
                "the marketing-mix model behind this case failed its diagnostics, so its case is not offered",
                hint="see the Marketing mix page for why; refit, then rebuild the case",
            )
        headers = {"Content-Disposition": 'attachment; filename="investment-case.pdf"'}
        return FileResponse(path, media_type="application/pdf", headers=headers)

    return await _guard(request, "viewer", work)
