"""Email automations against a real SMTP server: rendered content and headers, exactly once, holdout
untouched, consent re-checked at send time, SMTP failures retried or dead-lettered, waits and goals."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from touchpoint.automations import consent, journal, outbox, store, triggers, workflow
from touchpoint.automations.definition import parse
from touchpoint.jobs import JobContext
from touchpoint.jobs.builtin import run_automations, run_deliveries
from touchpoint.warehouse import Warehouse

from .channels import smtp_sink
from .shop import SIGNING_KEY, WELCOME, email_of, open_shop, profile_of, set_traits, settings, track


def _held_out(wh, n: int) -> set[int]:  # type: ignore[no-untyped-def]
    auto = parse(WELCOME | {"holdout": 0.3})
    return {i for i in range(n) if triggers.in_holdout(auto, profile_of(wh, i))}


def test_messages_arrive_rendered_once_each_and_the_holdout_gets_nothing(tmp_path: Path) -> None:
    n = 20
    wh = open_shop(tmp_path, n, consent=lambda i: i != 3)  # u3 never consented
    definition = WELCOME | {"holdout": 0.3}
    definition["steps"] = [
        {
            "send_email": {
                "subject": "Welcome {{ traits.first_name }}",
                "text": "Hello {{ traits.first_name }}, CLV {{ predictions.clv | default('n/a') }}",
                "html": "<p>Hello <b>{{ traits.first_name }}</b></p><a href='{{ unsubscribe_url }}'>unsubscribe</a>",
                "purpose": "marketing_email",
            }
        }
    ]
    workflow.create(wh, definition)
    held = _held_out(wh, n)
    assert held and len(held) < n, "the hash should hold some out of 20 at 30%"
    track(wh, "Signed Up", list(range(n)), resolve=False)
    track(wh, "Signed Up", list(range(n)))  # a second sign-up: once ever
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port)
        first = workflow.run(wh, s)
        again = workflow.run(wh, s)  # the same triggers evaluated twice, the sender run twice
        assert again["decided"][0]["entered"] == 0 and again["delivered"] == {}
        expected = [i for i in range(n) if i not in held and i != 3]
        assert first["delivered"] == {"sent": len(expected)}
        for i in range(n):
            got = sink.to(email_of(i))
            assert len(got) == (1 if i in expected else 0), (i, len(got))
        msg = sink.to(email_of(expected[0]))[0]
    i = expected[0]
    assert msg["Subject"] == f"Welcome Name{i}"
    assert msg["From"] == "Shop <news@shop.test>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"].strip("<>")
    assert unsub.startswith("https://tp.shop.test/v1/unsubscribe?token=")
    assert consent.read_token(SIGNING_KEY.encode(), unsub.split("token=")[1]) == (profile_of(wh, i), "marketing_email")
    oid = outbox.outbox_id("welcome", 0, profile_of(wh, i), "once")
    assert msg["Message-ID"] == f"<{oid}@shop.test>"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert f"Hello Name{i}, CLV n/a" in parts["text/plain"] and unsub in parts["text/plain"]
    assert f"<b>Name{i}</b>" in parts["text/html"]
    shown = workflow.show(wh, "welcome")
    assert shown["entries"] == {"treated": n - len(held), "holdout": len(held)}
    assert shown["outbox"] == {"sent": len(expected), **({"suppressed": 1} if 3 not in held else {})}


def test_consent_withdrawn_between_decision_and_send_sends_nothing(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 6)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", list(range(6)))
    decided = workflow.evaluate(wh)
    assert decided[0]["outbox"] == 6
    set_traits(wh, {1: {"consent_marketing_email": False}})  # the trait turned off
    token = consent.make_token(SIGNING_KEY.encode(), profile_of(wh, 2), "marketing_email")
    assert workflow.unsubscribe(wh, settings(tmp_path), token)["unsubscribed"]  # the link clicked
    with smtp_sink() as sink:
        out = workflow.deliver(wh, settings(tmp_path, sink.port))
        assert out == {"sent": 4, "suppressed": 2}
        assert sink.to(email_of(1)) == [] and sink.to(email_of(2)) == []
        assert len(sink.messages) == 4
    suppressed = workflow.outbox_rows(wh, status="suppressed")
    assert all("no consent for marketing_email at send time" in r["last_error"] for r in suppressed)


def test_a_run_killed_after_the_server_accepted_is_settled_from_the_journal_not_resent(tmp_path: Path) -> None:
    """What a SIGKILL leaves: rows claimed (``sending``), some accepted by the server and journaled but not yet
    recorded. The next run records those as sent, with the payload they were sent with, and sends the rest."""
    wh = open_shop(tmp_path, 6)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", list(range(6)))
    workflow.evaluate(wh)
    s = settings(tmp_path)
    now = store.now()
    claimed = {r["profile_id"]: r for r in outbox.claim(wh, now)}
    assert len(claimed) == 6
    path = journal.path_for(s.data_dir, wh.url)
    died = journal.Journal(path)
    for i in (0, 4):  # the server accepted these two, then the sender was killed
        row = claimed[profile_of(wh, i)] | {"payload": json.dumps({"subject": f"Welcome Name{i}"})}
        died.accepted(row, now)
    died.close()
    with path.open("a") as f:
        f.write('{"id": "cut sho')  # a line a power loss cut: ignored (that message would be sent again)
    with smtp_sink() as sink:
        assert workflow.deliver(wh, settings(tmp_path, sink.port), now=now + timedelta(seconds=5)) == {"sent": 4}
        assert [len(sink.to(email_of(i))) for i in range(6)] == [0, 1, 1, 1, 0, 1]
    rows = {r["profile_id"]: r for r in workflow.outbox_rows(wh)}
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert rows[profile_of(wh, 0)]["sent_at"] == now
    shown = outbox.for_profile(wh, profile_of(wh, 4))
    assert shown[0]["subject"] == "Welcome Name4"
    assert path.stat().st_size == 0


def test_smtp_4xx_is_retried_with_backoff_and_5xx_is_dead_lettered_then_replayed(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0, 1, 2])
    workflow.evaluate(wh)
    with smtp_sink() as sink:
        sink.reject = {email_of(0): "451 4.7.1 greylisted, try later", email_of(1): "550 5.1.1 no such mailbox"}
        s = settings(tmp_path, sink.port)
        now = store.now()
        assert workflow.deliver(wh, s, now=now) == {"sent": 1, "retry": 1, "dead": 1}
        rows = {r["profile_id"]: r for r in workflow.outbox_rows(wh)}
        retry = rows[profile_of(wh, 0)]
        assert retry["status"] == "retry" and "451" in retry["last_error"]
        wait = (retry["due_at"] - now).total_seconds()
        assert outbox.RETRY_BASE / 2 <= wait <= outbox.RETRY_BASE
        assert "550" in rows[profile_of(wh, 1)]["last_error"]
        assert workflow.deliver(wh, s, now=now + timedelta(seconds=1)) == {}  # not due yet
        sink.reject = {}
        assert workflow.deliver(wh, s, now=now + timedelta(minutes=1)) == {"sent": 1}
        failed = workflow.outbox_rows(wh, failed=True)
        assert [r["profile_id"] for r in failed] == [profile_of(wh, 1)]
        assert workflow.replay(wh, automation="welcome")["replayed"] == 1
        assert workflow.deliver(wh, s, now=store.now() + timedelta(seconds=1)) == {"sent": 1}
        assert [len(sink.to(email_of(i))) for i in range(3)] == [1, 1, 1]


def test_a_wait_delays_the_step_and_the_goal_ends_the_flow(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    d = WELCOME | {"holdout": 0, "allow_no_holdout": True, "steps": [{"wait": {"days": 2}}, *WELCOME["steps"]]}
    workflow.create(wh, d)
    track(wh, "Signed Up", [0, 1, 2])
    workflow.evaluate(wh)
    track(wh, "Order Completed", [1], revenue=20.0)  # u1 reached the goal during the wait
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port)
        assert workflow.deliver(wh, s) == {}
        later = store.now() + timedelta(days=2, minutes=1)
        assert workflow.deliver(wh, s, now=later) == {"sent": 2, "exited": 1}
        assert sink.to(email_of(1)) == [] and len(sink.messages) == 2


def test_paused_automations_neither_enter_nor_send_and_the_jobs_run_them(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0])
    workflow.evaluate(wh)
    workflow.pause(wh, "welcome")
    track(wh, "Signed Up", [1])
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port)
        ctx = JobContext(warehouse=wh, settings=s)
        assert run_automations(ctx)["entered"] == 0  # paused: u1's trigger is passed over
        assert sink.messages == []
        workflow.resume(wh, "welcome")
        assert run_deliveries(ctx)["delivered"] == {"sent": 1}
        assert run_automations(ctx)["entered"] == 0
        assert [m["To"] for m in sink.messages] == [email_of(0)]


def test_reentry_policies_key_occurrences(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    base = WELCOME | {"holdout": 0, "allow_no_holdout": True}
    workflow.create(wh, base | {"name": "every", "reentry": "every_time"})
    workflow.create(wh, base | {"name": "weekly", "reentry": {"once_per_days": 7}})
    workflow.create(wh, base | {"name": "pro", "trigger": {"event": "Signed Up", "where": {"plan": "pro"}}})
    track(wh, "Signed Up", [0, 0, 1], resolve=False, plan="pro")
    track(wh, "Signed Up", [1], plan="free")
    got = {d["automation"]: d["entered"] for d in workflow.evaluate(wh)}
    assert got == {"every": 4, "weekly": 2, "pro": 2}
    track(wh, "Signed Up", [0], plan="pro")
    got = {d["automation"]: d["entered"] for d in workflow.evaluate(wh)}
    assert got == {"every": 1, "weekly": 0, "pro": 0}


def test_an_automation_does_not_act_on_triggers_from_before_it_existed(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    track(wh, "Signed Up", [0, 1])
    workflow.create(wh, WELCOME)
    assert workflow.evaluate(wh)[0]["entered"] == 0


def test_without_an_smtp_server_the_run_fails_naming_the_setting_and_the_message_waits(tmp_path: Path) -> None:
    from touchpoint.errors import ConfigError

    wh = open_shop(tmp_path, 1)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0])
    workflow.evaluate(wh)
    with pytest.raises(ConfigError, match="smtp_url"):
        workflow.deliver(wh, settings(tmp_path))
    row = workflow.outbox_rows(wh)[0]
    assert row["status"] == "retry" and "smtp_url" in row["last_error"]


def test_a_trigger_waits_for_the_profiles_to_catch_up(tmp_path: Path) -> None:
    """A sign-up that arrives with its consent is entered with that consent, under its final profile id."""
    from touchpoint.collect.store import write_messages
    from touchpoint.profiles.workflow import update

    wh = open_shop(tmp_path, 1)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    write_messages(
        wh,
        [
            {
                "type": "identify",
                "userId": "new",
                "traits": {"email": "new@people.test", "consent_marketing_email": True},
            },
            {"type": "track", "userId": "new", "event": "Signed Up"},
        ],
    )
    assert workflow.evaluate(wh)[0]["triggers"] == 0  # not resolved yet: not evaluated (and not lost)
    update(wh)
    decided = workflow.evaluate(wh)[0]
    assert decided["entered"] == 1 and decided["outbox"] == 1 and decided["suppressed"] == 0
    p = wh.table("profiles")
    new_id = wh.to_arrow(p.filter(p.user_id == "new").profile_id).to_pylist()[0]
    assert [r["profile_id"] for r in workflow.outbox_rows(wh)] == [new_id]


def test_the_jobs_skip_with_a_reason_when_nothing_is_defined(tmp_path: Path) -> None:
    from touchpoint.jobs import JOBS
    from touchpoint.jobs.runner import execute

    wh = open_shop(tmp_path, 1)
    for name, reason in (("automations", "no automations are defined"), ("deliveries", "no active automations")):
        run = execute(wh, settings(tmp_path), JOBS[name])
        assert run.status == "skipped" and reason in (run.error or "")


def test_entering_and_leaving_an_audience_trigger(tmp_path: Path) -> None:
    from touchpoint.audiences import workflow as audiences

    wh = open_shop(tmp_path, 4)
    audiences.create(wh, "vip", {"trait": "tier", "eq": "gold"})
    base = WELCOME | {"holdout": 0, "allow_no_holdout": True, "reentry": "every_time"}
    workflow.create(wh, base | {"name": "welcome-vip", "trigger": {"audience": "vip"}})
    workflow.create(wh, base | {"name": "miss-you", "trigger": {"audience": "vip", "on": "exit"}})
    set_traits(wh, {0: {"tier": "gold"}, 1: {"tier": "gold"}})
    audiences.refresh_audiences(wh)
    got = {d["automation"]: d["entered"] for d in workflow.evaluate(wh)}
    assert got == {"welcome-vip": 2, "miss-you": 0}
    set_traits(wh, {1: {"tier": "silver"}})
    audiences.refresh_audiences(wh)
    got = {d["automation"]: d["entered"] for d in workflow.evaluate(wh)}
    assert got == {"welcome-vip": 0, "miss-you": 1}
    rows = workflow.outbox_rows(wh, automation="miss-you")
    assert [r["profile_id"] for r in rows] == [profile_of(wh, 1)] and rows[0]["occurrence"].startswith("exit:")


def test_a_test_send_renders_for_one_profile_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    from touchpoint.config import reset_settings

    wh = open_shop(tmp_path, 1)
    workflow.create(wh, WELCOME)
    pid = profile_of(wh, 0)
    wh.close()
    with smtp_sink() as sink:
        monkeypatch.setenv("TOUCHPOINT_SMTP_URL", f"smtp://127.0.0.1:{sink.port}")
        monkeypatch.setenv("TOUCHPOINT_SMTP_SENDER", "Shop <news@shop.test>")
        reset_settings()
        args = ["automations", "test", "welcome", "--profile", pid, "--to", "me@shop.test", "--data", str(tmp_path)]
        code, out, err = run_cli(capsys, *args, "--json")
        reset_settings()
        assert code == 0, out + err
        step = json.loads(out)["steps"][0]
        assert step["rendered"]["subject"] == "Welcome Name0" and step["outcome"]["status"] == "sent"
        assert [m["Subject"] for m in sink.to("me@shop.test")] == ["[test] Welcome Name0"]
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    assert workflow.outbox_rows(wh) == []  # a test send is not a decision
    wh.close()
    code, out, _ = run_cli(
        capsys, "automations", "test", "welcome", "--profile", "nobody", "--data", str(tmp_path), "--json"
    )
    assert code != 0 and json.loads(out)["error"]["code"] == "not_found"
