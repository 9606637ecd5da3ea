"""Write keys (one per event source) and API keys (read or admin scope), stored only as hashes.

A write key can only send events. Every other HTTP endpoint needs an API key: ``read`` for the
read endpoints, ``admin`` for everything (admin includes read).

A key's life: created, used (the last use is recorded, coalesced by :class:`UsageRecorder`), rotated
(a new key; the old one keeps working for a grace period, then stops) and revoked (every key of that
name stops at once; rotating a revoked name issues a fresh key and brings it back).

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> key = create_source(wh, "website")
>>> source_for_write_key(wh, key)
'website'
>>> new_key, info = rotate(wh, "sources", "website", grace=parse_grace("1h"))
>>> (source_for_write_key(wh, key), source_for_write_key(wh, new_key), info.status)
('website', 'website', 'rotating')
>>> revoke(wh, "sources", "website").status, source_for_write_key(wh, new_key)
('revoked', None)
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa

from touchpoint.collect.normalize import utcnow
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.schema import API_KEYS, SOURCES

SCOPES = ("read", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def hash_key(key: str) -> str:
    """SHA-256 of a key. Keys are 192 random bits, so a fast hash is enough (no dictionary to guess)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is not allowed",
            hint="use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    key_prefix: str
    created_at: datetime
    scope: str | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    previous_key_expires_at: datetime | None = None

    @property
    def status(self) -> str:
        """``active``, ``rotating`` (the previous key still works until its expiry) or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.previous_key_expires_at is not None and self.previous_key_expires_at > utcnow():
            return "rotating"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "key_prefix": self.key_prefix}
        if self.scope:
            data["scope"] = self.scope
        data["created_at"] = self.created_at.isoformat()
        data["status"] = self.status
        data["last_used_at"] = _iso(self.last_used_at)
        data["revoked_at"] = _iso(self.revoked_at)
        if self.status == "rotating":
            data["previous_key_expires_at"] = _iso(self.previous_key_expires_at)
        return data


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Kind:
    """Where one kind of key lives: ``sources`` (write keys) or ``api_keys``."""

    table: str
    hash_column: str
    what: str
    create_hint: str


KINDS: dict[str, Kind] = {
    "sources": Kind("sources", "write_key_hash", "source", "`touchpoint sources list` shows them"),
    "api_keys": Kind("api_keys", "key_hash", "API key", "`touchpoint keys list` shows them"),
}


def _insert(wh: Warehouse, table: str, row: dict[str, Any], schema: pa.Schema) -> None:
    inserted = wh.insert_new(table, pa.Table.from_pylist([row], schema=schema))
    if inserted == 0:
        raise AlreadyExists(f"{row['name']!r} already exists", hint="choose another name")


def create_source(wh: Warehouse, name: str) -> str:
    """Create an event source and return its write key (shown once; only the hash is kept)."""
    _check_name(name, "source")
    key = "tpw_" + secrets.token_urlsafe(24)
    row = {"name": name, "write_key_hash": hash_key(key), "key_prefix": key[:8], "created_at": utcnow()}
    _insert(wh, "sources", row, SOURCES.schema.to_pyarrow())
    return key


def _info(row: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        row["name"],
        row["key_prefix"],
        row["created_at"],
        row.get("scope"),
        row.get("revoked_at"),
        row.get("last_used_at"),
        row.get("previous_key_expires_at"),
    )


def _list(wh: Warehouse, kind: str, name: str | None = None) -> list[KeyInfo]:
    t = wh.table(KINDS[kind].table)
    if name is not None:
        t = t.filter(t.name == name)
    return [_info(r) for r in wh.to_arrow(t.order_by("name")).to_pylist()]


def list_sources(wh: Warehouse) -> list[KeyInfo]:
    return _list(wh, "sources")


@dataclass(frozen=True)
class KeyMatch:
    """Who a presented key belongs to, and until when it works (``None``: until rotated or revoked)."""

    name: str
    scope: str | None
    expires_at: datetime | None


def match_key(wh: Warehouse, kind: str, key: str) -> KeyMatch | None:
    """The live key of ``kind`` that ``key`` is: the current one, or the previous one within its grace."""
    spec = KINDS[kind]
    digest = hash_key(key)
    t = wh.table(spec.table)
    current = t[spec.hash_column] == digest
    live = t.revoked_at.isnull() & (
        current | ((t.previous_key_hash == digest) & (t.previous_key_expires_at > ibis.literal(utcnow())))
    )
    scope = t.scope if kind == "api_keys" else ibis.null(str)
    rows = wh.to_arrow(
        t.filter(live).select("name", "previous_key_expires_at", granted=scope, is_current=current).limit(1)
    ).to_pylist()
    if not rows:
        return None
    row = rows[0]
    granted = row["granted"]
    return KeyMatch(
        str(row["name"]),
        None if granted is None else str(granted),
        None if row["is_current"] else row["previous_key_expires_at"],
    )


def source_for_write_key(wh: Warehouse, key: str) -> str | None:
    """The source a write key belongs to, or None (unknown, revoked, or past its grace period)."""
    match = match_key(wh, "sources", key)
    return None if match is None else match.name


def create_api_key(wh: Warehouse, name: str, scope: str) -> str:
    """Create an API key with ``scope`` (read or admin) and return it (shown once)."""
    _check_name(name, "key")
    if scope not in SCOPES:
        raise InvalidInput(f"scope {scope!r} is not one of {', '.join(SCOPES)}", hint="use --scope read or admin")
    key = f"tpk_{scope[0]}_" + secrets.token_urlsafe(24)
    row = {
        "name": name,
        "key_hash": hash_key(key),
        "key_prefix": key[:10],
        "scope": scope,
        "created_at": utcnow(),
    }
    _insert(wh, "api_keys", row, API_KEYS.schema.to_pyarrow())
    return key


def list_api_keys(wh: Warehouse) -> list[KeyInfo]:
    return _list(wh, "api_keys")


def api_key_scope(wh: Warehouse, key: str) -> str | None:
    """The scope of an API key, or None when the key is unknown, revoked or past its grace period."""
    match = match_key(wh, "api_keys", key)
    return None if match is None else match.scope


MAX_GRACE = timedelta(days=90)
_GRACE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_grace(text: str) -> timedelta:
    """A grace period such as ``24h``, ``30m``, ``7d``, ``90s`` or ``0`` (the old key stops at once)."""
    found = _GRACE.match(text)
    if not found or (found.group(2) == "" and float(found.group(1)) != 0):
        raise InvalidInput(
            f"grace period {text!r} is not a duration", hint="use a number with s, m, h, d or w, e.g. 24h; 0 for none"
        )
    grace = timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2) or "s"])
    if grace > MAX_GRACE:
        raise InvalidInput(f"grace period {text!r} is longer than 90 days", hint="rotate again later instead")
    return grace


def _one(wh: Warehouse, kind: str, name: str) -> KeyInfo:
    found = _list(wh, kind, name)
    if not found:
        raise NotFound(f"there is no {KINDS[kind].what} named {name!r}", hint=KINDS[kind].create_hint)
    return found[0]


def _update(wh: Warehouse, kind: str, name: str, values: dict[str, Any]) -> None:
    with wh.write() as tx:
        tx.update(KINDS[kind].table, values, key="name", value=name)


def revoke(wh: Warehouse, kind: str, name: str) -> KeyInfo:
    """Stop every key of ``name`` now (also a previous key within its grace). Revoking twice is harmless."""
    info = _one(wh, kind, name)
    if info.revoked_at is None:
        _update(wh, kind, name, {"revoked_at": utcnow()})
    return _one(wh, kind, name)


def rotate(wh: Warehouse, kind: str, name: str, *, grace: timedelta) -> tuple[str, KeyInfo]:
    """Issue a new key for ``name``; the current one keeps working for ``grace``, then stops.

    A key retired by an earlier rotation stops now. For a revoked name the new key brings it back and
    the old keys stay dead. Returns the new key (shown once) and the key's state.
    """
    info = _one(wh, kind, name)
    spec = KINDS[kind]
    if kind == "sources":
        key = "tpw_" + secrets.token_urlsafe(24)
        prefix = key[:8]
    else:
        key = f"tpk_{(info.scope or 'read')[0]}_" + secrets.token_urlsafe(24)
        prefix = key[:10]
    with wh.write() as tx:  # under the write lock: nobody changes the key between this read and the update
        t = wh.table(spec.table)
        found = wh.to_arrow(t.filter(t.name == name).select(spec.hash_column, "revoked_at")).to_pylist()
        row = found[0] if found else None
        keep_old = row is not None and row["revoked_at"] is None and grace > timedelta(0)
        values: dict[str, Any] = {
            spec.hash_column: hash_key(key),
            "key_prefix": prefix,
            "previous_key_hash": row[spec.hash_column] if keep_old and row is not None else None,
            "previous_key_expires_at": utcnow() + grace if keep_old else None,
            "revoked_at": None,
        }
        tx.update(spec.table, values, key="name", value=name)
    return key, _one(wh, kind, name)


class UsageRecorder:
    """Records when each key was last used, off the request path.

    :meth:`touch` costs a dictionary lookup: a key's use is noted at most once per ``every`` seconds, and
    a background thread writes what was noted every ``flush_seconds`` (and once more on :meth:`stop`).
    """

    def __init__(self, wh: Warehouse, *, every: float = 60.0, flush_seconds: float = 5.0) -> None:
        self.wh = wh
        self.every = every
        self.flush_seconds = flush_seconds
        self._noted: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self, kind: str, name: str) -> None:
        now = time.monotonic()
        noted = self._noted.get((kind, name))
        if noted is not None and now - noted < self.every:
            return
        self._noted[(kind, name)] = now
        with self._lock:
            self._pending[(kind, name)] = utcnow()

    def flush(self) -> int:
        """Write the uses noted since the last flush; returns how many keys were updated."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        with self.wh.write() as tx:  # a handful of keys a minute: one small update each
            for (kind, name), used_at in pending.items():
                tx.update(KINDS[kind].table, {"last_used_at": used_at}, key="name", value=name)
        return len(pending)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # a failed write of a last-use time must never stop the server
                log.exception("could not record when keys were last used")

    def start(self) -> UsageRecorder:
        self._thread = threading.Thread(target=self._run, name="touchpoint-key-usage", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        except Exception:
            log.exception("could not record when keys were last used")
