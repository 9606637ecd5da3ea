"""Shared dependencies of the routers: the warehouse, the committer, and key checks."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from touchpoint import keys
from touchpoint.collect.body import Limits
from touchpoint.collect.committer import GroupCommitter
from touchpoint.config import Settings
from touchpoint.errors import Forbidden, Unauthorized
from touchpoint.warehouse import Warehouse


@dataclass
class AppState:
    settings: Settings
    warehouse: Warehouse
    committer: GroupCommitter
    limits: Limits
    _write_keys: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    _api_keys: dict[str, tuple[str | None, float]] = field(default_factory=dict)

    def source_for(self, write_key: str) -> str | None:
        """The source of a write key; answers are cached (unknown keys for 5 s) to spare the warehouse."""
        now = time.monotonic()
        hit = self._write_keys.get(write_key)
        if hit is not None and (hit[0] is not None or now - hit[1] < 5.0):
            return hit[0]
        source = keys.source_for_write_key(self.warehouse, write_key)
        if len(self._write_keys) > 10_000:
            self._write_keys.clear()
        self._write_keys[write_key] = (source, now)
        return source

    def scope_for(self, api_key: str) -> str | None:
        """The scope of an API key, cached like write keys (unknown keys for 5 s, known ones for 60 s)."""
        now = time.monotonic()
        hit = self._api_keys.get(api_key)
        if hit is not None and now - hit[1] < (60.0 if hit[0] is not None else 5.0):
            return hit[0]
        scope = keys.api_key_scope(self.warehouse, api_key)
        if len(self._api_keys) > 10_000:
            self._api_keys.clear()
        self._api_keys[api_key] = (scope, now)
        return scope


def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.touchpoint
    return app_state


def credentials(request: Request) -> tuple[str | None, str]:
    """The key a request carries: HTTP Basic username, a Bearer token or an X-API-Key header."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(
                "the Authorization header is not valid HTTP Basic", hint="send base64('<key>:')"
            ) from None
        return (user or None), "basic"
    if scheme.lower() == "bearer" and value:
        return value.strip(), "bearer"
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip(), "header"
    return None, "none"


def _require(scope: str) -> Any:
    def check(request: Request) -> str:
        key, _ = credentials(request)
        if not key:
            raise Unauthorized(
                "this endpoint needs an API key",
                hint="send 'Authorization: Bearer <key>'; create one with `touchpoint keys create NAME --scope read`",
            )
        granted = state(request).scope_for(key)
        if granted is None:
            raise Unauthorized(
                "the API key is not known (write keys can only send events)",
                hint="create an API key with `touchpoint keys create NAME --scope read`",
            )
        if scope == "admin" and granted != "admin":
            raise Forbidden("this endpoint needs an admin key", hint="use a key made with --scope admin")
        return granted

    return check


ReadKey = Annotated[str, Depends(_require("read"))]
AdminKey = Annotated[str, Depends(_require("admin"))]
State = Annotated[AppState, Depends(state)]
