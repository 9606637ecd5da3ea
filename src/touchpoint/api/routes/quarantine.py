"""Read the quarantine over HTTP (read key); replaying is an admin action."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.collect import quarantine

router = APIRouter(tags=["quarantine"])


@router.get("/v1/quarantine", summary="Quarantined input, newest first", **audited("quarantine.list"))
def list_quarantine(
    app: State,
    _key: ReadKey,
    note: Audit,
    status: str = Query("quarantined", pattern="^(quarantined|replayed|all)$"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**12),
) -> dict[str, Any]:
    wanted = None if status == "all" else status
    records = quarantine.list_records(app.warehouse, status=wanted, limit=limit, offset=offset)
    note.rows = len(records)
    return {"total": quarantine.count(app.warehouse, status=wanted), "records": records}


@router.get(
    "/v1/quarantine/{record_id}", summary="One quarantine record with its raw payload", **audited("quarantine.read")
)
def show_quarantine(record_id: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return quarantine.get_record(app.warehouse, record_id)


@router.post(
    "/v1/quarantine/replay",
    summary="Validate quarantined input again and store what passes",
    **audited("quarantine.replay"),
)
def replay_quarantine(app: State, _key: AdminKey, note: Audit, ids: list[str] | None = None) -> dict[str, Any]:
    result = quarantine.replay(app.warehouse, ids, max_event_bytes=app.limits.max_event_bytes).to_dict()
    note.detail["ids"] = "all" if ids is None else len(ids)
    return result
