"""The warehouse layer: the contract every engine implements, its engines, the schema and migrations."""

from touchpoint.warehouse.base import Transaction, Warehouse
from touchpoint.warehouse.warehouse import open_warehouse

__all__ = ["Transaction", "Warehouse", "open_warehouse"]
