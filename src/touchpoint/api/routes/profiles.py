"""Profiles over HTTP: look up by any identifier, timeline, search (read key); rebuild, update,
split and merge (admin key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.profiles import workflow
from touchpoint.profiles.lookup import get_profile, search
from touchpoint.profiles.timeline import timeline

router = APIRouter(tags=["profiles"])
_PAGING = {"limit", "offset"}


@router.get(
    "/v1/profiles", summary="Search profiles by trait: /v1/profiles?plan=pro&rfm=555", **audited("profiles.search")
)
def search_profiles(
    request: Request,
    app: State,
    _key: ReadKey,
    note: Audit,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    app.see_acknowledged()
    criteria = {k: v for k, v in request.query_params.items() if k not in _PAGING}
    found = search(app.warehouse, criteria, limit=limit, offset=offset)
    note.rows, note.detail["criteria"] = len(found["profiles"]), sorted(criteria)  # the traits, not the values
    return found


@router.get(
    "/v1/profiles/{identifier}", summary="The profile of any identifier (or profile id)", **audited("profiles.read")
)
def show_profile(
    identifier: str,
    app: State,
    _key: ReadKey,
    note: Audit,
    id_type: str | None = Query(None, alias="type", description="only match this identifier type"),
) -> dict[str, Any]:
    app.see_acknowledged()
    profile = get_profile(app.warehouse, identifier, id_type)
    note.subject, note.rows = profile["profile_id"], 1
    return profile


@router.get(
    "/v1/profiles/{identifier}/events",
    summary="The profile's events, newest first (paged)",
    **audited("profiles.events"),
)
def profile_events(
    identifier: str,
    app: State,
    _key: ReadKey,
    note: Audit,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    event_type: str | None = Query(None, alias="type"),
) -> dict[str, Any]:
    app.see_acknowledged()
    events = timeline(app.warehouse, identifier, limit=limit, offset=offset, event_type=event_type)
    note.subject, note.rows = events["profile_id"], len(events["events"])
    return events


@router.post("/v1/profiles/rebuild", summary="Resolve every event again and rebuild the profiles")
def rebuild_profiles(app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.rebuild(app.warehouse)


@router.post("/v1/profiles/update", summary="Resolve the events stored since the last run")
def update_profiles(app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.update(app.warehouse)


class SplitRequest(BaseModel):
    identifier: str = Field(..., min_length=1, description="the identifier to cut out of the profile")
    type: str | None = Field(None, description="its type, when the value is ambiguous")
    note: str | None = None


class MergeRequest(BaseModel):
    first: str = Field(..., min_length=1, description="a profile id or any identifier")
    second: str = Field(..., min_length=1)
    note: str | None = None


@router.post(
    "/v1/profiles/{profile}/split", summary="Undo a bad merge: cut one identifier out", **audited("profiles.split")
)
def split_profile(profile: str, body: SplitRequest, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.split(app.warehouse, profile, body.identifier, body.type, note=body.note)


@router.post("/v1/profiles/merge", summary="Merge two profiles", **audited("profiles.merge"))
def merge_profiles(body: MergeRequest, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.merge(app.warehouse, body.first, body.second, note=body.note)
