"""Dashboard users (name, role, scrypt password hash) and their sign-in sessions.

Roles follow the API's key scopes: a ``viewer`` reads (scope ``read``), an ``analyst`` reads and may
run operational actions such as replaying quarantined events, an ``admin`` may do everything (scope
``admin``). Signing in with an API key gives the role of its scope (read: viewer, admin: admin).

Passwords are hashed with scrypt (memory-hard, N=2**15, r=8, p=1: about 50 ms and 32 MiB per guess);
session tokens are 256 random bits and only their SHA-256 is stored, as with API keys.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> create_user(wh, "ada", "correct horse battery", "analyst").role
'analyst'
>>> authenticate(wh, "ada", "wrong password") is None, authenticate(wh, "ada", "correct horse battery").name
(True, 'ada')
>>> token, session = start_session(wh, "ada", "analyst", via="password")
>>> session_for(wh, token).role
'analyst'
>>> _ = disable_user(wh, "ada")
>>> session_for(wh, token) is None, authenticate(wh, "ada", "correct horse battery") is None
(True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from touchpoint.collect.normalize import utcnow
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.schema import USERS, WEB_SESSIONS

ROLES = ("viewer", "analyst", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
ROLE_FOR_SCOPE = {"read": "viewer", "admin": "admin"}
MIN_PASSWORD = 10
SESSION_HOURS = 12.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64): the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY = hash_password(secrets.token_urlsafe(16))  # checked against when the user is unknown: same timing


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"role {role!r} is not one of {', '.join(ROLES)}", hint="use --role viewer, analyst or admin"
        )
    return role


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (admin > analyst > viewer).

    >>> allows("admin", "analyst"), allows("viewer", "analyst")
    (True, False)
    """
    return RANK.get(role, -1) >= RANK[needed]


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None = None
    last_sign_in_at: datetime | None = None

    @property
    def status(self) -> str:
        return "disabled" if self.disabled_at is not None else "active"

    def to_dict(self) -> dict[str, Any]:
        iso = _iso
        return {
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "created_at": iso(self.created_at),
            "last_sign_in_at": iso(self.last_sign_in_at),
            "disabled_at": iso(self.disabled_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def create_user(wh: Warehouse, name: str, password: str, role: str) -> User:
    """Create a user who signs in with ``password`` (at least 10 characters); only its scrypt hash is kept."""
    if not _NAME.match(name):
        raise InvalidInput(
            f"user name {name!r} is not allowed",
            hint="use 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
        )
    check_role(role)
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD} are needed",
            hint="choose a longer password (a few random words work well)",
        )
    row = {"name": name, "password_hash": hash_password(password), "role": role, "created_at": utcnow()}
    rows = pa.Table.from_pylist([row], schema=USERS.schema.to_pyarrow())
    if wh.insert_new("users", rows) == 0:
        raise AlreadyExists(f"a user named {name!r} already exists", hint="choose another name")
    return get_user(wh, name)


def _user(row: dict[str, Any]) -> User:
    return User(row["name"], row["role"], row["created_at"], row.get("disabled_at"), row.get("last_sign_in_at"))


def list_users(wh: Warehouse) -> list[User]:
    t = wh.table("users").drop("password_hash")
    return [_user(r) for r in wh.to_arrow(t.order_by("name")).to_pylist()]


def get_user(wh: Warehouse, name: str) -> User:
    t = wh.table("users")
    rows = wh.to_arrow(t.filter(t.name == name).drop("password_hash")).to_pylist()
    if not rows:
        raise NotFound(f"there is no user named {name!r}", hint="`touchpoint users list` shows them")
    return _user(rows[0])


def disable_user(wh: Warehouse, name: str) -> User:
    """Stop a user signing in, and end every session they have now. Disabling twice is harmless."""
    user = get_user(wh, name)
    now = utcnow()
    with wh.write() as tx:
        if user.disabled_at is None:
            tx.update("users", {"disabled_at": now}, key="name", value=name)
        _end_sessions_of(wh, tx, name, now)
    return get_user(wh, name)


def _end_sessions_of(wh: Warehouse, tx: Any, name: str, now: datetime) -> None:
    t = wh.table("web_sessions")
    live = t.filter((t.user_name == name) & (t.via == "password") & t.ended_at.isnull())
    for token_hash in wh.to_arrow(live.select("token_hash")).column("token_hash").to_pylist():
        tx.update("web_sessions", {"ended_at": now}, key="token_hash", value=token_hash)


def authenticate(wh: Warehouse, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (the same work is done for an unknown name)."""
    t = wh.table("users")
    rows = wh.to_arrow(t.filter(t.name == name)).to_pylist()
    stored = rows[0]["password_hash"] if rows else _DUMMY
    ok = verify_password(password, stored)
    if not rows or not ok or rows[0]["disabled_at"] is not None:
        return None
    with wh.write() as tx:
        tx.update("users", {"last_sign_in_at": utcnow()}, key="name", value=name)
    return _user(rows[0])


@dataclass(frozen=True)
class Session:
    user_name: str
    role: str
    via: str
    csrf_token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(wh: Warehouse, user_name: str, role: str, *, via: str) -> tuple[str, Session]:
    """A new session; returns its token (for the cookie, never stored) and the session with its CSRF token."""
    check_role(role)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = Session(user_name, role, via, secrets.token_urlsafe(32), now + timedelta(hours=SESSION_HOURS))
    row = {
        "token_hash": token_hash(token),
        "user_name": user_name,
        "role": role,
        "via": via,
        "csrf_token": session.csrf_token,
        "created_at": now,
        "expires_at": session.expires_at,
    }
    wh.append("web_sessions", pa.Table.from_pylist([row], schema=WEB_SESSIONS.schema.to_pyarrow()))
    return token, session


def session_for(wh: Warehouse, token: str) -> Session | None:
    """The live session of a cookie token: not ended, not expired, its user (if a password user) not disabled."""
    t = wh.table("web_sessions")
    rows = wh.to_arrow(
        t.filter((t.token_hash == token_hash(token)) & t.ended_at.isnull() & (t.expires_at > utcnow())).limit(1)
    ).to_pylist()
    if not rows:
        return None
    row = rows[0]
    if row["via"] == "password":
        u = wh.table("users")
        active = wh.to_arrow(u.filter((u.name == row["user_name"]) & u.disabled_at.isnull()).select("name"))
        if active.num_rows == 0:
            return None
    return Session(row["user_name"], row["role"], row["via"], row["csrf_token"], row["expires_at"])


def end_session(wh: Warehouse, token: str) -> None:
    """Sign out: the token stops working at once (ending an unknown or ended session is harmless)."""
    with wh.write() as tx:
        tx.update("web_sessions", {"ended_at": utcnow()}, key="token_hash", value=token_hash(token))
