"""Versioned schema migrations, recorded in the ``schema_migrations`` table.

A migration is applied once, in order, inside a transaction. To change the schema, append a
new :class:`Migration`; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from touchpoint.warehouse import schema

if TYPE_CHECKING:
    from touchpoint.warehouse.adapters import DuckDBAdapter


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[DuckDBAdapter], list[str]]


def _core_tables(adapter: DuckDBAdapter) -> list[str]:
    return [adapter.create_table_sql(spec) for spec in schema.CORE_TABLES]


def _key_lifecycle(adapter: DuckDBAdapter) -> list[str]:
    """Write keys and API keys: revocation, rotation with a grace period for the old key, last use."""
    columns = (
        ("revoked_at", schema.TS),
        ("last_used_at", schema.TS),
        ("previous_key_hash", schema.STRING),
        ("previous_key_expires_at", schema.TS),
    )
    return [adapter.add_column_sql(table, name, dtype) for table in ("sources", "api_keys") for name, dtype in columns]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables: events, quarantine, sources, api_keys, spend", _core_tables),
    Migration(2, "keys: revoked_at, last_used_at, previous key with its expiry", _key_lifecycle),
)


def applied_versions(adapter: DuckDBAdapter, cur: Any) -> set[int]:
    cur.execute(adapter.create_table_sql(schema.MIGRATIONS_TABLE))
    return {int(row[0]) for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(adapter: DuckDBAdapter) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    cur = adapter.cursor()
    try:
        done = applied_versions(adapter, cur)
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            with adapter.transaction(cur):
                for sql in migration.statements(adapter):
                    cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, datetime.now(UTC).replace(tzinfo=None)],
                )
            applied.append(migration)
        return applied
    finally:
        cur.close()


def pending(adapter: DuckDBAdapter) -> list[Migration]:
    cur = adapter.cursor()
    try:
        if "schema_migrations" not in adapter.backend.list_tables():
            return list(MIGRATIONS)
        done = {int(r[0]) for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        return [m for m in MIGRATIONS if m.version not in done]
    finally:
        cur.close()
