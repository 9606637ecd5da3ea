"""Consent to analytics reaches every analytics read: a person who denied it is in no journey, funnel,
prediction input, experiment, marketing-mix KPI or survey result, while their events stay stored and
exportable; with ``analytics_denied = drop`` the denying event is not stored; a person who never said
counts (analytics is opt-out). Every measuring-core read of the event log goes through one door
(``touchpoint.privacy.analytics``): a module that reads ``events`` around it fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.collect.store import write_messages
from touchpoint.config import DEFAULT_PURPOSES, Settings, override_settings
from touchpoint.experiments.metrics import exposures
from touchpoint.journeys.funnels import funnel
from touchpoint.journeys.people import person_events
from touchpoint.journeys.touches import journeys
from touchpoint.mmm.dataset import _daily_kpi
from touchpoint.plan.surveys import answers
from touchpoint.predict.summary import events_with_customer, orders_from_events
from touchpoint.privacy import analytics, consent
from touchpoint.privacy.export import export
from touchpoint.profiles.workflow import update
from touchpoint.warehouse import Warehouse, open_warehouse

SRC = Path(__file__).resolve().parents[2] / "src" / "touchpoint"
PEOPLE = {"u1": "ann@shop.example", "u2": "dan@shop.example", "u3": "eve@shop.example"}
REVENUE = {"u1": 10.0, "u2": 200.0, "u3": 30.0}


def _day(d: int, h: int = 10) -> str:
    return f"2026-03-{d:02d}T{h:02d}:00:00Z"


def _journey(user: str, anon: str) -> list[dict[str, Any]]:
    """Anonymous browsing from a campaign, identify, view, buy, an experiment exposure, a survey answer."""
    return [
        {"type": "page", "anonymousId": anon, "timestamp": _day(2),
         "context": {"page": {"url": "https://shop.example/?utm_source=news&utm_medium=email"}}},
        {"type": "identify", "anonymousId": anon, "userId": user, "traits": {"email": PEOPLE[user]},
         "timestamp": _day(2, 11)},
        {"type": "track", "userId": user, "event": "Product Viewed", "timestamp": _day(3)},
        {"type": "track", "userId": user, "event": "Order Completed", "timestamp": _day(3, 12),
         "properties": {"revenue": REVENUE[user], "order_id": f"o-{user}"}},
        {"type": "track", "userId": user, "event": "Experiment Viewed", "timestamp": _day(3, 9),
         "properties": {"experiment_id": "cta", "variation_id": "b"}},
        {"type": "track", "userId": user, "event": "Survey Responded", "timestamp": _day(4),
         "properties": {"survey": "csat", "score": 4, "scale_max": 5}},
    ]  # fmt: skip


def _shop(wh: Warehouse) -> None:
    for i, user in enumerate(PEOPLE):
        write_messages(wh, _journey(user, f"anon-{i}"))
    # u2 (Dan) says no to analytics; u3 (Eve) says no in one event's consent object, yes in the next;
    # u1 never says
    write_messages(
        wh,
        [
            {"type": "identify", "userId": "u2", "traits": {"consent_analytics": False}, "timestamp": _day(1)},
            {"type": "page", "messageId": "eve-no", "userId": "u3", "timestamp": _day(5),
             "context": {"consent": {"categoryPreferences": {"Analytics": False}}}},
            {"type": "page", "messageId": "eve-yes", "userId": "u3", "timestamp": _day(6),
             "context": {"consent": {"categoryPreferences": {"Analytics": True}}}},
        ],
    )  # fmt: skip
    update(wh)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    wh = Warehouse.open(f"duckdb://{tmp_path_factory.mktemp('analytics') / 'warehouse.duckdb'}")
    _shop(wh)
    yield wh
    wh.close()


def _people(wh: Warehouse, table: Any, column: str) -> set[str]:
    """The user ids behind ``column`` (profile ids, user ids) of an analytics result."""
    ids = {v for v in wh.to_arrow(table.select(column).distinct()).column(column).to_pylist() if v}
    nodes = wh.table("identity_nodes")
    users = nodes.filter(nodes.profile_id.isin(sorted(ids)) & (nodes.id_type == "user_id"))
    return {v for v in wh.to_arrow(users.id_value).to_pylist()} | (ids & set(PEOPLE))


def test_a_person_who_denied_analytics_is_in_no_analytics_result(shop: Warehouse) -> None:
    wh = shop
    assert _people(wh, person_events(wh), "person") == {"u1", "u3"}
    assert _people(wh, events_with_customer(wh), "customer_id") == {"u1", "u3"}
    orders = wh.to_arrow(orders_from_events(wh)).to_pylist()
    assert sorted(r["revenue"] for r in orders) == [10.0, 30.0]  # predictions' input: no Dan
    assert funnel(wh, ["Product Viewed", "Order Completed"])["steps"][1]["people"] == 2
    paths = journeys(wh, lookback_days=30, conversion_event="Order Completed")
    assert float(paths.conversions.sum()) == 2.0 and float(paths.value.sum()) == 40.0  # attribution's input
    assert _people(wh, exposures(wh, "cta", unit="customer"), "unit") == {"u1", "u3"}
    daily = wh.to_arrow(_daily_kpi(wh, "revenue")).to_pylist()
    assert sum(r["revenue"] for r in daily) == 40.0  # the marketing-mix model's KPI
    assert sum(r["new_customers"] for r in wh.to_arrow(_daily_kpi(wh, "new_customers")).to_pylist()) == 2
    assert len(answers(wh, "csat").score) == 2  # survey KPIs
    # Eve's one denying event is out, her others count; nobody's events left the warehouse
    kept = set(wh.to_arrow(analytics.events(wh).message_id).to_pylist())
    assert "eve-yes" in kept and "eve-no" not in kept
    assert wh.count("events") == 21  # excluded: Dan's 7 (his denying identify among them) and eve-no
    assert analytics.excluded(wh) == {"events": 21, "analytics_events": 13, "excluded": 8, "own_denial": 2}
    dan = export(wh, "u2")
    assert dan["tables"]["events"]["count"] == 7  # stored and exportable


def test_an_identifier_not_yet_resolved_is_judged_by_its_own_statement(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    write_messages(
        wh,
        [
            {
                "type": "identify",
                "messageId": "n1",
                "userId": "new",
                "traits": {"consent_analytics": False},
                "timestamp": "2026-01-01T00:00:00Z",
            },
            {"type": "page", "messageId": "n2", "userId": "new"},
            {"type": "page", "messageId": "o1", "userId": "other"},
        ],
    )
    assert set(wh.to_arrow(analytics.events(wh).message_id).to_pylist()) == {"o1"}  # no profiles built yet
    again = {"type": "identify", "messageId": "n3", "userId": "new", "traits": {"consent_analytics": True}}
    write_messages(wh, [again])  # and it changes its mind
    assert set(wh.to_arrow(analytics.events(wh).message_id).to_pylist()) == {"n2", "n3", "o1"}  # n1 itself said no
    wh.close()


def test_without_any_denial_the_door_adds_nothing(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    write_messages(wh, _journey("u1", "a1"))
    update(wh)
    assert not analytics.needed(wh)
    assert analytics.events(wh).equals(wh.table("events"))  # the same expression: no join, no cost
    assert analytics.excluded(wh)["excluded"] == 0
    wh.close()


def test_drop_stores_nothing_and_opt_in_analytics_counts_only_who_granted(tmp_path: Path) -> None:
    override_settings(analytics_denied="drop")
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    _shop(wh)
    stored = set(wh.to_arrow(wh.table("events").message_id).to_pylist())
    assert "eve-no" not in stored and "eve-yes" in stored
    assert wh.count("events") == 19  # eve-no and Dan's denying identify were not stored; their consent was
    assert analytics.excluded(wh)["own_denial"] == 0
    assert _people(wh, person_events(wh), "person") == {"u1", "u3"}  # Dan's profile-level denial still holds
    wh.close()
    override_settings(consent_purposes={**DEFAULT_PURPOSES, "analytics": "opt_in"})
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    assert _people(wh, person_events(wh), "person") == {"u3"}  # only Eve granted it
    consent.set_consent(wh, "u1", "analytics", True, source="cli")
    assert _people(wh, person_events(wh), "person") == {"u1", "u3"}
    wh.close()


def test_the_metrics_count_events_excluded_from_analytics(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    wh = open_warehouse(settings)
    try:
        _shop(wh)
        read = keys.create_api_key(wh, "reader", "read")
    finally:
        wh.close()
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics", headers={"Authorization": f"Bearer {read}"}).text
    lines = [line for line in text.splitlines() if line.startswith("touchpoint_events_excluded_from_analytics ")]
    assert lines == ["touchpoint_events_excluded_from_analytics 8.0"]
    assert "touchpoint_events_consent_dropped_total 0.0" in text


# -- one door ------------------------------------------------------------------------------------------------
MEASURING = ("journeys", "predict", "experiments", "mmm", "plan")
#: Reads of the raw event log that are not analytics, and why.
ALLOWED = {
    ("experiments/assignment.py", "previous_assignments"): "a unit keeps its arm whatever it consented to",
}


def _raw_reads(path: Path) -> list[tuple[str, int]]:
    """(function, line) of every ``*.table("events")`` and every use of the identity package's customer rule."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "table"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and child.args[0].value == "events"
            ):
                found.append((where, child.lineno))
            if (
                isinstance(child, ast.ImportFrom)
                and child.module in ("touchpoint.identity.people", "touchpoint.identity")
                and any(alias.name == "customer_events" for alias in child.names)
            ):
                found.append((where, child.lineno))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_every_measuring_read_of_the_event_log_goes_through_the_analytics_door() -> None:
    offenders = []
    for package in MEASURING:
        for path in sorted((SRC / package).rglob("*.py")):
            rel = path.relative_to(SRC).as_posix()
            offenders += [f"{rel}:{line} ({fn})" for fn, line in _raw_reads(path) if (rel, fn) not in ALLOWED]
    assert offenders == [], "read events through touchpoint.privacy.analytics (events / customer_events)"
    # and the check itself sees a raw read
    assert [fn for fn, _line in _raw_reads(SRC / "experiments" / "assignment.py")] == ["previous_assignments"]
