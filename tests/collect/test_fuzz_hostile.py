"""The fuzz harness: hostile input through a real server, replay and the file importers.

Each example mixes items that must be stored with items that must be quarantined (see
``tests/collect/hostile.py``) and checks, on a real uvicorn server on 127.0.0.1 reached by a
real httpx client with keep-alive: never a 5xx; every good item stored exactly once; every bad
item quarantined with the field named; the server answers again on the same connection. The
same items go through ``POST /v1/quarantine/replay`` and ``touchpoint import events|orders|spend``
(which must exit 0 and count what is new).

Budget: a few seconds per target by default (CI). ``TP_FUZZ_EXAMPLES=N`` gives the HTTP batch
target N examples and the others as many in proportion to their defaults (the file importers are
the slowest); ``scripts/fuzz`` runs it for a given time (see docs/collect.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings
from tests.api.live import LiveApp, live_app
from tests.collect.hostile import Item, dump, encodings, items

from touchpoint.cli.main import main as cli_main
from touchpoint.collect.normalize import EventRows, Rejected, utcnow
from touchpoint.collect.store import write_rows
from touchpoint.warehouse import Warehouse

EXAMPLES = int(os.environ.get("TP_FUZZ_EXAMPLES", "0"))


def budget(default: int) -> Any:
    """CI runs ``default`` examples; ``TP_FUZZ_EXAMPLES`` scales every target alike (50 -> N for HTTP batches)."""
    return settings(
        max_examples=max(default, EXAMPLES * default // 50) if EXAMPLES else default,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class Live(LiveApp):
    """touchpoint's app served by uvicorn in a thread on 127.0.0.1, and a keep-alive client."""

    def rows(self, sql: str) -> list[dict[str, Any]]:
        assert self.app.state.touchpoint.committer.flush(10)  # with the collector log a 200 precedes the load
        return self.warehouse.query(sql).to_pylist()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_app(tmp_path_factory.mktemp("fuzz-live") / "data") as served:
        yield Live(**vars(served))


def _connection(response: httpx.Response) -> Any:
    """The client's end of the TCP connection that carried ``response`` (to prove keep-alive held)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def _still_answers(live: Live, before: Any) -> None:
    r = live.http.get("/healthz")
    assert r.status_code == 200, r.text
    assert _connection(r) == before, "the keep-alive connection was reset"


def _check_stored_once(live: Live, good: list[Item]) -> None:
    if not good:
        return
    ids = ", ".join(f"'{i.marker}'" for i in good)
    counts = {
        r["message_id"]: r["n"]
        for r in live.rows(f"SELECT message_id, count(*) AS n FROM events WHERE message_id IN ({ids}) GROUP BY 1")
    }
    for item in good:
        assert counts.get(item.marker) == 1, (
            f"{item.kind} stored {counts.get(item.marker, 0)} times: {item.body[:300]!r}"
        )


def _check_quarantined(rows: Any, bad: list[Item]) -> None:
    """Every bad item: not in ``events``, in ``quarantine`` (once) with a field."""
    for item in bad:
        stored = rows(f"SELECT count(*) AS n FROM events WHERE message_id = '{item.marker}'")[0]["n"]
        assert stored == 0, f"{item.kind} was stored: {item.body[:300]!r}"
        records = rows(f"SELECT field, reason FROM quarantine WHERE contains(payload, '{item.marker}')")
        assert len(records) == 1, f"{item.kind}: {len(records)} quarantine records: {item.body[:300]!r}"
        assert records[0]["field"], f"{item.kind}: no field named ({records[0]['reason']}): {item.body[:300]!r}"


def _check_nowhere(live: Live, batch: list[Item]) -> None:
    for item in batch:
        assert not live.rows(f"SELECT 1 FROM events WHERE message_id = '{item.marker}'")
        assert not live.rows(f"SELECT 1 FROM quarantine WHERE contains(payload, '{item.marker}')")


# ---- HTTP: /v1/batch -----------------------------------------------------------------------------


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Item], Any]:
    batch = draw(st.lists(items(), min_size=1, max_size=6))
    body = b'{"batch":[' + b",".join(i.body for i in batch) + b"]}"
    return batch, draw(encodings(body))


@budget(50)
@given(case=batches())
def test_hostile_batches_over_http(live: Live, case: tuple[list[Item], Any]) -> None:
    batch, body = case
    first = live.http.get("/healthz")
    headers = {"Authorization": f"Bearer {live.write_key}", **body.headers}
    r = live.http.post("/v1/batch", content=body.content, headers=headers)
    assert r.status_code < 500, r.text
    _still_answers(live, _connection(first))
    if not body.usable:
        assert r.status_code in (400, 413), r.text
        assert r.json()["error"]["message"]
        _check_nowhere(live, batch)
        return
    assert r.status_code == 200, r.text
    answer = r.json()
    good = [i for i in batch if i.good]
    bad = [i for i in batch if not i.good]
    assert (answer["accepted"], answer["quarantined"]) == (len(good), len(bad)), answer
    flagged = {e["index"]: e["field"] for e in answer.get("errors", [])}
    assert sorted(flagged) == [n for n, i in enumerate(batch) if not i.good]
    assert all(flagged.values()), answer
    _check_stored_once(live, good)
    _check_quarantined(live.rows, bad)


# ---- HTTP: the single-event paths ----------------------------------------------------------------


@budget(50)
@given(item=items(), path_style=st.sampled_from(["long", "short"]))
def test_hostile_single_events_over_http(live: Live, item: Item, path_style: str) -> None:
    kind = "track"
    if item.good:
        kind = json.loads(item.body)["type"]
    path = f"/v1/{kind}" if path_style == "long" else f"/v1/{kind[0]}"
    first = live.http.get("/healthz")
    r = live.http.post(path, content=item.body, headers={"Authorization": f"Bearer {live.write_key}"})
    assert r.status_code < 500, r.text
    _still_answers(live, _connection(first))
    if item.good:
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        _check_stored_once(live, [item])
    else:
        assert r.status_code == 400, r.text
        answer = r.json()
        assert answer["quarantined"] == 1 and answer["field"], answer
        _check_quarantined(live.rows, [item])


# ---- replay ----------------------------------------------------------------------------------------


@budget(15)
@given(batch=st.lists(items(), min_size=1, max_size=5), oversize=st.booleans())
def test_hostile_replay(live: Live, batch: list[Item], oversize: bool) -> None:
    """Quarantined payloads replayed over HTTP: the good ones stored once, the bad ones stay, no 5xx."""
    if oversize:  # a valid event over the 32 KB limit must stay in quarantine
        marker = f"fz-big-{time.monotonic_ns()}"
        pad = {"type": "track", "userId": "u", "event": "Big", "messageId": marker, "properties": {"p": "x" * 33_000}}
        batch = [*batch, Item(marker, dump(pad), False, "bad: over 32 KB")]
    rows = EventRows()
    now = utcnow()
    for item in batch:
        rows.reject(Rejected("fuzz", None, item.body.decode("utf-8", "backslashreplace"), None, "fuzz"), now, "fuzz")
    write_rows(live.warehouse, rows)
    markers = ", ".join(f"'{i.marker}'" for i in batch)
    ids = {
        r["marker"]: r["id"]
        for r in live.rows(
            "SELECT id, regexp_extract(payload, 'fz-[a-z0-9-]+') AS marker FROM quarantine "
            f"WHERE regexp_extract(payload, 'fz-[a-z0-9-]+') IN ({markers})"
        )
    }
    assert len(ids) == len(batch)
    first = live.http.get("/healthz")
    auth = {"Authorization": f"Bearer {live.admin_key}"}
    for attempt in range(2):  # a second replay changes nothing
        r = live.http.post("/v1/quarantine/replay", json=list(ids.values()), headers=auth)
        assert r.status_code == 200, r.text
        answer = r.json()
        if attempt == 0:
            assert sorted(answer["replayed_ids"]) == sorted(ids[i.marker] for i in batch if i.good), answer
        else:
            assert answer["replayed"] == 0
        assert {x["id"] for x in answer["still_invalid"]} == {ids[i.marker] for i in batch if not i.good}
    _still_answers(live, _connection(first))
    _check_stored_once(live, [i for i in batch if i.good])
    for item in batch:
        if not item.good:
            assert not live.rows(f"SELECT 1 FROM events WHERE message_id = '{item.marker}'"), item.kind


# ---- files, through the CLI --------------------------------------------------------------------


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli_main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()


def _import(kind: str, path: Path, data: Path) -> dict[str, Any]:
    code, out = _cli("import", kind, str(path), "--data", str(data), "--json", "--quiet")
    assert code == 0, f"touchpoint import {kind} exited {code}: {out}"
    report: dict[str, Any] = json.loads(out)
    assert report["received"] == (
        report["stored"] + report["duplicates"] + report["quarantined"] + report["already_quarantined"]
    ), report
    return report


def _reader(data: Path) -> Any:
    def rows(sql: str) -> list[dict[str, Any]]:
        wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True)
        try:
            return wh.query(sql).to_pylist()
        finally:
            wh.close()

    return rows


@budget(6)
@given(batch=st.lists(items(), min_size=1, max_size=8), garbage=st.lists(st.binary(max_size=30), max_size=2))
def test_hostile_jsonl_import(files_dir: Path, batch: list[Item], garbage: list[bytes]) -> None:
    data = files_dir / "data"
    path = files_dir / "events.jsonl"
    lines = [i.body.replace(b"\n", b" ") for i in batch]
    junk = [g.replace(b"\n", b" ").replace(b"\r", b" ") for g in garbage if g.strip()]
    path.write_bytes(b"\n".join(lines + junk) + b"\n")
    good = [i for i in batch if i.good]
    bad = [i for i in batch if not i.good]
    first = _import("events", path, data)
    assert first["stored"] == len(good), first
    again = _import("events", path, data)  # a rerun adds nothing and says its rejects are known
    assert (again["stored"], again["duplicates"], again["quarantined"]) == (0, len(good), 0), again
    assert again["already_quarantined"] == first["quarantined"] + first["already_quarantined"], again
    rows = _reader(data)
    ids = ", ".join(f"'{i.marker}'" for i in good) or "''"
    assert rows(f"SELECT count(*) AS n FROM events WHERE message_id IN ({ids})")[0]["n"] == len(good)
    _check_quarantined(rows, bad)


_CSV_FAULTS = {
    "invalid utf-8": ("event", b"Sign\xffed"),
    "out of range": ("properties.revenue", b"1e400"),
    "control character": ("event", b"a\x01b"),
    "old timestamp": ("timestamp", b"0001-01-01T00:00:00+01:00"),
    "far timestamp": ("timestamp", b"9999-12-31T23:59:59-05:00"),
    "long name": ("event", b"x" * 600),
}


@budget(6)
@given(rows=st.lists(st.sampled_from([None, *_CSV_FAULTS]), min_size=1, max_size=8))
def test_hostile_csv_import(files_dir: Path, rows: list[str | None]) -> None:
    data = files_dir / "data-csv"
    path = files_dir / "events.csv"
    columns = ["messageId", "type", "userId", "event", "timestamp", "properties.revenue"]
    lines = [",".join(columns).encode()]
    markers: list[tuple[str, str | None]] = []
    for fault in rows:
        marker = f"fz-{os.urandom(12).hex()}"
        cells = {"messageId": marker.encode(), "type": b"track", "userId": b"u1", "event": b"Signed Up"}
        cells |= {"timestamp": b"2026-01-01T00:00:00Z", "properties.revenue": b"10"}
        if fault is not None:
            event(f"csv: {fault}")
            column, value = _CSV_FAULTS[fault]
            cells[column] = value
        lines.append(b",".join(cells[c] for c in columns))
        markers.append((marker, fault))
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = _import("events", path, data)
    good = [m for m, f in markers if f is None]
    assert report["stored"] == len(good), report
    read = _reader(data)
    for marker, fault in markers:
        stored = read(f"SELECT event FROM events WHERE message_id = '{marker}'")
        if fault is None:
            assert stored == [{"event": "Signed Up"}]
            continue
        assert not stored, fault
        records = read(f"SELECT field FROM quarantine WHERE contains(payload, '{marker}')")
        assert len(records) == 1 and records[0]["field"], (fault, records)
    assert not read("SELECT 1 FROM events WHERE contains(event, '\\xff') OR contains(user_id, '\\xff')")


@budget(4)
@given(
    orders=st.lists(st.sampled_from(["ok", "1e400", "-1e999", "nan", "inf", "utf8", "date", "1e16"]), min_size=1),
    spend=st.lists(st.sampled_from(["ok", "1e400", "nan", "utf8", "date", "clicks", "negative"]), min_size=1),
)
def test_hostile_orders_and_spend_import(files_dir: Path, orders: list[str], spend: list[str]) -> None:
    data = files_dir / "data-orders"
    opath = files_dir / "orders.csv"
    olines = [b"customer_id,order_id,timestamp,revenue"]
    omarks = []
    for fault in orders:
        event(f"orders: {fault}")
        oid = f"fz-{os.urandom(8).hex()}"
        revenue = fault.encode() if fault in ("1e400", "-1e999", "nan", "inf", "1e16") else b"12.5"
        customer = b"c\xff1" if fault == "utf8" else b"c1"
        stamp = b"0001-01-01T00:00:00+01:00" if fault == "date" else b"2026-01-01T00:00:00Z"
        olines.append(b",".join([customer, oid.encode(), stamp, revenue]))
        omarks.append((oid, fault))
    opath.write_bytes(b"\n".join(olines) + b"\n")
    report = _import("orders", opath, data)
    assert report["stored"] == sum(f == "ok" for _, f in omarks), report
    read = _reader(data)
    for oid, fault in omarks:
        stored = read(f"SELECT revenue FROM events WHERE message_id = 'order-{oid}'")
        if fault == "ok":
            assert stored == [{"revenue": 12.5}]
        else:
            assert not stored, fault
            records = read(f"SELECT field FROM quarantine WHERE contains(payload, '{oid}')")
            assert len(records) == 1 and records[0]["field"], (fault, records)

    spath = files_dir / "spend.csv"
    slines = [b"date,channel,campaign,amount,clicks"]
    smarks = []
    for fault in spend:
        event(f"spend: {fault}")
        campaign = f"fz-{os.urandom(8).hex()}"
        amount = {"1e400": b"1e400", "nan": b"nan", "negative": b"-5"}.get(fault, b"3.5")
        channel = b"se\xffarch" if fault == "utf8" else b"search"
        day = b"0001-01-01" if fault == "date" else b"2026-01-01"
        clicks = b"1e300" if fault == "clicks" else b"4"
        slines.append(b",".join([day, channel, campaign.encode(), amount, clicks]))
        smarks.append((campaign, fault))
    spath.write_bytes(b"\n".join(slines) + b"\n")
    report = _import("spend", spath, data)
    assert report["stored"] == sum(f == "ok" for _, f in smarks), report
    for campaign, fault in smarks:
        stored = read(f"SELECT amount FROM spend WHERE campaign = '{campaign}'")
        if fault == "ok":
            assert stored == [{"amount": 3.5}]
        else:
            assert not stored, fault
            records = read(f"SELECT field FROM quarantine WHERE contains(payload, '{campaign}')")
            assert len(records) == 1 and records[0]["field"], (fault, records)
