"""Shared dependencies of the routers: the warehouse, the committer, key checks, and the audit log.

A route that returns or changes personal data (or changes a key) is declared with ``**audited("action")``:
its OpenAPI operation carries ``x-audit: action`` (tests/privacy/test_audit_api.py walks the spec and
calls every such route) and every call that passed the key check writes one audit entry, after the
handler ran and before the response leaves (:func:`touchpoint.privacy.audit.record`). A handler that
knows more takes ``note: AuditNote`` and sets ``note.subject`` (a profile id, never an email),
``note.rows`` and ``note.detail``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from touchpoint import keys
from touchpoint.api.limits import Rates
from touchpoint.api.memory import MemoryCeiling
from touchpoint.collect.body import Limits
from touchpoint.collect.committer import Collector
from touchpoint.collect.normalize import utcnow
from touchpoint.config import Settings
from touchpoint.errors import Forbidden, Overloaded, Unauthorized
from touchpoint.privacy import audit
from touchpoint.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoint.api.metrics import Metrics
    from touchpoint.jobs import JobRunner

READ_WAIT_S = 2.0  # how long a read of one customer waits for the collector log's loader to catch up
ERASE_WAIT_S = 60.0  # how long an erasure waits for it before refusing (429: retry)
ACKNOWLEDGED_WAIT_S = 5.0  # how long a job (the sender's consent check) waits for it before its run stops
KEY_CACHE_SECONDS = 5.0  # a revoked or expired key stops working at most this long after the change


@dataclass
class AppState:
    settings: Settings
    warehouse: Warehouse
    committer: Collector  # the group committer, or the collector log (setting collector_log)
    limits: Limits
    usage: keys.UsageRecorder | None = None
    runner: JobRunner | None = None
    metrics: Metrics | None = None
    rates: Rates = field(default_factory=lambda: Rates(0, 0))
    memory: MemoryCeiling = field(default_factory=lambda: MemoryCeiling(None))
    _keys: dict[tuple[str, str], tuple[keys.KeyMatch | None, float]] = field(default_factory=dict)

    def _fresh(self, kind: str, key: str) -> tuple[keys.KeyMatch | None, float] | None:
        """The cached answer for ``key`` while it is fresh, else None."""
        hit = self._keys.get((kind, key))
        return hit if hit is not None and time.monotonic() < hit[1] else None

    def cached(self, kind: str, key: str) -> bool:
        """Whether the answer for ``key`` is cached, so asking for it does not query the warehouse."""
        return self._fresh(kind, key) is not None

    async def source_of(self, write_key: str) -> str | None:
        """:meth:`source_for` from a coroutine: a key not cached is looked up in a worker thread, so the
        query (about 10 ms; longer while the warehouse is busy) never holds up the event loop's other requests."""
        if self.cached("sources", write_key):
            return self.source_for(write_key)
        return await asyncio.to_thread(self.source_for, write_key)

    def _match(self, kind: str, key: str) -> keys.KeyMatch | None:
        """The key's owner; answers are cached for a few seconds (never past a rotated key's expiry)."""
        hit = self._fresh(kind, key)
        if hit is not None:
            match = hit[0]
        else:
            match = keys.match_key(self.warehouse, kind, key)
            now = time.monotonic()
            until = now + KEY_CACHE_SECONDS
            if match is not None and match.expires_at is not None:
                until = min(until, now + max(0.0, (match.expires_at - utcnow()).total_seconds()))
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[(kind, key)] = (match, until)
        if match is not None and self.usage is not None:
            self.usage.touch(kind, match.name)
        return match

    def forget(self, kind: str, name: str) -> None:
        """Drop cached answers for ``name`` (after a rotation or revocation in this process)."""
        for cache_key, (match, _) in list(self._keys.items()):
            if cache_key[0] == kind and match is not None and match.name == name:
                self._keys.pop(cache_key, None)

    def see_acknowledged(self) -> None:
        """Before a read of customers: wait (at most :data:`READ_WAIT_S`) until every event acknowledged so far
        is in the warehouse, so the pending overlay sees it. A no-op without the collector log, where a 200
        already means committed; under a backlog longer than the wait, the read shows what is loaded."""
        self.committer.flush(READ_WAIT_S)

    def require_acknowledged(self, timeout: float | None = None) -> None:
        """Before an erasure: wait until every event acknowledged so far is in the warehouse, so that the person
        is found with every identifier those events tie to them (with the collector log a 200 comes before the
        load). Refuses with :class:`~touchpoint.errors.Overloaded` (429) when the loader cannot catch up in
        ``timeout`` (default :data:`ERASE_WAIT_S`): an erasure that missed acknowledged events would leave them
        behind. A no-op without the log.
        """
        timeout = ERASE_WAIT_S if timeout is None else timeout
        if not self.committer.flush(timeout):
            raise Overloaded(
                f"events acknowledged before this request are not all loaded after {timeout:.0f} s, so the erasure "
                "did not start (it would miss what they tie to the person)",
                retry_after=5,
                hint="retry the erasure in a few seconds",
            )

    def source_for(self, write_key: str) -> str | None:
        """The source of a write key, or None (unknown, revoked, or past its grace period)."""
        match = self._match("sources", write_key)
        return None if match is None else match.name

    def scope_for(self, api_key: str) -> str | None:
        """The scope of an API key, or None (unknown, revoked, or past its grace period)."""
        match = self._match("api_keys", api_key)
        return None if match is None else match.scope

    def api_key_for(self, api_key: str) -> keys.KeyMatch | None:
        """The owner (name and scope) of an API key, or None (unknown, revoked, or past its grace period)."""
        return self._match("api_keys", api_key)


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


def client_host(request: Request) -> str | None:
    """The client's address (behind a trusted proxy: the one it forwarded, see ``forwarded_allow_ips``)."""
    return request.client.host if request.client else None


def _require(scope: str) -> Any:
    def check(request: Request) -> str:
        key, _ = credentials(request)
        app = state(request)
        if not key:
            app.rates.address(client_host(request))
            raise Unauthorized(
                "this endpoint needs an API key",
                hint="send 'Authorization: Bearer <key>'; create one with `touchpoint keys create NAME --scope read`",
            )
        match = app.api_key_for(key)
        granted = None if match is None else match.scope
        if match is None or granted is None:
            app.rates.address(client_host(request))
            raise Unauthorized(
                "the API key is not known (write keys can only send events)",
                hint="create an API key with `touchpoint keys create NAME --scope read`",
            )
        app.rates.key(match.name)  # before the actor is known: a refused call writes no audit entry
        request.state.audit_actor = f"key:{match.name}"  # who, for the audit log (the key's name, never the key)
        if scope == "admin" and granted != "admin":
            raise Forbidden("this endpoint needs an admin key", hint="use a key made with --scope admin")
        return granted

    return check


ReadKey = Annotated[str, Depends(_require("read"))]
AdminKey = Annotated[str, Depends(_require("admin"))]
State = Annotated[AppState, Depends(state)]


# -- the audit log ---------------------------------------------------------------------------------------
AUDIT_EXTRA = "x-audit"  # the OpenAPI extension naming a route's audit action
_IDENTIFIERS = {"identifier", "customer_id"}  # path parameters that may be an email or a user id


AuditNote = audit.Note  # what a handler adds to its route's entry: the subject, rows, details


def _default_subject(request: Request) -> str | None:
    """The route's path parameters; an identifier (an email, a user id) replaced by a pseudonym."""
    params = request.path_params
    if not params:
        return None
    parts = [
        audit.pseudonym(state(request).warehouse, str(v)) if k in _IDENTIFIERS else str(v) for k, v in params.items()
    ]
    return "/".join(parts)


def _audited_call(request: Request) -> Iterator[AuditNote]:
    route = request.scope.get("route")
    action = str((getattr(route, "openapi_extra", None) or {}).get(AUDIT_EXTRA, "unnamed"))
    with audit.recorded(
        state(request).warehouse,
        actor=lambda: getattr(request.state, "audit_actor", None),  # set by the key check, which runs later
        surface="api",
        action=action,
        subject=_default_subject(request),
        invalid=(RequestValidationError,),
    ) as note:
        yield note


# "function": the entry is written after the handler and before the response is sent back.
_AUDITED = Depends(_audited_call, scope="function")
Audit = Annotated[AuditNote, _AUDITED]


def audited(action: str) -> dict[str, Any]:
    """Route options marking a route that returns or changes personal data, or changes a key: spread them
    into the decorator, ``@router.get(path, **audited("profiles.read"))``."""
    return {"openapi_extra": {AUDIT_EXTRA: action}, "dependencies": [_AUDITED]}
