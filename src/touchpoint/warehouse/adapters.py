"""The engines: one :class:`~touchpoint.warehouse.base.Warehouse` class per URL scheme.

Analytics are Ibis expressions and run on any engine Ibis supports. What Ibis does not express
portably (DDL with keys, inserts that skip stored keys, upserts, deletes, transactions, per-thread
connections) is written once per engine, in that engine's class. Adding an engine means adding a class
and an entry here; an engine without one gets an error naming those that exist. The Spark adapter's
module imports pyspark only when a Spark warehouse opens.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from touchpoint.errors import ConfigError
from touchpoint.warehouse.base import Warehouse
from touchpoint.warehouse.duckdb_engine import DuckDBWarehouse
from touchpoint.warehouse.postgres_engine import PostgresWarehouse
from touchpoint.warehouse.spark_engine import SparkWarehouse

ADAPTERS: dict[str, type[Warehouse]] = {
    "duckdb": DuckDBWarehouse,
    "postgresql": PostgresWarehouse,
    "postgres": PostgresWarehouse,
    "spark+local": SparkWarehouse,  # Spark in this process: spark+local:///data/warehouse?threads=2
    "spark": SparkWarehouse,  # a standalone cluster: spark://master:7077?warehouse=hdfs://...
    "sc": SparkWarehouse,  # Spark Connect: sc://host:15002?warehouse=...
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
