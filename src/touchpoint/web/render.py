"""Rendering: the Jinja2 environment (templates shipped in this package), filters, security headers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from touchpoint import __version__, users
from touchpoint.web import charts, marketing
from touchpoint.web.auth import Auth
from touchpoint.web.nav import PAGES
from touchpoint.web.profile_parts import score_index
from touchpoint.web.sections import data_sources, experiments, journeys, mmm, overview
from touchpoint.web.snapshot import Refresher, Section, Snapshot
from touchpoint.web.timeline import owners

TEMPLATES = Path(__file__).parent / "templates"
DASH = "\u2013"  # shown for a missing or non-finite number
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: The cached sections and the inputs each depends on (see snapshot.inputs), in the order a refresh computes
#: them (quick ones first); sections fed by the event log wait at least ``min_age`` seconds between runs.
SECTIONS: dict[str, Section] = {
    s.name: s
    for s in (
        Section("data", data_sources, ("events", "quarantine"), min_age=30),
        Section("mmm", mmm, ("mmm",)),
        Section("owners", owners, ("events", "profiles"), min_age=60),
        Section("scores", score_index, ("audiences", "profiles"), min_age=60),
        Section("overview", overview, ("events", "spend", "predictions", "mmm", "profiles"), min_age=300),
        Section("experiments", experiments, ("events", "experiments"), min_age=300),
        Section("journeys", journeys, ("events", "profiles"), min_age=300),
        Section("audiences", marketing.audiences, ("audiences",), min_age=30),
        Section("automations", marketing.automations, ("automations", "events"), min_age=60),
        Section("plan", marketing.plan, ("predictions", "plans", "events"), min_age=300),
    )
}


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def _cell(value: Any) -> str:
    """A table cell: floats with sensible precision, everything else as text."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"
    return _num(value)


def _heat_class(value: Any) -> str:
    if not isinstance(value, float | int) or isinstance(value, bool):
        return ""
    return f"h{max(0, min(10, round(float(value) * 10)))}"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False)
    env.filters.update(num=_num, pct=_pct, cell=_cell, heat=_heat_class)
    env.globals.update(charts=charts, version=__version__)
    return env


@dataclass
class WebApp:
    """The dashboard's per-app state: templates, sign-in state, the snapshot and its refresher."""

    env: Environment = field(default_factory=environment)
    auth: Auth = field(default_factory=Auth)
    snapshot: Snapshot = field(default_factory=lambda: Snapshot(SECTIONS))
    refresher: Refresher | None = None

    @classmethod
    def of(cls, app: FastAPI) -> WebApp:
        web = getattr(app.state, "touchpoint_web", None)
        if web is None:
            web = app.state.touchpoint_web = cls()
        return web


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    session: users.Session | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    web = WebApp.of(request.app)
    nav = [p for p in PAGES if session is not None and users.allows(session.role, p.role)]
    page = web.env.get_template(template).render(
        request=request,
        session=session,
        nav=nav,
        path=request.url.path,
        csrf=session.csrf_token if session else "",
        can=(lambda role: session is not None and users.allows(session.role, role)),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={**HEADERS, **(headers or {})})
