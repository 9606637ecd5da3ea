"""The triggers beyond events and audience changes: entering a score band, a date derived from a prediction
or a trait (before or after it), and a schedule sending to an audience every period or on a cron."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from touchpoint.audiences import scores
from touchpoint.audiences import workflow as audiences
from touchpoint.automations import store, triggers, workflow
from touchpoint.automations.definition import parse
from touchpoint.errors import InvalidDefinition
from touchpoint.warehouse import Warehouse, schema

from .channels import WebhookReceiver
from .shop import open_shop, profile_of, set_traits, settings

HOOK = [{"webhook": {"url": "http://127.0.0.1:9/x", "purpose": "transactional"}}]


def _auto(name: str, trigger: dict[str, Any], steps: list[dict[str, Any]] = HOOK, **extra: Any) -> dict[str, Any]:
    return {"name": name, "trigger": trigger, "holdout": 0, "allow_no_holdout": True, "steps": steps, **extra}


def _entries(wh: Warehouse, name: str) -> list[tuple[str, str]]:
    t = wh.table(schema.AUTOMATION_ENTRIES.name)
    rows = wh.to_arrow(t.filter(t.automation == name).select("profile_id", "occurrence")).to_pylist()
    return sorted((r["profile_id"], r["occurrence"]) for r in rows)


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


SCORE = {
    "fit": [{"name": "pro", "when": {"trait": "plan", "eq": "pro"}, "points": 70}],
    "bands": [{"name": "cold", "min": 0}, {"name": "hot", "min": 60}],
}


def test_entering_a_score_band_triggers_once_per_entry(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    scores.save(wh, "lead", SCORE)
    workflow.create(wh, _auto("hot-leads", {"score": "lead", "band": "hot"}, reentry="every_time"))
    start = store.now()
    scores.run(wh, "lead", now=start + timedelta(seconds=1))  # everyone enters 'cold'
    assert triggers.evaluate(wh, "hot-leads", now=start + timedelta(seconds=2))["entered"] == 0
    set_traits(wh, {1: {"plan": "pro"}, 2: {"plan": "pro"}})
    scores.run(wh, "lead", now=start + timedelta(minutes=1))
    assert triggers.evaluate(wh, "hot-leads", now=start + timedelta(minutes=2))["entered"] == 2
    scores.run(wh, "lead", now=start + timedelta(minutes=3))  # still hot: no new band entry
    assert triggers.evaluate(wh, "hot-leads", now=start + timedelta(minutes=4))["entered"] == 0
    assert {p for p, _ in _entries(wh, "hot-leads")} == {profile_of(wh, 1), profile_of(wh, 2)}
    occurrences = [o for _, o in _entries(wh, "hot-leads")]
    assert all(o.startswith("band:lead:hot:") for o in occurrences)


def _predict(wh: Warehouse, dates: dict[str, date]) -> None:
    rows = [{"customer_id": pid, "model": "test", "next_purchase_at": d} for pid, d in dates.items()]
    with wh.write() as tx:
        tx.delete("predictions", "customer_id", list(dates))
        tx.append("predictions", pa.Table.from_pylist(rows, schema=schema.PREDICTIONS.schema.to_pyarrow()))


def test_before_a_predicted_date_fires_that_many_days_before_and_a_late_prediction_still_reminds(
    tmp_path: Path,
) -> None:
    wh = open_shop(tmp_path, 4)
    workflow.create(wh, _auto("replenish", {"before": "next_purchase_at", "days": 5}, reentry="every_time"))
    today = store.now().date()
    p = [profile_of(wh, i) for i in range(4)]
    _predict(wh, {p[0]: today + timedelta(days=7), p[1]: today + timedelta(days=3), p[2]: today + timedelta(days=30)})
    day = _midnight(today)
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=1, hours=12))["entered"] == 0
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=2, minutes=1))["entered"] == 1
    assert _entries(wh, "replenish") == [(p[0], f"before:next_purchase_at:5:{today + timedelta(days=7)}")]
    # p1's day came before the automation existed: never. A prediction arriving late (fire instant passed,
    # the date not yet) still reminds; one whose date has passed does not.
    _predict(wh, {p[3]: today + timedelta(days=8)})
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=4))["entered"] == 1
    _predict(wh, {p[2]: today + timedelta(days=3)})
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=4, hours=1))["entered"] == 0
    # a new prediction is a new occurrence (every_time); the same one evaluated again is not
    _predict(wh, {p[0]: today + timedelta(days=20)})
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=15, hours=1))["entered"] == 1
    assert triggers.evaluate(wh, "replenish", now=day + timedelta(days=15, hours=2))["entered"] == 0
    assert sorted(o for pid, o in _entries(wh, "replenish") if pid == p[0]) == [
        f"before:next_purchase_at:5:{today + timedelta(days=n)}" for n in (7, 20)
    ]


def test_after_a_trait_date_fires_and_is_sent(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    today = store.now().date()
    set_traits(wh, {0: {"trial_ends": (today + timedelta(days=2)).isoformat()}, 1: {"trial_ends": "not a date"}})
    with WebhookReceiver() as hook:
        steps = [{"webhook": {"url": f"{hook.url}/trial", "purpose": "transactional"}}]
        workflow.create(wh, _auto("trial-over", {"after": "trial_ends", "days": 1}, steps))
        day = _midnight(today)
        assert workflow.run(wh, settings(tmp_path), now=day + timedelta(days=2, hours=23))["delivered"] == {}
        out = workflow.run(wh, settings(tmp_path), now=day + timedelta(days=3, hours=1))
        assert out["decided"][0]["entered"] == 1 and out["delivered"] == {"sent": 1}
        # found more than a day late: passed over
        set_traits(wh, {2: {"trial_ends": (today + timedelta(days=3)).isoformat()}})
        assert workflow.run(wh, settings(tmp_path), now=day + timedelta(days=5, hours=1))["delivered"] == {}
        assert [b["profile_id"] for b in hook.bodies("/trial")] == [profile_of(wh, 0)]


def test_a_schedule_sends_each_run_to_the_audiences_members_once(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    set_traits(wh, {0: {"plan": "pro"}, 1: {"plan": "pro"}})
    audiences.create(wh, "pros", {"trait": "plan", "eq": "pro"})
    saved = workflow.create(wh, _auto("digest", {"schedule": {"every": "7d", "audience": "pros"}}))["automation"]
    assert saved["definition"]["reentry"] == "every_time"
    t0 = saved["created_at"]
    audiences.refresh_audiences(wh, now=t0 + timedelta(seconds=1))
    assert triggers.evaluate(wh, "digest", now=t0 + timedelta(days=6))["entered"] == 0
    assert triggers.evaluate(wh, "digest", now=t0 + timedelta(days=7, minutes=1))["entered"] == 2
    assert triggers.evaluate(wh, "digest", now=t0 + timedelta(days=7, minutes=2))["entered"] == 0
    set_traits(wh, {2: {"plan": "pro"}})
    audiences.refresh_audiences(wh, now=t0 + timedelta(days=8))
    # three runs were missed: only the latest is sent, to who was a member then
    assert triggers.evaluate(wh, "digest", now=t0 + timedelta(days=35, hours=1))["entered"] == 3
    runs = sorted({o for _, o in _entries(wh, "digest")})
    assert runs == sorted(f"schedule:{(t0 + timedelta(days=d)).isoformat()}" for d in (7, 35))


def test_a_cron_schedule(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    set_traits(wh, {0: {"plan": "pro"}})
    audiences.create(wh, "pros", {"trait": "plan", "eq": "pro"})
    saved = workflow.create(wh, _auto("monday", {"schedule": {"cron": "0 9 * * 1", "audience": "pros"}}))
    t0 = saved["automation"]["created_at"]
    audiences.refresh_audiences(wh, now=t0 + timedelta(seconds=1))
    monday = _midnight((t0 + timedelta(days=7 - t0.weekday())).date()) + timedelta(hours=9)
    assert triggers.evaluate(wh, "monday", now=monday - timedelta(minutes=1))["entered"] == 0
    assert triggers.evaluate(wh, "monday", now=monday + timedelta(minutes=1))["entered"] == 1
    assert _entries(wh, "monday") == [(profile_of(wh, 0), f"schedule:{monday.isoformat()}")]


@pytest.mark.parametrize(
    ("trigger", "path", "words"),
    [
        ({"score": "lead"}, "$.trigger.band", "needs"),
        ({"before": "next_purchase_at", "days": -1}, "$.trigger.days", "from 0"),
        ({"before": "x", "after": "y", "days": 1}, "$.trigger", "one of before or after"),
        ({"before": "next_purchase_at", "days": 1, "product": "lens"}, "$.trigger.product", "replenishment"),
        ({"schedule": {"every": "5s", "audience": "a"}}, "$.trigger.schedule.every", "1 hour"),
        ({"schedule": {"cron": "0 25 * * *", "audience": "a"}}, "$.trigger.schedule.cron", "0-23"),
        ({"schedule": {"cron": "0 9 * *", "audience": "a"}}, "$.trigger.schedule.cron", "5"),
        ({"schedule": {"every": "7d"}}, "$.trigger.schedule.audience", "needs"),
        ({"schedule": {"every": "7d", "cron": "* * * * *", "audience": "a"}}, "$.trigger.schedule", "one of"),
        ({"nothing": 1}, "$.trigger", "one of event, audience, score"),
    ],
)
def test_a_bad_trigger_names_the_field(trigger: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse(_auto("x", trigger))
    assert info.value.path == path
    assert words in info.value.message + (info.value.hint or "")


def test_the_flows_job_decides_what_the_clock_brings_and_skips_event_only_automations(tmp_path: Path) -> None:
    from touchpoint.jobs import JobContext, Skip
    from touchpoint.jobs.builtin import run_flows

    wh = open_shop(tmp_path, 2)
    ctx = JobContext(warehouse=wh, settings=settings(tmp_path))
    with pytest.raises(Skip):
        run_flows(ctx)
    workflow.create(wh, _auto("welcome", {"event": "Signed Up"}))
    workflow.create(wh, _auto("replenish", {"before": "next_purchase_at", "days": 2}))
    _predict(wh, {profile_of(wh, 0): store.now().date() + timedelta(days=4)})
    decided = workflow.evaluate(wh, now=_midnight(store.now().date()) + timedelta(days=2, hours=1), clock=True)
    assert [(d["automation"], d["entered"]) for d in decided] == [("replenish", 1)]
    assert run_flows(ctx)["entered"] == 0  # the real clock: nothing more is due
