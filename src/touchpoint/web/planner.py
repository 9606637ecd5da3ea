"""The Experiments page with its planner: sample size, minimum detectable effect and duration for a metric.

The planner is a GET form (its answer is a link that can be shared). It calls the same library workflow as
``touchpoint experiment plan`` (:func:`touchpoint.experiments.workflow.plan`): units per arm for a relative
lift (``mde``), or the lift detectable with ``units`` per arm, and how long the shop's traffic takes to
bring them. It can start from a metric of an experiment already analysed: the control arm's rate (or mean
and standard deviation) becomes the baseline. A mistake is shown beside the field it concerns, named.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from touchpoint import users
from touchpoint.errors import InvalidInput, TouchpointError
from touchpoint.warehouse import Warehouse
from touchpoint.web.pages import _ctx, _guard, router
from touchpoint.web.render import render

#: The form's fields, in the order the page shows them, with their defaults (as typed).
FIELDS: dict[str, str] = {
    "metric": "",
    "baseline": "",
    "sd": "",
    "mde": "",
    "units": "",
    "alpha": "0.05",
    "power": "0.8",
    "ratio": "1",
    "event": "",
    "share": "1",
}
NUMBERS = ("baseline", "sd", "mde", "units", "alpha", "power", "ratio", "share")
MAX_CHARS = 200


def _invalid(field: str, message: str, *, hint: str | None = None) -> InvalidInput:
    """A planner input that cannot be used, naming its form field."""
    return InvalidInput(f"{field}: {message}", hint=hint, field=field)


def _field_of(message: str) -> str:
    """The form field a library message is about: the first field name it mentions."""
    found = [(m.start(), name) for name in NUMBERS for m in [re.search(rf"\b{name}\b|--{name}\b", message)] if m]
    return min(found)[1] if found else "baseline"


def parse(params: dict[str, str], metrics: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, Any]]:
    """The form as typed (defaults filled in) and the workflow's arguments; raises an InvalidInput naming the field.

    A chosen ``metric`` fills the baseline (and for a mean metric the sd) when they are left empty.

    >>> _, args = parse({"baseline": "0.1", "mde": "0.05"}, [])
    >>> args["baseline"], args["mde"], args["units"], args["alpha"]
    (0.1, 0.05, None, 0.05)
    >>> parse({"baseline": "ten", "mde": "0.05"}, [])
    Traceback (most recent call last):
    ...
    touchpoint.errors.InvalidInput: baseline: 'ten' is not a number (write it with a dot, e.g. 0.05)
    """
    form = {name: str(params.get(name, default)).strip()[:MAX_CHARS] for name, default in FIELDS.items()}
    if form["metric"]:
        chosen = next((m for m in metrics if m["id"] == form["metric"]), None)
        if chosen is None:
            raise _invalid("metric", f"{form['metric']!r} is not a metric of an analysed experiment")
        if not form["baseline"]:
            form["baseline"] = f"{chosen['baseline']:.6g}"
            if chosen["sd"] is not None and not form["sd"]:
                form["sd"] = f"{chosen['sd']:.6g}"
    args: dict[str, Any] = {}
    for name in NUMBERS:
        text = form[name]
        if not text:
            args[name] = None
            continue
        try:
            value = float(text)
        except ValueError:
            raise _invalid(name, f"{text!r} is not a number", hint="write it with a dot, e.g. 0.05") from None
        if not math.isfinite(value):
            raise _invalid(name, f"{text!r} is not a finite number")
        args[name] = value
    if args["baseline"] is None:
        raise _invalid("baseline", "is required", hint="the control's conversion rate (e.g. 0.03) or mean")
    if (args["mde"] is None) == (args["units"] is None):
        raise _invalid("mde", "give either the lift to detect (for a sample size) or the units per arm (for the lift)")
    for name, default in (("alpha", 0.05), ("power", 0.8), ("ratio", 1.0), ("share", 1.0)):
        if args[name] is None:
            args[name] = default
    if args["units"] is not None and args["units"] < 2:
        raise _invalid("units", f"{form['units']} must be at least 2 units per arm")
    args["event"] = form["event"] or None
    return form, args


def plan(
    wh: Warehouse, params: dict[str, str], metrics: list[dict[str, Any]], traffic: list[int] | None = None
) -> dict[str, Any]:
    """The planner's answer for a page: ``{"form", "result"}``, or ``{"form", "error", "field"}``.

    ``traffic``: the distinct units by day of any event, counted by the Experiments section in the
    background; without an audience event the duration comes from it (no query on the request)."""
    from touchpoint.experiments import workflow

    form = {name: str(params.get(name, default)).strip()[:MAX_CHARS] for name, default in FIELDS.items()}
    try:
        form, args = parse(params, metrics)
        baseline = args.pop("baseline")
        cached = traffic if args["event"] is None else None
        result, _ = workflow.plan(wh, baseline, traffic=cached, **args)
    except TouchpointError as exc:  # the form's own check names its field; the library's, in its words
        return {"form": form, "error": exc, "field": getattr(exc, "field", None) or _field_of(exc.message)}
    return {"form": form, "result": result}


@router.get("/experiments", response_class=HTMLResponse)
async def experiments(request: Request) -> Response:
    async def work(session: users.Session) -> Response:
        web, state = _ctx(request)
        entry = web.snapshot.get("experiments")
        data = (entry.data or {}) if entry is not None else {}
        metrics, traffic = data.get("metrics") or [], data.get("traffic")
        params = dict(request.query_params)
        planner: dict[str, Any] = {"form": dict(FIELDS), "metrics": metrics}
        status = 200
        if any(params.get(name) for name in FIELDS):
            planner |= await run_in_threadpool(plan, state.warehouse, params, metrics, traffic)
            status = 400 if "error" in planner else 200
        context = {"title": "Experiments", "entry": entry, "section": "experiments", "planner": planner}
        return render(request, "experiments.html", context, session, status)

    return await _guard(request, "viewer", work)
