"""Lead scores over HTTP: definitions, explanations and band entries (read key); creating, running and
demoting (admin key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.audiences import scores
from touchpoint.warehouse.clock import naive_utc

router = APIRouter(tags=["scores"])


class ScoreIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    definition: dict[str, Any]
    description: str | None = Field(None, max_length=2000)
    replace: bool = False
    run: bool = True


class DemoteIn(BaseModel):
    to: str = Field(..., min_length=1, description="the earlier stage")
    reason: str = Field(..., min_length=1, max_length=2000)


@router.get("/v1/scores", summary="Saved lead scores")
def list_scores(app: State, _key: ReadKey) -> dict[str, Any]:
    return {"scores": scores.list_all(app.warehouse)}


@router.post("/v1/scores", summary="Save a lead score and score every profile", status_code=201)
def create_score(body: ScoreIn, app: State, _key: AdminKey) -> dict[str, Any]:
    out: dict[str, Any] = {
        "score": scores.save(
            app.warehouse, body.name, body.definition, description=body.description, replace=body.replace
        )
    }
    if body.run:
        out["run"] = scores.run(app.warehouse, body.name)
    return out


@router.get(
    "/v1/scores/entries",
    summary="Band entries after an instant (the sales hand-off's facts)",
    **audited("scores.entries"),
)
def band_entries(
    app: State,
    _key: ReadKey,
    note: Audit,
    since: datetime = Query(...),
    score: str | None = None,
    band: str | None = None,
) -> dict[str, Any]:
    naive = naive_utc(since, "since")
    entries = scores.band_entries(app.warehouse, naive, score=score, band=band)
    note.rows = len(entries)
    return {"entries": entries}


@router.get("/v1/scores/{name}", summary="A score's definition")
def show_score(name: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return scores.get(app.warehouse, name)


@router.post("/v1/scores/{name}/run", summary="Score every profile now")
def run_score(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return scores.run(app.warehouse, name)


@router.get(
    "/v1/scores/{name}/explain/{profile_id}",
    summary="Which rules gave a profile how many points",
    **audited("scores.explain"),
)
def explain_score(name: str, profile_id: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return scores.explain(app.warehouse, name, profile_id)


@router.get(
    "/v1/scores/{name}/profiles/{profile_id}",
    summary="A profile's stored points, band and stage",
    **audited("scores.read"),
)
def profile_score(name: str, profile_id: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return scores.profile_score(app.warehouse, name, profile_id)


@router.post(
    "/v1/scores/{name}/profiles/{profile_id}/demote",
    summary="Move a profile back to an earlier stage",
    **audited("scores.demote"),
)
def demote_profile(name: str, profile_id: str, body: DemoteIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return scores.demote(app.warehouse, name, profile_id, body.to, reason=body.reason)
