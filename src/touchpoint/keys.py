"""Write keys (one per event source) and API keys (read or admin scope), stored only as hashes.

A write key can only send events. Every other HTTP endpoint needs an API key: ``read`` for the
read endpoints, ``admin`` for everything (admin includes read).

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> key = create_source(wh, "website")
>>> source_for_write_key(wh, key)
'website'
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from touchpoint.collect.normalize import utcnow
from touchpoint.errors import AlreadyExists, InvalidInput
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


@dataclass(frozen=True)
class KeyInfo:
    name: str
    key_prefix: str
    created_at: datetime
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "key_prefix": self.key_prefix}
        if self.scope:
            data["scope"] = self.scope
        data["created_at"] = self.created_at.isoformat()
        return data


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


def list_sources(wh: Warehouse) -> list[KeyInfo]:
    t = wh.to_arrow(wh.table("sources").order_by("name")).to_pylist()
    return [KeyInfo(r["name"], r["key_prefix"], r["created_at"]) for r in t]


def source_for_write_key(wh: Warehouse, key: str) -> str | None:
    """The source a write key belongs to, or None."""
    t = wh.table("sources")
    rows = wh.to_arrow(t.filter(t.write_key_hash == hash_key(key)).select("name").limit(1)).to_pylist()
    return str(rows[0]["name"]) if rows else None


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
    t = wh.to_arrow(wh.table("api_keys").order_by("name")).to_pylist()
    return [KeyInfo(r["name"], r["key_prefix"], r["created_at"], r["scope"]) for r in t]


def api_key_scope(wh: Warehouse, key: str) -> str | None:
    """The scope of an API key, or None when the key is unknown."""
    t = wh.table("api_keys")
    rows = wh.to_arrow(t.filter(t.key_hash == hash_key(key)).select("scope").limit(1)).to_pylist()
    return str(rows[0]["scope"]) if rows else None
