"""Retention: a rule deletes exactly the rows older than its cut-off and logs what went; pruning the audit log
keeps its chain verifiable; a rule for a table that cannot have one is refused at start, naming the setting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.errors import ConfigError
from touchpoint.jobs import JOBS, execute
from touchpoint.privacy import audit, retention
from touchpoint.warehouse import Warehouse

NOW = datetime(2026, 12, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    warehouse = Warehouse.open(f"duckdb://{tmp_path_factory.mktemp('retention') / 'wh.duckdb'}")
    yield warehouse
    warehouse.close()


def _events(ages: list[timedelta]) -> pa.Table:
    received = [NOW - age for age in ages]
    return pa.table(
        {
            "message_id": [f"m{i}" for i in range(len(ages))],
            "type": ["track"] * len(ages),
            "event": ["Viewed"] * len(ages),
            "user_id": [f"u{i}" for i in range(len(ages))],
            "timestamp": received,
            "received_at": received,
        }
    )


_age = st.one_of(
    st.integers(0, 2000).map(lambda d: timedelta(days=d)),  # whole days, on and around the cut-off
    st.integers(0, 2000 * 86400).map(lambda s: timedelta(seconds=s)),
    st.sampled_from([timedelta(days=761), timedelta(days=761, microseconds=1), timedelta(days=761, microseconds=-1)]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ages=st.lists(_age, max_size=40), days=st.sampled_from([1, 30, 761]))
def test_a_rule_deletes_exactly_the_rows_older_than_its_cutoff(wh: Warehouse, ages: list[timedelta], days: int) -> None:
    wh.delete("events")
    wh.append("events", _events(ages))
    before = audit.entries(wh, limit=1)
    deleted = retention.apply(wh, retention.Rule("events", "received_at", days), now=NOW)
    cutoff = NOW - timedelta(days=days)
    expected_kept = sorted(f"m{i}" for i, age in enumerate(ages) if NOW - age >= cutoff)
    kept = sorted(wh.to_arrow(wh.table("events").message_id).to_pylist())
    assert kept == expected_kept
    assert deleted == len(ages) - len(expected_kept)
    after = audit.entries(wh, limit=1)
    if deleted == 0:
        assert after == before  # nothing went: nothing to log
    else:
        (entry,) = [e for e in after if not before or e.seq > before[0].seq]
        assert (entry.actor, entry.surface, entry.action, entry.subject, entry.rows) == (
            "job:retention",
            "job",
            "retention.delete",
            "events",
            deleted,
        )
        assert '"cutoff":"' + cutoff.isoformat() in (entry.detail or "")
    assert audit.verify(wh).ok


def test_the_job_applies_the_defaults_and_the_settings(tmp_path: Path) -> None:
    with Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}") as wh:
        now = datetime.now().replace(microsecond=0)  # the job measures from the clock
        wh.append("events", _events([timedelta(0)]).set_column(5, "received_at", pa.array([now - timedelta(days=800)])))
        quarantine = pa.table(
            {
                "id": ["q-old", "q-new"],
                "received_at": [now - timedelta(days=40), now - timedelta(days=3)],
                "reason": ["bad", "bad"],
                "payload": ["{}", "{}"],
            }
        )
        wh.append("quarantine", quarantine)
        run = execute(wh, Settings(data_dir=tmp_path, retention={"quarantine": 2}), JOBS["retention"])
        assert run.status == "succeeded", run.error
        assert run.rows == 3  # the 800-day-old event (default: 761 days) and both quarantine records (2 days)
        assert wh.count("events") == 0 and wh.count("quarantine") == 0
        run = execute(wh, Settings(data_dir=tmp_path, retention={"quarantine": 2}), JOBS["retention"])
        assert run.rows == 0
        logged = {e.subject: e.rows for e in audit.entries(wh, action="retention.delete")}
        assert logged == {"events": 1, "quarantine": 2}


def test_pruning_the_audit_log_keeps_it_verifiable(tmp_path: Path) -> None:
    with Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}") as wh:
        for i in range(6):
            audit.record(wh, actor="key:k", surface="api", action="profiles.read", subject=f"p{i}")
        future = datetime.now() + timedelta(days=400)
        assert retention.apply(wh, retention.Rule("audit_log", "at", 365), now=future) == 5  # the newest stays
        assert [e.seq for e in audit.entries(wh)] == [7, 6]
        result = audit.verify(wh)
        assert result.ok and result.first_seq == 6 and result.head_seq == 7
        audit.record(wh, actor="key:k", surface="api", action="profiles.read")
        audit.record(wh, actor="key:k", surface="api", action="profiles.read")
        wh.delete("audit_log", "seq", [8])  # a deletion that is not retention's is still caught
        assert audit.verify(wh).broken_seq == 9


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"nope": 3}, "retention.nope: there is no table 'nope'"),
        ({"profiles": 30}, "retention.profiles: the table 'profiles' has no time column"),
        ({"spend": 30}, "retention.spend: the table 'spend' has no time column"),
    ],
)
def test_a_rule_a_table_cannot_have_stops_the_server_at_start(rule: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        create_app(Settings(retention=rule), run_jobs=False)
    assert "events" in (caught.value.hint or "")  # the hint lists the tables a rule can name


@pytest.mark.parametrize("days", [0, -5, 1.5, "forever", True, 99_999])
def test_a_rule_that_is_not_days_is_refused_by_name(days: object) -> None:
    with pytest.raises(ValueError, match=r"retention\.events = .* is not a number of days"):
        Settings(retention={"events": days})


def test_never_keeps_a_table_and_days_override_a_default() -> None:
    rules = retention.rules(Settings(retention={"events": "never", "audit_log": 3650, "job_runs": 90}))
    assert [(r.table, r.days) for r in rules] == [("quarantine", 30), ("audit_log", 3650), ("job_runs", 90)]
