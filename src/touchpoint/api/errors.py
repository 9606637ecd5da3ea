"""One JSON error shape for the whole HTTP API, produced here and nowhere else.

Every error answers ``{"success": false, "error": {"code", "message", "hint"}}`` with the
matching status. Internals and stack traces never reach the client: an unexpected exception answers a
generic 500 with a ``request_id`` (also the ``X-Request-ID`` header) that names the server log line
holding the traceback; a 5xx the library raised on purpose carries the same id.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchpoint.api import malformed
from touchpoint.api.limits import BODY_KEY
from touchpoint.errors import TouchpointError, error_body, http_status

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = error_body(code, message, hint)
    body.update(extra)
    return Response(_encode(body), status_code=status, media_type="application/json", headers=headers)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def request_id(headers: Any) -> str:
    """The client's ``X-Request-ID`` when it is a short token (a proxy's id joins the logs), else a new one."""
    given = headers.get("x-request-id") if headers is not None else None
    if isinstance(given, str) and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def from_touchpoint_error(exc: TouchpointError, **extra: Any) -> Response:
    retry_after = getattr(exc, "retry_after", None)  # Overloaded, TooManyAttempts, RateLimited
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if exc.code == "unauthorized":
        headers = {"WWW-Authenticate": 'Basic realm="touchpoint"'}
    if "request_id" in extra:
        headers = {**(headers or {}), "X-Request-ID": str(extra["request_id"])}
    return error_response(http_status(exc), exc.code, exc.message, exc.hint, headers=headers, **extra)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "overloaded",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(TouchpointError)
    async def _touchpoint(request: Request, exc: TouchpointError) -> Response:
        if http_status(exc) >= 500:
            rid = request_id(request.headers)
            log.error("%s %s failed: %s", request.method, request.url.path, exc, extra={"fields": {"request_id": rid}})
            return from_touchpoint_error(exc, request_id=rid)
        return from_touchpoint_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return error_response(422, "invalid_input", message, "see /docs for the expected parameters")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError | RecursionError):
            body = b"".join(request.scope.get(BODY_KEY, ()))  # what api.limits.BodyLimit let through
            bad_byte = cause.start if isinstance(cause, UnicodeDecodeError) else None
            message = malformed.explain(body, bad_byte)
            return error_response(400, "invalid_input", message, "see /docs for the expected body")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, None, headers=getattr(exc, "headers", None))

    # Not `exception_handler(Exception)`: Starlette runs that one in its outermost middleware and re-raises
    # after answering, and uvicorn then drops the keep-alive connection, so the client's next request fails too.
    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors:
    """ASGI middleware: an unexpected exception answers 500 in the one shape and the connection stays usable.

    If the response had already started, nothing can be said to the client any more; the error is logged and
    the exception propagates so the server closes that connection (the client sees a truncated answer, not
    a wrong one).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            rid = request_id(dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]))
            log.exception(
                "unexpected error on %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                rid,
                extra={"fields": {"request_id": rid}},
            )
            if started:
                raise
            response = error_response(
                500,
                "internal_error",
                "an unexpected error occurred",
                f"the server log has details under request id {rid}",
                headers={"X-Request-ID": rid},
                request_id=rid,
            )
            await response(scope, receive, send)
