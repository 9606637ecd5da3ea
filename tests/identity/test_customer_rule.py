"""The customer rule: one warehouse, one customer count in a funnel, the CLV summary, an experiment
analysis and the marketing-mix model's new-customer KPI, before and after identity resolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.collect.spend import import_spend
from touchpoint.collect.store import write_messages
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse

DAY0 = dt.date(2024, 1, 1)  # a Monday
EXP = "hero-banner"
ARMS = {"ann": "control", "bob": "treatment", "cat": "control", "lou": "treatment", "dan": "control"}


def _at(day: int, hour: int = 12) -> str:
    return f"{DAY0 + dt.timedelta(days=day)}T{hour:02d}:00:00Z"


def _order(day: int, order_id: str, *, user: str | None = None, anon: str | None = None, **extra: Any) -> dict:
    msg: dict[str, Any] = {
        "type": "track",
        "event": ORDER_COMPLETED,
        "timestamp": _at(day),
        "properties": {"order_id": order_id, "revenue": 10.0},
        **extra,
    }
    if user:
        msg["userId"] = user
    if anon:
        msg["anonymousId"] = anon
    return msg


def _exposure(who: str, *, user: str | None = None, anon: str | None = None, day: int = 0) -> dict:
    msg: dict[str, Any] = {
        "type": "track",
        "event": "Experiment Viewed",
        "timestamp": _at(day, 0),
        "properties": {"experiment_id": EXP, "variation_id": ARMS[who]},
    }
    msg["userId" if user else "anonymousId"] = user or anon
    return msg


def _events() -> list[dict[str, Any]]:
    return [
        # ann browses and buys as a guest, then signs up: an anonymous visitor who later identifies
        {"type": "page", "anonymousId": "a-ann", "name": "/products/1", "timestamp": _at(0, 9)},
        _exposure("ann", anon="a-ann"),
        _order(1, "o-ann-1", anon="a-ann"),
        {"type": "identify", "anonymousId": "a-ann", "userId": "ann", "timestamp": _at(2)},
        _order(10, "o-ann-2", user="ann"),
        # bob is a known user from the start
        _exposure("bob", user="bob", day=3),
        _order(3, "o-bob", user="bob"),
        # cat has two identifiers tied only by her email: her account and a guest checkout
        {"type": "identify", "userId": "cat", "traits": {"email": "cat@example.com"}, "timestamp": _at(4, 1)},
        _exposure("cat", user="cat", day=4),
        _exposure("cat", anon="a-cat", day=4),
        _order(5, "o-cat-guest", anon="a-cat", context={"traits": {"email": "Cat@Example.com"}}),
        _order(20, "o-cat", user="cat"),
        # dan only looks
        _exposure("dan", anon="a-dan", day=6),
        {"type": "page", "anonymousId": "a-dan", "name": "/products/2", "timestamp": _at(6, 9)},
        # lou orders every Monday for 27 weeks and on the last Sunday (so every week is full)
        _exposure("lou", user="lou"),
        *[_order(7 * w, f"o-lou-{w}", user="lou") for w in range(27)],
        _order(7 * 27 - 1, "o-lou-last", user="lou"),
    ]


def _counts(wh: Warehouse) -> dict[str, float]:
    from touchpoint.experiments.definitions import Experiment, create_experiment, list_experiments
    from touchpoint.experiments.metrics import Metric
    from touchpoint.experiments.results import analyze_experiment
    from touchpoint.journeys.funnels import funnel
    from touchpoint.mmm import from_warehouse
    from touchpoint.predict.summary import load_summary, orders_from_events, rfm_summary

    if not list_experiments(wh):
        exp = Experiment(
            EXP,
            variants=["control", "treatment"],
            metrics=[Metric("ordered", "binomial", ORDER_COMPLETED)],
            start_at=dt.datetime(2023, 12, 1),
        )
        create_experiment(wh, exp)
    result = analyze_experiment(wh, EXP)
    assert result.extra["exposures"]["multiple_exposures"] == 0
    buyers = sum(arm.n * arm.mean for arm in result.metrics[0].arms)
    steps = funnel(wh, ["Experiment Viewed", ORDER_COMPLETED], window_hours=24 * 365)["steps"]
    clv = load_summary(wh, rfm_summary(orders_from_events(wh), calibration_end=DAY0 + dt.timedelta(days=200)))
    return {
        "funnel": steps[1]["people"],
        "clv": len(clv),
        "experiment": round(buyers),
        "mmm": float(from_warehouse(wh, kpi="new_customers").target.sum()),
    }


def test_one_customer_count_everywhere(tmp_path: Path) -> None:
    from touchpoint import identity
    from touchpoint.experiments.results import analyze_experiment
    from touchpoint.identity.people import describe

    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    try:
        write_messages(wh, _events(), source="test")
        spend = ["date,channel,campaign,amount"]
        spend += [f"{DAY0 + dt.timedelta(days=7 * w)},search,,100" for w in range(27)]
        (tmp_path / "spend.csv").write_text("\n".join(spend))
        import_spend(wh, tmp_path / "spend.csv")

        # not resolved: ann's guest order is stitched to her account; cat's guest checkout is a stranger
        assert describe(wh).endswith("(identities not resolved)")
        assert _counts(wh) == {"funnel": 5, "clv": 5, "experiment": 5, "mmm": 5.0}

        # resolved: cat's email ties her guest checkout to her account, in every measure at once
        identity.rebuild(wh)
        assert describe(wh).startswith("profile_id")
        assert _counts(wh) == {"funnel": 4, "clv": 4, "experiment": 4, "mmm": 4.0}
        exposed = analyze_experiment(wh, EXP).extra["exposures"]["units"]
        assert sum(exposed.values()) == 5  # ann, bob, cat, dan, lou: cat's two exposures are one unit
    finally:
        wh.close()


def test_the_rules_differ_only_where_they_say(tmp_path: Path) -> None:
    from touchpoint import identity
    from touchpoint.identity.people import customer_events

    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    try:
        write_messages(wh, _events(), source="test")

        def customers(rule: str) -> set[str]:
            t = customer_events(wh, rule=rule)
            t = t.filter(t.event == ORDER_COMPLETED)
            return set(wh.to_arrow(t.select("customer_id").distinct())["customer_id"].to_pylist())

        assert customers("raw") == {"a-ann", "ann", "bob", "a-cat", "cat", "lou"}
        assert customers("auto") == customers("stitch") == {"ann", "bob", "a-cat", "cat", "lou"}
        with pytest.raises(InvalidInput, match="identity_nodes"):
            customers("profiles")
        with pytest.raises(InvalidInput, match="not known"):
            customers("psychic")
        identity.rebuild(wh)
        profiles = customers("auto")
        assert profiles == customers("profiles") and len(profiles) == 4
        assert identity.resolve(wh, "a-cat") == identity.resolve(wh, "cat") in profiles
        # an event stored after the last resolution still finds the profile of its known anonymous id
        write_messages(wh, [_order(30, "o-new", user="ann-new-login", anon="a-ann")], source="test")
        late = customer_events(wh).filter(lambda t: t.message_id.notnull() & (t.user_id == "ann-new-login"))
        assert wh.to_arrow(late)["customer_id"].to_pylist() == [identity.resolve(wh, "ann")]
    finally:
        wh.close()
