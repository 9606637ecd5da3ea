"""The warehouse: an Ibis connection built from a URL, migrated, with table accessors.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> wh.count("events")
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from touchpoint.errors import NotFound, WarehouseError
from touchpoint.warehouse import migrations
from touchpoint.warehouse.adapters import DuckDBAdapter, adapter_for

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings


class Warehouse:
    """One open warehouse. Use :meth:`open` or :func:`open_warehouse`; close it when done."""

    def __init__(self, adapter: DuckDBAdapter, url: str) -> None:
        self.adapter = adapter
        self.url = url

    @classmethod
    def open(
        cls, url: str, *, read_only: bool = False, migrate: bool = True, config: dict[str, Any] | None = None
    ) -> Warehouse:
        adapter = adapter_for(url, read_only=read_only, config=config)
        wh = cls(adapter, url)
        if read_only:
            if migrations.pending(adapter):
                adapter.close()
                raise WarehouseError(
                    f"the warehouse at {url} has not been initialised or needs migrating",
                    hint="run any writing command once (e.g. `touchpoint sources list`) to migrate it",
                )
        elif migrate:
            migrations.migrate(adapter)
        return wh

    @property
    def ibis(self) -> Any:
        """The Ibis backend, for building expressions."""
        return self.adapter.backend

    def table(self, name: str) -> ir.Table:
        try:
            return self.adapter.backend.table(name)
        except Exception as exc:
            raise NotFound(
                f"no table {name!r} in the warehouse", hint='`touchpoint query "SHOW TABLES"` lists them'
            ) from exc

    def execute(self, expr: Any) -> Any:
        return self.adapter.backend.execute(expr)

    def to_arrow(self, expr: Any) -> pa.Table:
        return self.adapter.backend.to_pyarrow(expr)

    def query(self, sql: str) -> pa.Table:
        return self.adapter.query_arrow(sql)

    def count(self, name: str) -> int:
        return int(self.table(name).count().to_pyarrow().as_py())

    def close(self) -> None:
        self.adapter.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def duckdb_config(settings: Settings) -> dict[str, Any]:
    return {"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}


def open_warehouse(settings: Settings | None = None, *, read_only: bool = False) -> Warehouse:
    """Open the warehouse the settings point to (default: ``<data_dir>/warehouse.duckdb``)."""
    if settings is None:
        from touchpoint.config import get_settings

        settings = get_settings()
    return Warehouse.open(settings.resolved_warehouse_url(), read_only=read_only, config=duckdb_config(settings))
