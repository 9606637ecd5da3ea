"""The Segment-compatible tracking API: ``/v1/identify|track|page|screen|group|alias|batch``.

Unmodified Segment client libraries work against it: the same paths (and analytics.js's short
ones), the same auth (write key as HTTP Basic username, ``writeKey`` in the body, or Bearer),
the same limits. A 200 means the events are committed to the warehouse.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from touchpoint.api.deps import AppState, client_host, credentials, state
from touchpoint.api.errors import error_response
from touchpoint.api.memory import Reservation
from touchpoint.collect.body import decompress, rows_from_body, write_key_in
from touchpoint.collect.normalize import EventRows, Rejected, payload_text, utcnow
from touchpoint.collect.spec import EVENT_TYPES, SHORT_PATHS, batch_json_schema, message_json_schema
from touchpoint.errors import InvalidBatch, Overloaded, PayloadTooLarge, Unauthorized

router = APIRouter(tags=["collect"])
_encode = msgspec.json.Encoder().encode

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Committed: `accepted` events stored (or already stored), `quarantined` kept aside"},
    400: {"description": "The body is not usable (not JSON, or over the batch's event limit)"},
    401: {"description": "Unknown or missing write key"},
    413: {"description": "Over the size limit per event (32 KB) or per request (500 KB)"},
    429: {
        "description": "Too many events waiting to be committed, or the server at its memory ceiling; retry "
        "after Retry-After seconds"
    },
    503: {"description": "The warehouse could not commit; nothing was stored, retry"},
}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body is {int(declared):,} bytes, over the limit of {limit:,} bytes per request",
            hint="send fewer events per batch",
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the request body is over the limit of {limit:,} bytes per request",
                hint="send fewer events per batch",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard_body(request: Request, limit: int) -> None:
    """Read a refused request's body without keeping it (up to twice ``limit``), so that the client, which may
    still be sending, reads the answer on its connection instead of a reset."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 2 * limit:
            return


async def ingest(request: Request, kind: str) -> Response:
    app = state(request)
    limits = app.limits
    declared = request.headers.get("content-length", "")
    compressed = request.headers.get("content-encoding", "identity").strip().lower() not in ("identity", "")
    expected = int(declared) if declared.isdigit() and not compressed else limits.max_batch_bytes
    try:
        reservation = app.memory.admit(min(expected, limits.max_batch_bytes))
    except Overloaded:
        await _discard_body(request, limits.max_batch_bytes)
        raise
    held = [reservation]  # handed to the collector with the rows: released once committed (or loaded, with the log)
    try:
        return await _ingest(request, kind, app, held)
    finally:
        for unheld in held:
            unheld.release()


async def _ingest(request: Request, kind: str, app: AppState, held: list[Reservation]) -> Response:
    limits = app.limits
    received_at = utcnow()
    raw = await _read_body(request, limits.max_batch_bytes)
    body = decompress(raw, request.headers.get("content-encoding"), limits.max_batch_bytes)
    key, _ = credentials(request)
    if not key:
        key = write_key_in(body)
    if not key:
        app.rates.address(client_host(request))
        raise Unauthorized(
            "no write key was sent",
            hint="send the source's write key as the HTTP Basic username, or as writeKey in the body",
        )
    source = await app.source_of(key)
    if source is None:
        app.rates.address(client_host(request))
        raise Unauthorized("the write key is not known", hint="create a source with `touchpoint sources create NAME`")

    try:
        rows, problems = rows_from_body(body, kind, received_at=received_at, source=source, limits=limits)
    except InvalidBatch as exc:
        # No item can be judged without the batch's shared fields: keep the whole body, answer 400.
        kept = EventRows()
        kept.reject(Rejected(exc.message, exc.field, payload_text(exc.body), None, "http:batch"), received_at, source)
        await asyncio.wrap_future(app.committer.submit(kept))
        return error_response(400, exc.code, exc.message, exc.hint, quarantined=1, field=exc.field)
    future = app.committer.submit(rows, release=held[0].release)
    held.clear()
    result = await asyncio.wrap_future(future)
    if kind != "batch" and problems:
        problem = problems[0]
        return error_response(
            400,
            "invalid_event",
            problem["reason"],
            "the event was kept in quarantine; fix the field and send it again",
            quarantined=1,
            field=problem["field"],
        )
    # Rejects count whether or not their quarantine record already existed (a retried bad batch).
    payload: dict[str, Any] = {"success": True, "accepted": len(rows), "quarantined": result.rejected}
    if problems:
        payload["errors"] = problems
    return Response(_encode(payload), media_type="application/json")


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": {"type": "string"}}},
        }
    }


def _make(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await ingest(request, kind)

    endpoint.__name__ = f"collect_{kind}"
    endpoint.__doc__ = (
        "Receive a batch of events (up to 2,500 and 500 KB)."
        if kind == "batch"
        else f"Receive one `{kind}` event (up to 32 KB)."
    )
    return endpoint


for _kind in (*EVENT_TYPES, "batch"):
    _doc = _body_doc(batch_json_schema() if _kind == "batch" else message_json_schema())
    router.add_api_route(
        f"/v1/{_kind}",
        _make(_kind),
        methods=["POST"],
        openapi_extra=_doc,
        responses=_RESPONSES,
        summary=f"{_kind} ({'many events' if _kind == 'batch' else 'one event'})",
    )
for _short, _kind in (*SHORT_PATHS.items(), ("b", "batch")):
    router.add_api_route(f"/v1/{_short}", _make(_kind), methods=["POST"], include_in_schema=False, responses=_RESPONSES)

#: The collector's paths and the kind each receives (``batch`` or an event type).
KINDS = {f"/v1/{k}": k for k in (*EVENT_TYPES, "batch")} | {
    f"/v1/{short}": k for short, k in (*SHORT_PATHS.items(), ("b", "batch"))
}
#: The collector's paths: their bodies have the collector's own limits (max_batch_bytes, max_event_bytes).
PATHS = frozenset(KINDS)


@router.get("/v1/projects/{write_key}/settings", summary="Settings analytics.js loads at start")
async def project_settings(request: Request, write_key: str) -> Response:
    """What analytics.js (and analytics-next) fetch before they send: where to send events."""
    app = state(request)
    source = await app.source_of(write_key)
    if source is None:
        app.rates.address(client_host(request))
        raise Unauthorized("the write key is not known", hint="create a source with `touchpoint sources create NAME`")
    scheme, _, where = app.settings.resolved_public_url().partition("://")  # never the request's Host header
    settings = {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{where}/v1",
                "protocol": scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    return Response(_encode(settings), media_type="application/json")
