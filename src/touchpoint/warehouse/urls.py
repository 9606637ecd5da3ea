"""Warehouse URLs as they may be shown: in logs, messages and the console, never with a password.

>>> redact("postgresql://tp:secret@db:5432/shop")
'postgresql://tp:***@db:5432/shop'
>>> redact("duckdb:///data/warehouse.duckdb")
'duckdb:///data/warehouse.duckdb'
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, host = parts.netloc.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
