"""The audience builder: count and sample who a definition selects, then save it as an audience.

Counting is a read (any signed-in role); saving needs the analyst role, checked here on the server
after the CSRF token. Both call the same library workflow as `touchpoint audiences preview|create`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.errors import InvalidInput, TouchpointError, http_status
from touchpoint.web.pages import _audit, _checked_form, _ctx, _guard, router
from touchpoint.web.render import render

SAMPLE = 10
EXAMPLE = '{"all": [{"trait": "orders", "gte": 2}, {"prediction": "p_alive", "lt": 0.5}]}'
MAX_DEFINITION_CHARS = 20_000


def _definition(form: dict[str, str]) -> Any:
    from touchpoint.audiences.workflow import load_definition

    text = form.get("definition", "").strip()
    if not text:
        raise InvalidInput("the definition is empty", hint=f"write one in JSON, e.g. {EXAMPLE}")
    if len(text) > MAX_DEFINITION_CHARS:
        raise InvalidInput(f"the definition is longer than {MAX_DEFINITION_CHARS:,} characters", hint="shorten it")
    return load_definition(text)


def _page(request: Request, session: users.Session, builder: dict[str, Any], status: int = 200) -> Response:
    web, _ = _ctx(request)
    context = {"title": "Audiences", "entry": web.snapshot.get("audiences"), "section": "audiences"}
    return render(request, "audiences.html", {**context, "builder": builder}, session, status)


@router.post("/audiences/preview", response_class=HTMLResponse)
async def preview(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        from touchpoint.audiences.workflow import preview as count

        _, state = _ctx(request)
        form = await _checked_form(request, session)
        builder: dict[str, Any] = {"definition": form.get("definition", ""), "name": form.get("name", "")}
        try:
            definition = _definition(form)
            builder["result"] = await run_in_threadpool(lambda: count(state.warehouse, definition, sample=SAMPLE))
            await _audit(request, session, "audiences.preview", rows=len(builder["result"].get("sample") or []))
        except TouchpointError as exc:  # shown beside the definition, which stays as typed
            builder["error"] = exc
            return _page(request, session, builder, http_status(exc))
        return _page(request, session, builder)

    return await _guard(request, "viewer", work)


@router.post("/audiences/save", response_class=HTMLResponse)
async def save(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        from touchpoint.audiences.workflow import create

        web, state = _ctx(request)
        form = await _checked_form(request, session, "analyst")
        name = form.get("name", "").strip()
        builder: dict[str, Any] = {"definition": form.get("definition", ""), "name": name}
        try:
            definition = _definition(form)
            await run_in_threadpool(lambda: create(state.warehouse, name, definition))
        except TouchpointError as exc:
            builder["error"] = exc
            return _page(request, session, builder, http_status(exc))
        if web.refresher is not None:
            web.refresher.request("audiences")
        return RedirectResponse(f"/audiences?saved={quote(name)}", status_code=303)

    return await _guard(request, "viewer", work)
