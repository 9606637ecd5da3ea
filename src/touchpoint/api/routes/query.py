"""``POST /v1/query``: one read-only SQL statement in the query sandbox (read key).

The same function as ``touchpoint query`` (:func:`touchpoint.warehouse.sandbox.run_readonly_query`): the
statement is parsed and refused unless it is one read of the warehouse's own tables (no files, URLs,
extensions, settings or writes), it runs in a transaction that is rolled back, and it is interrupted
after ``timeout`` seconds without holding up other requests (each request reads on a connection of its
own). At most ``limit`` rows come back; ``truncated`` says when there were more. No query reads the
credential tables (key and password hashes, sessions), and a read key does not read the audit log or the
erasure records either: an admin key does, as with ``GET /v1/audit``.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from touchpoint.api.deps import Audit, ReadKey, State, audited
from touchpoint.warehouse.sandbox import (
    ADMIN_TABLES,
    CREDENTIAL_TABLES,
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    MAX_SQL_CHARS,
    run_readonly_query,
)

router = APIRouter(tags=["query"])
MAX_ROWS = 100_000
MAX_TIMEOUT_S = 300.0
_encode = msgspec.json.Encoder(decimal_format="number").encode


class QueryRequest(BaseModel):
    sql: str = Field(..., max_length=MAX_SQL_CHARS, description="One read-only statement (DuckDB SQL).")
    limit: int = Field(DEFAULT_MAX_ROWS, ge=1, le=MAX_ROWS, description="Most rows returned.")
    timeout: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S, description="Seconds before it is stopped.")


@router.post(
    "/v1/query",
    summary="Run one read-only SQL statement over the warehouse's tables",
    response_description='{"columns", "rows", "truncated", "max_rows", "seconds"}',
    **audited("query.run"),
)
def query(body: QueryRequest, app: State, scope: ReadKey, note: Audit) -> Response:
    hidden = CREDENTIAL_TABLES if scope == "admin" else CREDENTIAL_TABLES | ADMIN_TABLES  # least privilege
    result = run_readonly_query(app.warehouse, body.sql, max_rows=body.limit, timeout_s=body.timeout, hidden=hidden)
    note.rows = result.table.num_rows  # the statement is not logged: its literals may be someone's email
    return Response(_encode(result.to_dict()), media_type="application/json")
