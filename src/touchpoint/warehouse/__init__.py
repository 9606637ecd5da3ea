"""The warehouse layer: Ibis connections, schema, migrations and engine adapters."""

from touchpoint.warehouse.warehouse import Warehouse, open_warehouse

__all__ = ["Warehouse", "open_warehouse"]
