"""What a customer's page shows beyond the profile: lead scores, audiences and the messages received.

Each part is a library read for the profile (the same calls the API answers with: a score's explanation,
audience memberships, the automations' outbox), so the page agrees with
``/v1/scores/{name}/explain/{profile_id}``, ``/v1/audiences/{name}/members`` and
``/v1/automations/{name}/outbox``. A score's explanation needs every event of the profile resolved to it,
which takes seconds; so, like the timeline's owner index, the dashboard explains every profile once per
scores run in the background (:func:`score_index`, a snapshot section, via
:func:`touchpoint.audiences.scores.explain_all`) and the page reads its row. Without the index yet, the page
asks the library for the one profile.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.warehouse import Warehouse

MESSAGES = 50  # the latest messages shown on the page
STAYS = 100  # audience stays shown (current first)


def score_index(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Every score's explanation of every profile now (a snapshot section, recomputed after each scores run)."""
    from touchpoint.audiences import scores as library

    index = {"scores": {s["name"]: library.explain_all(wh, s["name"]) for s in library.list_all(wh)}, "tables": {}}
    _warm(wh, index)
    return index


def _warm(wh: Warehouse, index: dict[str, Any]) -> None:
    """Read one customer's page, so its reads are compiled (:meth:`Warehouse.prepared`) before a person
    opens one: the first page after a start would otherwise spend about 0.4 s compiling them."""
    from touchpoint.web.customers import profile

    p = wh.table("profiles")
    first = wh.to_arrow(p.select("profile_id").limit(1)).to_pylist()
    if first:
        with contextlib.suppress(NotFound, InvalidInput):  # a profile merged away meanwhile: the next run warms
            profile(wh, first[0]["profile_id"], None, None, index)


def scores(wh: Warehouse, profile_id: str, cached: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every lead score for the profile: why it has its points (per rule), its band and stage, as of the
    background computation (``cached``, :func:`score_index`'s answer) or, without it, now."""
    from touchpoint.audiences import scores as library

    out = []
    index = (cached or {}).get("scores") or {}
    for s in library.list_all(wh):
        stages = [stage["name"] for stage in s["definition"].get("stages", [])]
        try:
            if s["name"] in index:
                explained = library.explanation_of(index[s["name"]], profile_id)
            else:
                explained = library.explain(wh, s["name"], profile_id)
        except NotFound:  # a profile the score cannot see (built after its last run): say so, not fail
            explained = None
        stored = library.stored(wh, s["name"], profile_id)
        if explained is not None and stored:  # the stage now (a demotion since the cached run shows at once)
            explained = {**explained, "stage": stored["stage"]}
        stage = explained["stage"] if explained else None
        earlier = stages[: stages.index(stage)] if stage in stages else []
        out.append(
            {
                "name": s["name"],
                "description": s.get("description"),
                "explain": explained,
                "last_run": stored,
                "earlier_stages": earlier,
            }
        )
    return out


def audiences(wh: Warehouse, profile_id: str) -> list[dict[str, Any]]:
    """The profile's stays in audiences: current memberships first, then past ones."""
    from touchpoint.audiences.membership import of_profile

    return of_profile(wh, profile_id, limit=STAYS)


def messages(wh: Warehouse, profile_id: str) -> list[dict[str, Any]]:
    """The messages automations decided for the profile, latest first, each with its step in words."""
    from touchpoint.automations import store
    from touchpoint.automations.outbox import for_profile
    from touchpoint.errors import TouchpointError
    from touchpoint.web.marketing import _step

    rows = for_profile(wh, profile_id, limit=MESSAGES)
    flows: dict[str, Any] = {}
    for row in rows:
        name = row["automation"]
        if name not in flows:
            try:
                flows[name] = store.load(wh, name)
            except TouchpointError:  # the automation was deleted since: its messages stay on record
                flows[name] = None
        steps = flows[name].steps if flows[name] is not None else []
        row["step_text"] = _step(steps[row["step"]]) if 0 <= row["step"] < len(steps) else f"step {row['step']}"
    return rows


def parts(wh: Warehouse, profile_id: str, cached: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scores, audiences and messages of one profile, for its page (``cached``: :func:`score_index`)."""
    return {
        "scores": scores(wh, profile_id, cached),
        "audiences": audiences(wh, profile_id),
        "messages": messages(wh, profile_id),
    }


def demote(wh: Warehouse, profile_id: str, name: str, form: dict[str, str], user: str) -> dict[str, Any]:
    """Move the profile back to an earlier stage of score ``name``, with the reason the form gives."""
    from touchpoint.audiences import scores as library

    reason = form.get("reason", "").strip()
    if not reason:
        raise InvalidInput("reason: say why the lead goes back", hint="e.g. 'sales: no budget this year'")
    if len(reason) > 2000:
        raise InvalidInput("reason: longer than 2,000 characters", hint="shorten it")
    return library.demote(wh, name, profile_id, form.get("to", ""), reason=f"{reason} (by user:{user})")
