"""The customer page reads one profile with reads compiled once per process
(:meth:`touchpoint.warehouse.Warehouse.prepared`): the second profile's page compiles no query, nor does the
first page after the dashboard's background refresh has warmed them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ibis.backends.sql import SQLBackend

from touchpoint import profiles
from touchpoint.collect.store import write_messages
from touchpoint.privacy import consent
from touchpoint.profiles import workflow
from touchpoint.warehouse import Warehouse, duckdb_engine
from touchpoint.web import customers, profile_parts


def _shop() -> tuple[Warehouse, list[str]]:
    wh = Warehouse.open("duckdb://:memory:")
    messages: list[dict[str, Any]] = []
    for p in range(3):
        messages += [
            {"type": "identify", "userId": f"u{p}", "anonymousId": f"a{p}", "traits": {"email": f"p{p}@x.org"}},
            {"type": "track", "userId": f"u{p}", "event": "Order Completed", "properties": {"revenue": 10 + p}},
            {"type": "page", "anonymousId": f"a{p}", "name": "Home"},
        ]
    write_messages(wh, messages)
    workflow.update(wh)
    ids = [profiles.get_profile(wh, f"u{p}")["profile_id"] for p in range(3)]
    consent.set_consent(wh, ids[0], ["marketing_email"], True, source="api", actor="test", proof="test")
    # pending (after the last identity update): a view by u0 and u1, a trait of u1
    write_messages(wh, [{"type": "track", "userId": f"u{p}", "event": "Product Viewed"} for p in (0, 1)])
    write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}])
    return wh, ids


def _compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    compiled: list[str] = []
    real = SQLBackend.compile

    def counting(self: Any, expr: Any, *args: Any, **kwargs: Any) -> Any:
        sql = real(self, expr, *args, **kwargs)
        compiled.append(str(sql)[:200])
        return sql

    monkeypatch.setattr(SQLBackend, "compile", counting)
    return compiled


def test_a_second_customer_page_compiles_no_query(monkeypatch: pytest.MonkeyPatch) -> None:
    wh, ids = _shop()
    first = customers.profile(wh, ids[0])
    compiled = _compiled(monkeypatch)
    second = customers.profile(wh, ids[1])
    assert compiled == [], "\n".join(compiled)
    assert first["profile"]["profile_id"] == ids[0] and second["profile"]["profile_id"] == ids[1]
    assert second["profile"]["pending"]["events"] == 2  # read through the same cached SQL, other values
    assert second["profile"]["traits"]["plan"] == "pro" and "plan" not in first["profile"]["traits"]
    assert second["timeline"]["total"] == 5 and first["timeline"]["total"] == 4
    assert [c["granted"] for c in first["consent"]["purposes"] if c["purpose"] == "marketing_email"] == [True]
    assert second["consent"]["history"] == [] and len(first["consent"]["history"]) == 1


def test_the_background_refresh_warms_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    duckdb_engine._PREPARED.clear()  # as after a start
    wh, ids = _shop()
    write_messages(wh, [{"type": "identify", "userId": f"u{p}", "traits": {"tier": "a"}} for p in range(3)])
    index = profile_parts.score_index(wh, Path("."))  # the dashboard's "scores" section
    compiled = _compiled(monkeypatch)
    page = customers.profile(wh, ids[2], None, None, index)
    assert compiled == [], "\n".join(compiled)
    assert page["profile"]["traits"]["tier"] == "a"
