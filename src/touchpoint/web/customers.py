"""Customers: search by any identifier or trait, and one customer's profile page, with their consent.

The search box takes an identifier (user id, email, anonymous id, phone, profile id: it opens that
profile), ``trait=value`` pairs (``plan=pro rfm=555``: every pair must match), or the start of an
identifier or a trait value (a list of matches). Empty, it lists the customers with the highest CLV.

The page also shows the customer's lead scores with why (an admin moves a lead back to an earlier stage:
``POST /customers/{profile_id}/scores/{name}/demote``, CSRF checked, audited as ``scores.demote``), the
audiences they are in and were in, and the messages automations sent them (profile_parts.py).

The profile page shows the consent per purpose (granted or not, stated or by default, its source and since
when) and its history; an admin changes it with a form (``POST /customers/{profile_id}/consent``, CSRF
checked), recorded like the API's (:func:`touchpoint.privacy.consent.set_consent`) with source
``dashboard``, the user as actor and proof, and audited as ``consent.set``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.errors import InvalidInput, NotFound, TouchpointError
from touchpoint.warehouse import Warehouse
from touchpoint.web.marketing import clv_failed
from touchpoint.web.pages import _audit, _checked_form, _ctx, _guard, router
from touchpoint.web.profile_parts import demote, parts
from touchpoint.web.render import render
from touchpoint.web.timeline import timeline

if TYPE_CHECKING:
    import ibis.expr.types as ir

LIMIT = 25
TIMELINE = 50
HISTORY = 20  # consent history rows shown on the profile page
CONSENT_ROLE = "admin"  # the role that changes consent, as the API's admin scope does
DEMOTE_ROLE = "admin"  # the role that moves a lead back a stage, as the API's admin key does
_PAIR = re.compile(r"([A-Za-z0-9_.$-]+)=(\S*)")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(wh: Warehouse, q: str) -> dict[str, Any]:
    """``{"redirect": profile_id}`` for an exact identifier, else ``{"rows": [...], "how": ...}``."""
    from touchpoint.identity import store as store_identity
    from touchpoint.identity.lookup import find_profile
    from touchpoint.predict import store
    from touchpoint.profiles.lookup import search as by_traits

    q = q.strip()
    if not q:
        top = store.top_customers(wh, by="clv", limit=LIMIT)
        rows = [{"profile_id": r["customer_id"], "clv": r["clv"], "p_alive": r["p_alive"]} for r in top["rows"]]
        return {"how": "highest predicted CLV", "rows": rows, "total": top["total"]}
    store_identity.require_resolved(wh)
    if len(q) > 500:
        raise InvalidInput("the search is longer than 500 characters", hint="search for one identifier or trait")
    pairs = _PAIR.findall(q)
    if pairs and "".join(f"{k}={v}" for k, v in pairs) == "".join(q.split()):
        found = by_traits(wh, dict(pairs), limit=LIMIT)
        return {
            "how": "traits " + ", ".join(f"{k} = {v}" for k, v in pairs),
            "rows": found["profiles"],
            "total": found["total"],
        }
    try:
        return {"redirect": find_profile(wh, q)["profile_id"]}
    except NotFound:
        pass
    text = _escape_like(q.lower())
    rows = wh.prepared(_matching, text + "%", "%" + text + "%").to_pylist()
    return {"how": f"identifiers starting with, or traits containing, {q!r}", "rows": rows, "total": len(rows)}


def _matching(wh: Warehouse, prefix: str, infix: str) -> ir.Table:
    """Identifiers like ``prefix`` and trait values like ``infix`` (lower-cased LIKE patterns)."""
    from touchpoint.identity import tables

    nodes = wh.table(tables.NODES)
    ids = nodes.filter(nodes.id_value.lower().like(prefix)).select("profile_id", "id_type", "id_value").limit(LIMIT)
    traits = wh.table("profile_traits")
    tv = traits.filter(traits.value.lower().like(infix))
    tv = tv.select("profile_id", id_type=traits.trait, id_value=traits.value).limit(LIMIT)
    return ids.union(tv).limit(LIMIT)


@router.get("/customers", response_class=HTMLResponse)
async def customers(request: Request, q: str = "") -> Response:
    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        try:
            found = await run_in_threadpool(search, state.warehouse, q)
        except TouchpointError as exc:
            found = {"error": exc, "rows": []}
        shown = 1 if "redirect" in found else len(found.get("rows") or [])
        await _audit(request, session, "profiles.search", rows=shown)  # not the words searched for
        if "redirect" in found:
            return RedirectResponse(f"/customers/{found['redirect']}", status_code=303)
        return render(request, "customers.html", {"title": "Customers", "q": q, "found": found}, session)

    return await _guard(request, "viewer", work)


def profile(
    wh: Warehouse,
    profile_id: str,
    owners: dict[str, Any] | None = None,
    settings: Any = None,
    scores: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The profile with its identities and traits, its predictions, its consent, its lead scores, audiences and
    messages received (profile_parts.py), and its latest events."""
    from touchpoint.predict import store
    from touchpoint.privacy import consent
    from touchpoint.profiles.lookup import get_profile

    found = get_profile(wh, profile_id, provisional=False)
    try:
        predicted = store.customer_predictions(wh, found["profile_id"])
    except NotFound:
        predicted = {}
    stated = consent.show(wh, found["profile_id"], settings=settings)
    stated["total"] = len(stated["history"])
    stated["history"] = stated["history"][:HISTORY]
    events = timeline(wh, found["profile_id"], owners, limit=TIMELINE)
    return {
        "profile": found,
        "predicted": predicted,
        "clv_failed": clv_failed(wh) if predicted.get("clv") else None,
        "consent": stated,
        "timeline": events,
        **parts(wh, found["profile_id"], scores),
    }


def change_consent(wh: Warehouse, profile_id: str, form: dict[str, str], user: str, settings: Any = None) -> str:
    """Record the consent form's decision for the profile (source ``dashboard``); returns the purpose."""
    from touchpoint.privacy import consent

    decision = form.get("granted")
    if decision not in ("true", "false"):
        raise InvalidInput(f"granted: {decision!r} is not true or false", hint="use the Grant or Deny button")
    purpose = form.get("purpose", "")
    at = consent.now()
    consent.set_consent(
        wh,
        profile_id,
        [purpose],
        decision == "true",
        source="dashboard",
        actor=f"user:{user}",
        proof=f"user:{user} at {at.isoformat()}",  # who, and a distinct statement each time
        settings=settings,
    )
    return purpose


@router.get("/customers/{profile_id}", response_class=HTMLResponse)
async def customer(request: Request, profile_id: str) -> Response:
    async def work(session: users.Session) -> Response:
        web, state = _ctx(request)
        owners, scores = web.snapshot.get("owners"), web.snapshot.get("scores")
        data = await run_in_threadpool(
            profile,
            state.warehouse,
            profile_id,
            owners.data if owners else None,
            state.settings,
            scores.data if scores else None,
        )
        await _audit(request, session, "profiles.read", data["profile"]["profile_id"], 1)
        if data["profile"]["profile_id"] != profile_id:  # merged away: show it under its current id
            return RedirectResponse(f"/customers/{data['profile']['profile_id']}", status_code=303)
        title = data["profile"]["computed"].get("email") or data["profile"]["computed"].get("user_id") or profile_id
        return render(request, "profile.html", {"title": f"Customer {title}", **data}, session)

    return await _guard(request, "viewer", work)


@router.post("/customers/{profile_id}/consent", response_class=HTMLResponse)
async def set_customer_consent(request: Request, profile_id: str) -> Response:
    """Grant or deny one purpose for the customer (admin), then back to their page."""

    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        form = await _checked_form(request, session, CONSENT_ROLE)
        purpose = await run_in_threadpool(
            change_consent, state.warehouse, profile_id, form, session.user_name, state.settings
        )
        await _audit(request, session, "consent.set", profile_id, 1)
        return RedirectResponse(f"/customers/{profile_id}?consent={purpose}#consent", status_code=303)

    return await _guard(request, CONSENT_ROLE, work)


@router.post("/customers/{profile_id}/scores/{name}/demote", response_class=HTMLResponse)
async def demote_lead(request: Request, profile_id: str, name: str) -> Response:
    """Move a lead back to an earlier stage of a score (admin), then back to the customer's page."""

    async def work(session: users.Session) -> Response:
        _, state = _ctx(request)
        form = await _checked_form(request, session, DEMOTE_ROLE)
        out = await run_in_threadpool(demote, state.warehouse, profile_id, name, form, session.user_name)
        await _audit(request, session, "scores.demote", profile_id, 1)
        return RedirectResponse(f"/customers/{profile_id}?demoted={quote(out['stage'])}#scores", status_code=303)

    return await _guard(request, DEMOTE_ROLE, work)
