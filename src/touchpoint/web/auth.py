"""Who is asking: the session cookie, roles, CSRF tokens and the sign-in rate limit.

A signed-in browser carries one cookie, ``tp_session`` (HttpOnly, SameSite=Lax, Secure when served over
TLS, and always in production), whose SHA-256 names a row of ``web_sessions``. Every form carries the
session's CSRF token; a POST without the right one is refused with 403 before anything runs. The sign-in
form, used before there is a session, carries a token that must match the ``tp_signin`` cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from touchpoint import keys, users
from touchpoint.config import Settings
from touchpoint.errors import Forbidden, TooManyAttempts, Unauthorized
from touchpoint.warehouse import Warehouse

SESSION_COOKIE = "tp_session"
SIGNIN_COOKIE = "tp_signin"
SESSION_CACHE_SECONDS = 5.0  # a disabled user or ended session stops working at most this long after


class SignInRequired(Exception):
    """The request has no live session: the page answers with a redirect to the sign-in page."""


@dataclass
class RateLimit:
    """Failed sign-ins allowed per ``window`` seconds: ``per_user`` for one user name, ``per_address`` for one
    client address (higher: several people may sign in from one office address)."""

    per_user: int = 5
    per_address: int = 30
    window: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, settings: Settings) -> None:
        """Take the limits from ``signin_failures_per_user`` and ``signin_failures_per_address``."""
        self.per_user = settings.signin_failures_per_user
        self.per_address = settings.signin_failures_per_address

    def _limit(self, key: str) -> int:
        return self.per_user if key.startswith("user:") else self.per_address

    def check(self, *who: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in who:
                seen = self._failures.get(key)
                while seen and now - seen[0] > self.window:
                    seen.popleft()
                if seen and len(seen) >= self._limit(key):
                    wait = int(self.window - (now - seen[0])) + 1
                    raise TooManyAttempts(
                        "too many failed sign-ins; wait before trying again",
                        retry_after=wait,
                        hint=f"try again in {wait} seconds",
                    )

    def failed(self, *who: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in who:
                self._failures.setdefault(key, deque()).append(now)


@dataclass
class Auth:
    """Per-server sign-in state: cached session lookups and the rate limit."""

    limit: RateLimit = field(default_factory=RateLimit)
    _cache: dict[str, tuple[users.Session | None, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self, wh: Warehouse, token: str) -> users.Session | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        found = users.session_for(wh, token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (found, now + SESSION_CACHE_SECONDS)
        return found

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(token, None)


def sign_in(wh: Warehouse, auth: Auth, client: str, name: str, password: str) -> tuple[str, users.Session]:
    """Check a user's password, or an API key typed as the password with no name; start a session."""
    name = name.strip()
    auth.limit.check(f"ip:{client}", f"user:{name}")
    if not name:
        match = keys.match_key(wh, "api_keys", password.strip()) if password.strip() else None
        if match is None or match.scope not in users.ROLE_FOR_SCOPE:
            auth.limit.failed(f"ip:{client}")
            raise Unauthorized(
                "that API key is not known (or was revoked)",
                hint="enter your user name and password, or paste a read or admin API key with the name empty",
            )
        role = users.ROLE_FOR_SCOPE[match.scope]
        return users.start_session(wh, f"key:{match.name}", role, via="api_key")
    user = users.authenticate(wh, name, password)
    if user is None:
        auth.limit.failed(f"ip:{client}", f"user:{name}")
        raise Unauthorized("wrong user name or password (or the user is disabled)", hint="check both and try again")
    return users.start_session(wh, user.name, user.role, via="password")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure(request: Request, settings: Settings) -> bool:
    """Whether a cookie must be Secure: always in production (TLS is in front), else when the request came
    over TLS (or a trusted proxy says it did) or the server's public URL is https."""
    public_url = settings.public_url
    return (
        settings.env == "production"
        or request.url.scheme == "https"
        or bool(public_url and public_url.startswith("https://"))
    )


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def check_csrf(expected: str | None, given: Any) -> None:
    """403 unless the form's token equals the expected one (constant-time)."""
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden(
            "this form was sent without a valid CSRF token",
            hint="reload the page and send the form again",
        )


def require_role(session: users.Session, needed: str) -> None:
    if not users.allows(session.role, needed):
        raise Forbidden(
            f"this needs the {needed} role; you are signed in as a {session.role}",
            hint="ask an admin: `touchpoint users create NAME --role analyst`",
        )
