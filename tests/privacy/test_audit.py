"""The audit log's chain: it verifies when untouched, and names the first entry that was edited or deleted;
appends from many threads at once never fork it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.privacy import audit
from touchpoint.warehouse import Warehouse


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    warehouse = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    yield warehouse
    warehouse.close()


def _fill(wh: Warehouse, n: int) -> list[audit.Entry]:
    return [
        audit.record(wh, actor=f"key:k{i % 3}", surface="api", action="profiles.read", subject=f"p-{i}", rows=1)
        for i in range(n)
    ]


def test_an_untouched_log_verifies_and_reports_its_head(wh: Warehouse) -> None:
    assert audit.verify(wh).to_dict() == {
        "ok": True,
        "checked": 0,
        "first_seq": 0,
        "head": {"seq": 0, "hash": audit.GENESIS},
        "broken": None,
    }
    written = _fill(wh, 5)
    result = audit.verify(wh, batch_rows=2)  # pages of 2: the paging joins the chain across pages
    assert result.ok and result.checked == 5
    assert (result.head_seq, result.head_hash) == (5, written[-1].hash)


@pytest.mark.parametrize(
    ("column", "value"),
    [("rows", 1000), ("actor", "key:someone-else"), ("subject", "p-999"), ("outcome", "not_found")],
)
def test_an_edited_entry_is_named(wh: Warehouse, column: str, value: object) -> None:
    _fill(wh, 6)
    with wh.write() as tx:
        tx.update("audit_log", {column: value}, key="seq", value=4)
    result = audit.verify(wh)
    assert not result.ok and result.broken_seq == 4 and result.checked == 3
    assert "entry 4 was changed" in (result.reason or "")


def test_an_edit_that_also_rewrites_the_hash_breaks_the_next_link(wh: Warehouse) -> None:
    written = _fill(wh, 6)
    forged = audit.chain_hash(written[2].hash, audit.canonical(4, written[3].at, "key:x", "api", "profiles.read",
                                                                "p-3", 1, "ok", None))  # fmt: skip
    with wh.write() as tx:
        tx.update("audit_log", {"actor": "key:x", "hash": forged}, key="seq", value=4)
    result = audit.verify(wh)
    assert not result.ok and result.broken_seq == 5 and "does not follow" in (result.reason or "")


def test_a_deleted_entry_is_named(wh: Warehouse) -> None:
    _fill(wh, 6)
    wh.delete("audit_log", "seq", [3])
    result = audit.verify(wh)
    assert not result.ok and result.broken_seq == 4
    assert result.reason == "entries 3 are missing (deleted) before entry 4"
    wh.delete("audit_log", "seq", [1])
    assert audit.verify(wh).broken_seq == 2  # the first entry deleted: entry 2 is no longer first


def test_renumbering_after_a_delete_is_caught_by_the_link(wh: Warehouse) -> None:
    _fill(wh, 4)
    wh.delete("audit_log", "seq", [2])
    with wh.write() as tx:
        tx.update("audit_log", {"seq": 2}, key="seq", value=3)
        tx.update("audit_log", {"seq": 3}, key="seq", value=4)
    result = audit.verify(wh)
    assert not result.ok and result.broken_seq == 2


def test_concurrent_appends_form_one_chain(wh: Warehouse) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: audit.record(wh, actor=f"key:t{i}", surface="api", action="x"), range(80)))
    result = audit.verify(wh)
    assert result.ok and result.checked == 80
    assert sorted(e.actor for e in audit.entries(wh, limit=1000)) == sorted(f"key:t{i}" for i in range(80))


def test_listing_filters_by_actor_action_and_time(wh: Warehouse) -> None:
    written = _fill(wh, 6)
    audit.record(wh, actor="cli:ana", surface="cli", action="query.run", rows=3)
    assert [e.seq for e in audit.entries(wh, actor="key:k1")] == [5, 2]
    assert [e.seq for e in audit.entries(wh, action="query.run")] == [7]
    assert [e.seq for e in audit.entries(wh, since=written[4].at)] == [7, 6, 5]
    assert audit.entries(wh, since=written[-1].at + timedelta(days=1)) == []
    assert [e.seq for e in audit.entries(wh, limit=2)] == [7, 6]


@settings(max_examples=25, deadline=None)
@given(
    details=st.lists(
        st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=20), st.none()), max_size=3),
        min_size=1,
        max_size=4,
    ),
    subject=st.one_of(st.none(), st.text(max_size=30)),
)
def test_any_content_round_trips_through_the_hash(details: list[dict[str, object]], subject: str | None) -> None:
    with Warehouse.open("duckdb://:memory:") as wh:
        for detail in details:
            audit.record(wh, actor="cli:t", surface="cli", action="a", subject=subject, detail=detail)
        assert audit.verify(wh).ok


def test_the_subject_pseudonym_is_keyed_by_the_installation_and_still_found_by_its_identifier(
    tmp_path: Path,
) -> None:
    from touchpoint.collect import suppression

    email = "ana@example.com"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        Warehouse.open(f"duckdb://{tmp_path / 'a' / 'wh.duckdb'}") as a,
        Warehouse.open(f"duckdb://{tmp_path / 'b' / 'wh.duckdb'}") as b,
    ):
        name = audit.pseudonym(a, email)
        # unkeyed, anyone could confirm a guessed email: sha256 of the guess would equal the subject
        assert name != audit.legacy_pseudonym(email) and email not in name
        assert name == audit.pseudonym(a, email) != audit.pseudonym(b, email)  # another key, another name
        # one key file, the suppression list's, and no second copy of key handling
        assert (tmp_path / "a" / suppression.KEY_FILE).exists()
        assert suppression.key(a) == (tmp_path / "a" / suppression.KEY_FILE).read_text().strip().encode()
        audit.record(a, actor="cli:x", surface="cli", action="consent.read", subject=audit.legacy_pseudonym(email))
        audit.record(a, actor="cli:x", surface="cli", action="consent.set", subject=name)
        audit.record(a, actor="cli:x", surface="cli", action="consent.set", subject=audit.pseudonym(a, "bob@x.org"))
        audit.record(a, actor="cli:x", surface="cli", action="profiles.read", subject="prf_1")
        found = [e.action for e in audit.entries(a, subject="  ANA@example.com")]
        assert found == ["consent.set", "consent.read"]  # the keyed entry and the one written before the key
        assert [e.action for e in audit.entries(a, subject="prf_1")] == ["profiles.read"]
        assert audit.entries(b, subject=email) == []
        assert audit.verify(a).ok
    with Warehouse.open(f"duckdb://{tmp_path / 'a' / 'wh.duckdb'}") as again:  # the key outlives the process
        suppression._keys.pop(again, None)
        assert audit.pseudonym(again, email) == name
