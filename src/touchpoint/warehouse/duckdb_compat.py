"""ibis 12 on DuckDB 2: the result methods ibis still calls on a connection by their old names.

DuckDB 1.4 renamed ``fetch_arrow_table`` and ``fetch_record_batch`` to ``to_arrow_table`` and ``to_arrow_reader``;
2.0 removed the old names from the connection (a relation keeps them, deprecated). ibis 12.0, the latest release,
still calls them on a connection when it lists catalogs, schemas or tables, describes a query, or streams
batches (``to_pyarrow_batches``). touchpoint needs DuckDB 2 for its checkpoints (1.5 wrote the whole primary-key
index of ``events`` again at every checkpoint, so ingestion slowed as the table grew: docs/decisions.md,
"2026-12-04 DuckDB 2"), so the old names are given back as aliases of the new ones. touchpoint's own code
calls neither (the suite runs with warnings as errors, and DuckDB warns that Arrow output from a connection's
result copies the rows). Remove this module once ibis calls the new names.

>>> import duckdb
>>> install()
>>> con = duckdb.connect()
>>> con.execute("SELECT 1 AS one").fetchall()
[(1,)]
>>> hasattr(con, "fetch_arrow_table") and hasattr(con, "fetch_record_batch")
True
"""

from __future__ import annotations

_ALIASES = {"fetch_arrow_table": "to_arrow_table", "fetch_record_batch": "to_arrow_reader"}


def install() -> None:
    """Give DuckDB's connection class the old names where it lacks them (idempotent; nothing on DuckDB 1.x)."""
    import duckdb

    for old, new in _ALIASES.items():
        if not hasattr(duckdb.DuckDBPyConnection, old):
            setattr(duckdb.DuckDBPyConnection, old, getattr(duckdb.DuckDBPyConnection, new))
