"""Limits on what one client may ask of the server: the size of a request body and the rate of requests.

**Body size.** :class:`BodyLimit` (ASGI middleware) refuses a body over ``max_request_bytes`` with 413
before the route reads it: at once when ``Content-Length`` says so, else as soon as the bytes received
pass the limit (a chunked body). The collector's paths have limits of their own (``max_batch_bytes``,
``max_event_bytes``: Segment's) and pass through untouched, as does the CLI relay (loopback, owner only).

**Rate.** :class:`RateLimiter` is a token bucket per client: ``per_minute`` requests a minute on average,
up to ``per_minute`` at once after a quiet minute. Over it, the request answers 429 with ``Retry-After``
(:class:`~touchpoint.errors.RateLimited`). Buckets are kept per API key (by its name, after the key check:
``rate_limit_per_key``) and per client address for calls that carry no valid key (a missing or unknown
key, an unknown write key, the dashboard's sign-in form, an unsubscribe link: ``rate_limit_per_address``).
Write keys are not limited per key: a website's write key is shared by all its visitors' browsers, and
the collector's own back-pressure (``queue_max_events``, 429) guards the warehouse.

>>> limiter = RateLimiter(per_minute=2)
>>> limiter.take("key:a", now=0.0), limiter.take("key:a", now=0.0), limiter.take("key:a", now=0.0)
(0.0, 0.0, 30.0)
>>> limiter.take("key:a", now=30.0), limiter.take("key:b", now=30.0)
(0.0, 0.0)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchpoint.errors import PayloadTooLarge, RateLimited

BODY_KEY = "touchpoint.body"  # the scope key under which BodyLimit keeps the chunks it let through
MAX_BUCKETS = 100_000  # distinct clients remembered; past it, the full (idle) buckets are forgotten


class RateLimiter:
    """Token buckets by client name; :meth:`take` costs a dictionary lookup under a lock (about a microsecond)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, when)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, who: str, *, now: float | None = None) -> float:
        """Spend one request of ``who``'s bucket: 0.0 when allowed, else the seconds until one is allowed."""
        if self.per_minute <= 0:
            return 0.0
        at = time.monotonic() if now is None else now
        capacity = float(self.per_minute)
        with self._lock:
            tokens, last = self._buckets.get(who, (capacity, at))
            tokens = min(capacity, tokens + (at - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, at)
                if len(self._buckets) > MAX_BUCKETS:
                    self._forget_idle(at)
                return 0.0
            self._buckets[who] = (tokens, at)
            return (1.0 - tokens) / self._rate

    def check(self, who: str, what: str) -> None:
        """:meth:`take`, raising :class:`~touchpoint.errors.RateLimited` (429, ``Retry-After``) when over."""
        wait = self.take(who)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many requests {what}: the limit is {self.per_minute} a minute",
                retry_after=seconds,
                hint=f"retry after {seconds} s; the limits are settings (docs/configuration.md, Limits)",
            )

    def _forget_idle(self, now: float) -> None:
        capacity = float(self.per_minute)
        for who, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self._rate >= capacity:
                del self._buckets[who]
        if len(self._buckets) > MAX_BUCKETS:  # all busy: start over rather than grow without bound
            self._buckets.clear()


class Rates:
    """The server's rate limiters: one per API key, one per client address for calls without a valid key."""

    def __init__(self, per_key: int, per_address: int) -> None:
        self.per_key = RateLimiter(per_key)
        self.per_address = RateLimiter(per_address)

    def key(self, name: str) -> None:
        self.per_key.check(f"key:{name}", f"with the API key {name!r}")

    def address(self, host: str | None) -> None:
        self.per_address.check(f"ip:{host or 'unknown'}", "without a valid key from your address")


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, except on the ``exempt`` paths."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    def _too_large(self, size: int | None) -> PayloadTooLarge:
        said = f"{size:,} bytes, " if size is not None else ""
        return PayloadTooLarge(
            f"the request body is {said}over the limit of {self.max_bytes:,} bytes",
            hint="send less in one request, or raise the setting max_request_bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    from touchpoint.api.errors import from_touchpoint_error

                    await from_touchpoint_error(self._too_large(int(value)))(scope, receive, send)
                    return
                break
        seen = 0
        kept: list[bytes] = scope.setdefault(BODY_KEY, [])  # references, not copies: for api.malformed

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                kept.append(chunk)
                if seen > self.max_bytes:  # an HTTPException: FastAPI re-raises it as is while reading a body
                    raise HTTPException(413, detail=self._too_large(None).message)
            return message

        await self.app(scope, counting_receive, send)
