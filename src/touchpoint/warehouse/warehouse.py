"""Opening the configured warehouse.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> wh.count("events")
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from touchpoint.warehouse.base import Warehouse

if TYPE_CHECKING:
    from touchpoint.config import Settings


def duckdb_config(settings: Settings) -> dict[str, Any]:
    """DuckDB's settings; extensions are never installed or loaded on demand (nothing downloads at run time:
    json, parquet and icu are linked into the engine, and an extension we need comes as a pip package)."""
    memory_limit = settings.duckdb_memory_limit
    extra = {}
    if settings.memory_ceiling_mb:  # the engine lives in the server's process: under its memory ceiling
        memory_limit = memory_limit or f"{max(64, settings.memory_ceiling_mb // 2)}MB"
        # hand memory back to the system after each task, so the resident size the collector admits
        # requests by is what is in use (DuckDB's default keeps up to 128 MB)
        extra["allocator_flush_threshold"] = f"{max(4, settings.memory_ceiling_mb // 32)}MB"
    return {
        **extra,
        "memory_limit": memory_limit,
        "threads": settings.duckdb_threads,
        # every checkpoint writes the rows since the last one and the changed part of the events key; at 16 MB
        # (DuckDB's default) storing 3M events cost 1.6 times the CPU it does at 256 MB (bench/events_growth.py)
        "checkpoint_threshold": f"{settings.duckdb_checkpoint_mb}MB",
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }


def open_warehouse(settings: Settings | None = None, *, read_only: bool = False) -> Warehouse:
    """Open the warehouse the settings point to (default: ``<data_dir>/warehouse.duckdb``)."""
    if settings is None:
        from touchpoint.config import get_settings

        settings = get_settings()
    return Warehouse.open(settings.resolved_warehouse_url(), read_only=read_only, config=duckdb_config(settings))
