"""The engines: one :class:`~touchpoint.warehouse.base.Warehouse` class per URL scheme.

Analytics are Ibis expressions and run on any engine Ibis supports. What Ibis does not express
portably (DDL with keys, inserts that skip stored keys, upserts, deletes, transactions, per-thread
connections) is written once per engine, in that engine's class. Adding an engine (Spark) means
adding a class and an entry here; an engine without one gets an error naming those that exist.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from touchpoint.errors import ConfigError
from touchpoint.warehouse.base import Warehouse
from touchpoint.warehouse.duckdb_engine import DuckDBWarehouse
from touchpoint.warehouse.postgres_engine import PostgresWarehouse

ADAPTERS: dict[str, type[Warehouse]] = {
    "duckdb": DuckDBWarehouse,
    "postgresql": PostgresWarehouse,
    "postgres": PostgresWarehouse,
}


def engine_for(url: str) -> type[Warehouse]:
    """The warehouse class for ``url``'s scheme."""
    scheme = urlsplit(url).scheme
    try:
        return ADAPTERS[scheme]
    except KeyError:
        raise ConfigError(
            f"no warehouse adapter for {scheme!r} URLs (from {url!r})",
            hint=f"use one of: {', '.join(s + '://' for s in ADAPTERS)}",
        ) from None
