"""Pacing against a real SMTP server: frequency caps (transactional exempt), quiet hours in each recipient's
time zone (trait, event context, default) with DST changes, and the global control group with the programme's
lift. The quiet-hours arithmetic is also checked as a property over instants, windows and zones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.conftest import run_cli

from touchpoint.automations import outbox, pacing, workflow
from touchpoint.automations.pacing import QuietHours
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.errors import InvalidInput
from touchpoint.profiles.workflow import update

from .channels import smtp_sink
from .shop import WELCOME, email_of, open_shop, profile_of, set_traits, settings, track

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"]


def _utc(local: datetime, tz: str) -> datetime:
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)


# -- the arithmetic ------------------------------------------------------------------------------------------
@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    zone=st.sampled_from(ZONES),
    start=st.integers(0, 24 * 60 - 1),
    length=st.integers(30, 20 * 60),
    spread=st.sampled_from([0.0, 60.0, 600.0, 3600.0]),
    key=st.text("0123456789abcdef", min_size=24, max_size=24),
)
def test_a_released_time_is_never_quiet_and_never_before_it_was_due(
    at: datetime, zone: str, start: int, length: int, spread: float, key: str
) -> None:
    end = (start + length) % (24 * 60)
    q = QuietHours(time(start // 60, start % 60), time(end // 60, end % 60), spread)
    tz = ZoneInfo(zone)
    local = at.replace(tzinfo=UTC).astimezone(tz)
    released = q.release(at, tz, key)
    if released is None:
        assert not q.inside(local.time())
        return
    assert q.inside(local.time())
    assert released >= at
    assert not q.inside(released.replace(tzinfo=UTC).astimezone(tz).time())
    # it leaves at the window's end (plus at most the spread), not a day later
    assert released - at <= timedelta(minutes=length, hours=1, seconds=spread + 1)


@pytest.mark.parametrize(
    ("zone", "window", "due_local", "fold", "released_local"),
    [
        # Berlin, 29 March 2026: 02:00 becomes 03:00. A window ending in the gap ends at 03:00 CEST.
        ("Europe/Berlin", "21:00-02:30", datetime(2026, 3, 29, 1, 50), 0, datetime(2026, 3, 29, 3, 0)),
        # ... and a window ending at 08:00 that night is 7 hours of real time, not 8.
        ("Europe/Berlin", "21:00-08:00", datetime(2026, 3, 28, 23, 0), 0, datetime(2026, 3, 29, 8, 0)),
        # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:10 happens twice, the first time is quiet.
        ("Europe/Berlin", "21:00-02:30", datetime(2026, 10, 25, 2, 10), 0, datetime(2026, 10, 25, 2, 30)),
        # New York, 8 March 2026: 02:00 becomes 03:00.
        ("America/New_York", "22:00-02:15", datetime(2026, 3, 8, 1, 30), 0, datetime(2026, 3, 8, 3, 0)),
        # New York, 1 November 2026: 02:00 EDT becomes 01:00 EST; the second 01:10 (EST) is quiet too.
        ("America/New_York", "21:00-01:30", datetime(2026, 11, 1, 1, 10), 1, datetime(2026, 11, 1, 1, 30)),
    ],
)
def test_quiet_hours_across_dst_changes(
    zone: str, window: str, due_local: datetime, fold: int, released_local: datetime
) -> None:
    tz = ZoneInfo(zone)
    q = QuietHours.parse(window, spread=0)
    due = due_local.replace(tzinfo=tz, fold=fold).astimezone(UTC).replace(tzinfo=None)
    released = q.release(due, tz, "0" * 24)
    assert released is not None
    got = released.replace(tzinfo=UTC).astimezone(tz)
    assert got.replace(tzinfo=None) == released_local, got
    assert released >= due


def test_the_jitter_is_the_outbox_ids_and_spreads_a_night_over_the_spread() -> None:
    q = QuietHours.parse("21:00-08:00", spread=600)
    due = datetime(2026, 12, 3, 23, 0)
    keys = [outbox.outbox_id("a", 0, f"p{i}", "once") for i in range(200)]
    out = [q.release(due, ZoneInfo("UTC"), k) for k in keys]
    assert out == [q.release(due, ZoneInfo("UTC"), k) for k in keys]  # the same on every run
    offsets = sorted((o - datetime(2026, 12, 4, 8)).total_seconds() for o in out if o is not None)
    assert offsets[0] >= 0 and offsets[-1] < 600 and offsets[-1] - offsets[0] > 400


def test_settings_refuse_a_bad_cap_window_or_zone() -> None:
    for bad in (
        {"automations_frequency_caps": ["email:3 per week"]},
        {"automations_frequency_caps": ["sms:3/7d"]},
        {"automations_quiet_hours": "21:00-21:00"},
        {"automations_quiet_hours": "9pm-8am"},
        {"default_timezone": "Mars/Olympus"},
        {"automations_global_control": 0.6},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)  # type: ignore[arg-type]
    assert pacing.caps(Settings(automations_frequency_caps=["email:2/1d", " webhook:5/30m"])) == [
        pacing.Cap("email", 2, 86400.0, "email:2/1d"),
        pacing.Cap("webhook", 5, 1800.0, "webhook:5/30m"),
    ]


# -- through the sender --------------------------------------------------------------------------------------
def _email(subject: str, purpose: str = "marketing_email") -> dict[str, object]:
    return {"send_email": {"subject": subject, "text": "Hi", "purpose": purpose}}


def test_a_frequency_cap_stops_the_extra_marketing_email_and_says_so_but_transactional_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = open_shop(tmp_path, 3)
    steps = [_email("one"), _email("receipt", "transactional"), _email("two"), {"wait": {"hours": 1}}, _email("three")]
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True, "steps": steps})
    track(wh, "Signed Up", [0, 1, 2])
    workflow.evaluate(wh)
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port).model_copy(update={"automations_frequency_caps": ["email:2/7d"]})
        assert workflow.deliver(wh, s) == {"sent": 9}
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1, minutes=1)
        assert workflow.deliver(wh, s, now=later) == {"capped": 3}
        for i in range(3):
            assert sorted(m["Subject"] for m in sink.to(email_of(i))) == ["one", "receipt", "two"]
        # a week later the window has rolled on: another automation's marketing email goes again
        workflow.create(wh, WELCOME | {"name": "again", "trigger": {"event": "Came Back"}, "holdout": 0.1})
        track(wh, "Came Back", [0, 1, 2])
        workflow.evaluate(wh)
        treated = len(outbox.listing(wh, automation="again"))
        assert treated and workflow.deliver(wh, s, now=later + timedelta(days=8)) == {"sent": treated}
    capped = workflow.outbox_rows(wh, status="capped")
    assert len(capped) == 3 and all(r["step"] == 4 for r in capped)
    assert all(r["pacing"] == "frequency cap email:2/7d: 2 sent in the window" for r in capped)
    wh.close()
    code, out, err = run_cli(capsys, "automations", "outbox", "--status", "capped", "--json", "--data", str(tmp_path))
    assert code == 0, err
    assert [r["pacing"] for r in json.loads(out)["outbox"]] == [capped[0]["pacing"]] * 3


def test_quiet_hours_hold_each_recipient_in_their_own_zone_then_release_them(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    set_traits(wh, {0: {"timezone": "Europe/Berlin"}, 1: {"timezone": "America/New_York"}})
    write_messages(wh, [{"type": "page", "userId": "u3", "context": {"timezone": "America/Los_Angeles"}}])
    update(wh)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0, 1, 2, 3])
    workflow.evaluate(wh)
    s = settings(tmp_path).model_copy(
        update={"automations_quiet_hours": "21:00-08:00", "default_timezone": "Asia/Tokyo"}
    )
    night = datetime(2030, 12, 3, 21, 30)  # Berlin 22:30 (quiet), New York 16:30, Tokyo 06:30 (quiet), LA 13:30
    with smtp_sink() as sink:
        s = s.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{sink.port}"})
        assert workflow.deliver(wh, s, now=night) == {"sent": 2, "held": 2}
        assert {m["To"] for m in sink.messages} == {email_of(1), email_of(3)}
        rows = {r["profile_id"]: r for r in workflow.outbox_rows(wh)}
        berlin, tokyo = rows[profile_of(wh, 0)], rows[profile_of(wh, 2)]
        assert berlin["status"] == tokyo["status"] == "held" and berlin["attempts"] == 0
        assert _utc(datetime(2030, 12, 4, 8), "Europe/Berlin") <= berlin["held_until"] == berlin["due_at"]
        assert berlin["held_until"] < _utc(datetime(2030, 12, 4, 8, 10), "Europe/Berlin")
        assert _utc(datetime(2030, 12, 4, 8), "Asia/Tokyo") <= tokyo["held_until"]
        assert "quiet hours 21:00-08:00 in Europe/Berlin" in berlin["pacing"]
        assert "in Asia/Tokyo" in tokyo["pacing"]
        assert workflow.deliver(wh, s, now=tokyo["held_until"]) == {"sent": 1}  # Tokyo's morning; Berlin sleeps
        assert workflow.deliver(wh, s, now=berlin["held_until"]) == {"sent": 1}
        assert sorted(m["To"] for m in sink.messages) == sorted(email_of(i) for i in range(4))
    sent = workflow.outbox_rows(wh, status="sent")
    assert len(sent) == 4 and sum(r["held_until"] is not None for r in sent) == 2  # the record stays


def test_the_global_control_group_enters_but_is_never_contacted_and_measures_the_programme(tmp_path: Path) -> None:
    n = 40
    wh = open_shop(tmp_path, n)
    workflow.create(wh, WELCOME | {"holdout": 0.1})
    workflow.create(wh, WELCOME | {"name": "winback", "trigger": {"event": "Churn Risk"}, "holdout": 0.1})
    control = {i for i in range(n) if pacing.in_control(profile_of(wh, i), 0.25)}
    assert 0 < len(control) < n // 2
    track(wh, "Signed Up", list(range(n)))
    track(wh, "Churn Risk", list(range(0, n, 2)))
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port).model_copy(update={"automations_global_control": 0.25})
        workflow.run(wh, s)
        contacted = {m["To"] for m in sink.messages}
    track(wh, "Order Completed", list(range(0, n, 3)))
    assert contacted and not contacted & {email_of(i) for i in control}
    shown = workflow.show(wh, "welcome")["entries"]
    assert shown[pacing.CONTROL_ARM] == len(control) and sum(shown.values()) == n
    out = workflow.programme_lift(wh, s)
    assert out["goal"] == {"event": "Order Completed", "within_days": 14}  # the goal both automations share
    assert out["entrants"] == {"global_control": len(control), "programme": n - len(control)}
    reached = {i for i in range(0, n, 3)}
    assert out["goal_rate"]["global_control"] == pytest.approx(len(control & reached) / len(control))
    assert out["lift"]["estimate"] is not None and "ok" in out["srm"]
    with pytest.raises(InvalidInput, match="no global control group"):
        workflow.programme_lift(wh, settings(tmp_path))
