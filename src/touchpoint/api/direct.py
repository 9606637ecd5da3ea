"""The collector's routes served without the framework's routing in between (issue 20, part 2).

``POST /v1/track``, ``/v1/batch`` and the other collector paths are most of a server's requests, and
FastAPI's per-request work (its outer middlewares, the router's scan, the endpoint wrapper and its exit
stack) cost about as much CPU as the collector's own handler (docs/decisions.md, 2026-12-03, "A leaner
HTTP path"). :class:`App` sends those requests straight to :func:`touchpoint.api.routes.collect.ingest`
through the same user middlewares the app was built with (CORS, the body limit, the one error shape for
unexpected errors, HSTS in production), and turns the exceptions it raises into answers with the app's own
exception handlers, the way Starlette's exception middleware does. Every other request, and a collector path
with another method, goes through FastAPI as before; the routes stay registered there too, for the OpenAPI
document. ``App.direct = False`` switches the direct path off (tests compare the two answers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send


class App(FastAPI):
    """FastAPI, with the collector's POST paths (``direct_routes``: path to kind) served directly."""

    direct = True
    direct_routes: Mapping[str, str] = {}
    direct_handler: Callable[[Request, str], Any] | None = None
    _direct_stack: ASGIApp | None = None

    def route_directly(self, routes: Mapping[str, str], handler: Callable[[Request, str], Any]) -> None:
        """Serve POSTs to ``routes`` (path to the kind passed on) with ``handler(request, kind)``."""
        self.direct_routes = dict(routes)
        self.direct_handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.direct:
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            kind = self.direct_routes.get(path)
            if kind is not None:
                scope["app"] = self
                scope["touchpoint.kind"] = kind
                if self._direct_stack is None:
                    self._direct_stack = self._build_direct_stack()
                await self._direct_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _build_direct_stack(self) -> ASGIApp:
        """The handler inside the app's user middlewares, in the order Starlette stacks them."""
        app: ASGIApp = self._endpoint
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.direct_handler is not None
        request = Request(scope, receive)
        try:
            response = await self.direct_handler(request, scope["touchpoint.kind"])
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise  # to the unexpected-errors middleware, as from the router
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's exception handler for ``exc``: by status code for an HTTPException, then by class."""
        handlers = self.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None
