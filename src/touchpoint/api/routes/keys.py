"""Sources' write keys and API keys over HTTP (admin key): list, rotate with a grace period, revoke.

While ``touchpoint serve`` runs it holds the warehouse, so these are how a key is rotated or revoked
without stopping the server. The server forgets its cached answers for that name at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from touchpoint import keys
from touchpoint.api.deps import AdminKey, AppState, State, audited

router = APIRouter(tags=["keys"])

GRACE = Query("24h", description="how long the old key keeps working: e.g. 30m, 24h, 7d; 0 stops it now (max 90d)")


def _rotate(app: AppState, kind: str, name: str, grace: str, field: str) -> dict[str, Any]:
    new_key, info = keys.rotate(app.warehouse, kind, name, grace=keys.parse_grace(grace))
    app.forget(kind, name)
    return {**info.to_dict(), field: new_key}


def _revoke(app: AppState, kind: str, name: str) -> dict[str, Any]:
    info = keys.revoke(app.warehouse, kind, name)
    app.forget(kind, name)
    return info.to_dict()


@router.get("/v1/sources", summary="Sources: write key prefixes, status, last use (never the keys)")
def list_sources(app: State, _key: AdminKey) -> dict[str, Any]:
    return {"sources": [i.to_dict() for i in keys.list_sources(app.warehouse)]}


@router.post(
    "/v1/sources/{name}/rotate",
    summary="A new write key; the old one works for the grace period",
    **audited("sources.rotate"),
)
def rotate_source(name: str, app: State, _key: AdminKey, grace: str = GRACE) -> dict[str, Any]:
    return _rotate(app, "sources", name, grace, "write_key")


@router.post("/v1/sources/{name}/revoke", summary="Stop every write key of a source now", **audited("sources.revoke"))
def revoke_source(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return _revoke(app, "sources", name)


@router.get("/v1/keys", summary="API keys: scopes, prefixes, status, last use (never the keys)")
def list_api_keys(app: State, _key: AdminKey) -> dict[str, Any]:
    return {"keys": [i.to_dict() for i in keys.list_api_keys(app.warehouse)]}


@router.post(
    "/v1/keys/{name}/rotate",
    summary="A new API key with the same scope; the old one works for the grace",
    **audited("keys.rotate"),
)
def rotate_api_key(name: str, app: State, _key: AdminKey, grace: str = GRACE) -> dict[str, Any]:
    return _rotate(app, "api_keys", name, grace, "key")


@router.post("/v1/keys/{name}/revoke", summary="Stop an API key now", **audited("keys.revoke"))
def revoke_api_key(name: str, app: State, _key: AdminKey) -> dict[str, Any]:
    return _revoke(app, "api_keys", name)
