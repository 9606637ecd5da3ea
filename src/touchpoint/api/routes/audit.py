"""The audit log over HTTP (admin key): ``GET /v1/audit`` lists entries, ``GET /v1/audit/verify`` checks
the chain (docs/privacy.md, "Audit")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from touchpoint.api.deps import AdminKey, State
from touchpoint.privacy import audit
from touchpoint.warehouse.clock import naive_utc

router = APIRouter(tags=["audit"])


@router.get("/v1/audit", summary="Who accessed or changed personal data, newest first")
def list_audit(
    app: State,
    _key: AdminKey,
    since: datetime | None = Query(None, description="ISO 8601 instant; only entries from then on"),
    actor: str | None = Query(None, description="e.g. key:ops, user:ana, cli:ana"),
    action: str | None = Query(None, description="e.g. profiles.read"),
    subject: str | None = Query(
        None, max_length=1000, description="a profile id or name, or an identifier (matched by its pseudonym)"
    ),
    limit: int = Query(100, ge=1, le=10_000),
) -> dict[str, Any]:
    naive = naive_utc(since, "since")
    found = audit.entries(app.warehouse, since=naive, actor=actor, action=action, subject=subject, limit=limit)
    return {"entries": [e.to_dict() for e in found]}


@router.get("/v1/audit/verify", summary="Recompute the hash chain; the first edited or deleted entry, if any")
def verify_audit(app: State, _key: AdminKey) -> dict[str, Any]:
    return audit.verify(app.warehouse).to_dict()
