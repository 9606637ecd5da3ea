"""The engine file import (collect.engine_import) against the HTTP path: same items, same verdicts.

Random items (valid, invalid and hostile: bad UTF-8, deep nesting, huge numbers, odd dates,
repeated keys, duplicates) go through the collect workflow the ``/v1/batch`` route uses
(:func:`touchpoint.collect.body.rows_from_body` and :func:`touchpoint.collect.store.write_rows`) and,
as lines of a JSONL file, through the engine import. What is stored and what is quarantined must be
identical, field by field.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from tests.collect.hostile import Item, items

from touchpoint.collect import engine_import, rules, spec, suppression
from touchpoint.collect.body import Limits, rows_from_body
from touchpoint.collect.files import ImportReport, import_events
from touchpoint.collect.files import lines as file_lines
from touchpoint.collect.readers import Tally
from touchpoint.collect.store import write_rows
from touchpoint.config import override_settings
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse

RECEIVED = datetime(2026, 11, 2, 9, 30)
_files = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-import")


def _canonical(draw: st.DrawFn, n: int) -> bytes:
    """A valid event in canonical JSON (what SDKs send), so the engine decides it itself."""
    kind = draw(st.sampled_from(["track", "page", "identify", "group", "alias", "screen", "Track ", "nope"]))
    event: dict[str, Any] = {"type": kind, "messageId": f"c{n}-{draw(st.integers(0, 3))}"}
    event[draw(st.sampled_from(["userId", "anonymousId"]))] = draw(
        st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), st.just(""))
    )
    if draw(st.booleans()):
        event["event"] = draw(
            st.sampled_from(["Order Completed", " Signed Up ", "", "x" * 513, "a\u0001b", "a\u007fb"])
        )
    for field in ("timestamp", "sentAt", "originalTimestamp"):
        if draw(st.booleans()):
            event[field] = draw(
                st.sampled_from(
                    [
                        "2026-11-01T10:00:00.123Z",
                        "2026-11-01T10:00:00+05:30",
                        "2026-11-01",
                        "2026-11-01 10:00",
                        "2026-02-30T10:00:00Z",
                        "1969-12-31T23:59:59Z",
                        "2201-01-01T00:00:00Z",
                        "2026-11-01T09:58:00Z",
                        "yesterday",
                        "",
                        5,
                        True,
                        None,
                        {"at": "2026-11-01"},
                    ]
                )
            )
    for field in ("name", "category", "writeKey"):
        if draw(st.integers(0, 3)) == 0:
            event[field] = draw(st.sampled_from(["Home", " Shoes ", "", 7, None, ["x"], "a\u0001b"]))
    if kind == "group" or draw(st.booleans()):
        event["groupId"] = draw(st.sampled_from(["g1", 7, True, None]))
    if kind == "alias" or draw(st.booleans()):
        event["previousId"] = draw(st.sampled_from(["p1", "", 3.5]))
    properties: dict[str, Any] = {}
    for key in ("revenue", "total", "value"):
        if draw(st.booleans()):
            properties[key] = draw(st.sampled_from([12.5, 3, "7.25", "EUR", True, 1e16, -2e15, None, {"a": 1}]))
    for key in ("currency", "order_id", "orderId", "url", "path", "referrer", "email"):
        if draw(st.booleans()):
            properties[key] = draw(
                st.sampled_from(["eur", " o-1 ", 42, 4.5, "", "A@B.example", "https://s.example/x?utm_source=n"])
            )
    if properties or draw(st.booleans()):
        event["properties"] = properties
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["page"] = draw(
            st.sampled_from(
                [
                    {"url": "https://shop.example/p/q?a=1&utm_source=news&utm_medium=&utm_medium=mail#x"},
                    {"url": "shop.example/p?utm_campaign=a%20b"},
                    {"url": "https://h.example", "path": "/own", "referrer": "r"},
                    "home",
                ]
            )
        )
    if draw(st.booleans()):
        context["campaign"] = draw(st.sampled_from([{}, {"source": "ads", "name": 5}, {"medium": 1.5}]))
    if draw(st.booleans()):
        context["traits"] = {"email": draw(st.sampled_from(["Ann@Example.COM", "no-at", "É@x.example"]))}
    if context:
        event["context"] = context
    if draw(st.booleans()):
        event["traits"] = {"email": draw(st.sampled_from([" Bob@Example.com ", 5, "none"]))}
    return msgspec.json.encode(event)


@st.composite
def mixed(draw: st.DrawFn) -> list[bytes]:
    n = next(_files)
    lines = [_canonical(draw, n) for _ in range(draw(st.integers(0, 60)))]
    hostile: list[Item] = draw(st.lists(items(), max_size=30))
    lines += [item.body for item in hostile if b"\n" not in item.body and b"\r" not in item.body]
    if lines and draw(st.booleans()):
        lines.append(lines[0])  # a duplicate line: stored once
    return draw(st.permutations(lines))


def _rows(wh: Warehouse, table: str) -> list[dict[str, Any]]:
    rows = wh.to_arrow(wh.table(table)).to_pylist()
    return sorted(rows, key=lambda r: msgspec.json.encode(r, enc_hook=str))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=mixed())
def test_http_and_engine_import_store_and_quarantine_the_same(folder: Path, lines: list[bytes]) -> None:
    _same_in_both(folder, lines)


_VALID = {"type": "track", "messageId": "m", "userId": "u", "event": "Viewed", "timestamp": "2026-11-01T10:00:00Z"}
_ODD_VALUES = (5, -1.5, True, None, "", " x ", {"a": 1}, [1], "2026-11-01T10:00:00Z")


def test_each_field_of_each_json_type_is_judged_alike(folder: Path) -> None:
    """Every top-level field of the spec, and the nested values the rules read, set in turn to a value of each
    JSON type in an otherwise valid event: the engine stores and refuses exactly what the Python judge does
    (an originalTimestamp of the wrong type beside a timestamp was once accepted by the engine alone)."""
    paths = [(field,) for field in (*spec.Message.__struct_fields__,)]
    paths += [("properties", key) for key in (*rules.AMOUNT_PATHS, "currency", "order_id", "email", "url")]
    paths += [("context", "page"), ("context", "page", "url"), ("context", "campaign", "source")]
    paths += [("context", "traits", "email"), ("traits", "email")]
    lines = []
    for n, (path, value) in enumerate(itertools.product(paths, _ODD_VALUES)):
        event: dict[str, Any] = {**_VALID, "messageId": f"m{n}"}
        if path[0] == "messageId":
            event["anonymousId"] = f"a{n}"  # its own id when the messageId is refused or absent
        at = event
        for key in path[:-1]:
            at = at.setdefault(key, {}) if isinstance(at.get(key, {}), dict) else at
        at[path[-1]] = value
        lines.append(msgspec.json.encode(event))
    _same_in_both(folder, lines)


@pytest.mark.parametrize("denied", ["exclude", "drop"])
def test_repeated_ids_of_erased_people_and_denied_consent_are_judged_alike(folder: Path, denied: str) -> None:
    """A messageId sent by an erased person and by someone else, or by events whose consent denies analytics
    (kept out of analysis, or dropped): both paths drop the erased person's events first, read the consent of
    every line, then store an id's first event left (the engine import once kept the erased person's line as
    the id's first, then dropped it, and lost the other person's event)."""
    override_settings(analytics_denied=denied)
    no = {"consent": {"categoryPreferences": {"analytics": False}}}
    events = [
        {"messageId": "X", "userId": "bob", "event": "A"},
        {"messageId": "X", "userId": "alice", "event": "B"},
        {"messageId": "W", "userId": "alice", "event": "A"},
        {"messageId": "W", "userId": "bob", "event": "B"},
        {"messageId": "Y", "userId": "u1", "event": "A"},
        {"messageId": "Y", "userId": "u1", "event": "B", "context": no},
        {"messageId": "Z", "userId": "u2", "event": "A", "context": no},
        {"messageId": "Z", "userId": "u2", "event": "B"},
        {"messageId": "V", "userId": "bob", "event": "A", "context": no},
    ]
    lines = [msgspec.json.encode({"type": "track", **event}) for event in events]

    def erase_bob(wh: Warehouse) -> None:
        with wh.write() as tx:
            suppression.add(wh, tx, [("user_id", "bob")], "erasure-1")
        suppression.forget(wh)

    _same_in_both(folder, lines, erase_bob)


def _same_in_both(folder: Path, lines: list[bytes], setup: Callable[[Warehouse], None] | None = None) -> None:
    """``lines`` sent to the HTTP path (one batch each) and imported through the engine: the same events stored,
    the same quarantine records and the same consent recorded. ``setup`` runs on both warehouses first."""
    http = Warehouse.open("duckdb://:memory:")
    files = Warehouse.open("duckdb://:memory:")
    try:
        for wh in (http, files) if setup else ():
            setup(wh)  # type: ignore[misc]
        refused = []
        for line in lines:
            try:
                rows, _ = rows_from_body(
                    b'{"batch":[' + line + b"]}", "batch", received_at=RECEIVED, source="s", limits=Limits()
                )
            except InvalidInput:  # HTTP refuses the request as a whole (not JSON): the file quarantines it
                refused.append(line)
                continue
            write_rows(http, rows)
        path = folder / f"items-{next(_files)}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        report = ImportReport(file=str(path))
        engine_import.import_lines(
            files,
            file_lines(path, "jsonl", None, read := Tally()),
            read,
            name=path.name,
            source="s",
            chunk_events=10_000,
            max_event_bytes=32 * 1024,
            progress=None,
            report=report,
            received_at=RECEIVED,
        )

        def keyed(row: dict[str, Any]) -> dict[str, Any]:
            # without messageId HTTP draws a random id, a file a hash of the line: compare the rest
            return {**row, "message_id": None} if row["message_id"].startswith("tp-") else row

        assert sorted(map(repr, map(keyed, _rows(http, "events")))) == sorted(
            map(repr, map(keyed, _rows(files, "events")))
        )
        # (a repeated bad line is one HTTP record, its retries folded, but one record per line of a file)
        fields = ("reason", "field", "payload", "message_id")
        from_http = {tuple(r[f] for f in fields) for r in _rows(http, "quarantine")}
        from_file = {tuple(r[f] for f in fields) for r in _rows(files, "quarantine")}
        refused_payloads = {line.decode("utf-8", "backslashreplace") for line in refused}
        assert {r for r in from_file if r[2] not in refused_payloads} == from_http
        assert refused_payloads <= {r[2] for r in from_file}
        consent = ("identifier_type", "identifier", "purpose", "granted", "source", "proof", "valid_from")
        assert [tuple(r[c] for c in consent) for r in _rows(http, "consent_history")] == [
            tuple(r[c] for c in consent) for r in _rows(files, "consent_history")
        ]
    finally:
        http.close()
        files.close()


_URL_PIECES = ["https://", "//", "/", "?", "#", "&", "=", "a", "b/c", "%20", "+", " ", "utm_", "utm_source", "utm_term"]


@st.composite
def _urls(draw: st.DrawFn) -> str:
    """A page URL: a host or none, a path, a query of repeated, empty and odd pairs, a fragment holding tags."""
    pair = st.tuples(
        st.sampled_from(["utm_source", "utm_term", "utm_", "a", ""]),
        st.sampled_from(["=", "=x", "= y ", "=%20", "=+", "=a=b", "=?", ""]),
    ).map("".join)
    url = draw(st.sampled_from(["", "https://h.example", "//h", "h.example", "https://h.example:8080"]))
    url += draw(st.sampled_from(["", "/", "/p", "/p/q", "p", "/p//q"]))
    pairs = draw(st.lists(pair, max_size=5))
    if pairs or draw(st.booleans()):
        url += "?" + "&".join(pairs)
    if draw(st.booleans()):
        url += "#" + draw(st.sampled_from(["", "utm_source=z", "x?utm_term=q"]))
    return url


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    urls=st.lists(
        st.one_of(_urls(), st.lists(st.sampled_from(_URL_PIECES), max_size=14).map("".join)), min_size=100, max_size=300
    )
)
def test_page_urls_give_the_same_tags_and_path(folder: Path, urls: list[str]) -> None:
    """The UTM tags and path the engine reads from a page URL (string searches) are those ``_utm_from_url``
    reads, for URLs made of the pieces its rules turn on: repeated and empty keys, a fragment, no host."""
    path = folder / f"urls-{next(_files)}.jsonl"
    events = [
        {"type": "page", "messageId": f"u{i}", "anonymousId": "a", "properties": {"url": url}}
        for i, url in enumerate(urls)
    ]
    path.write_bytes(b"\n".join(map(msgspec.json.encode, events)) + b"\n")
    engine, python = Warehouse.open("duckdb://:memory:"), Warehouse.open("duckdb://:memory:")
    try:
        import_events(engine, path, engine=True)
        import_events(python, path, engine=False)
        columns = ("message_id", "url", "path", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
        assert [{c: r[c] for c in columns} for r in _rows(engine, "events")] == [
            {c: r[c] for c in columns} for r in _rows(python, "events")
        ]
    finally:
        engine.close()
        python.close()


def test_the_engine_decides_canonical_lines_itself(folder: Path) -> None:
    """Typical SDK events are judged by the engine, not handed back to the Python judge one by one."""
    path = folder / "plain.jsonl"
    lines = [
        msgspec.json.encode(
            {
                "type": "page",
                "messageId": f"m{i}",
                "anonymousId": f"a{i % 7}",
                "timestamp": "2026-11-01T10:00:00.123Z",
                "properties": {"url": "https://shop.example/p?utm_source=news&utm_medium=email", "revenue": i},
                "context": {"traits": {"email": "Ann@Example.com"}},
            }
        )
        for i in range(50)
    ]
    path.write_bytes(b"\n".join([*lines, b"", b"not json"]) + b"\n")
    engine = Warehouse.open("duckdb://:memory:")
    python = Warehouse.open("duckdb://:memory:")
    try:
        report = import_events(engine, path, engine=True)
        assert report.path == "engine" and report.python_judged == 1
        import_events(python, path)
        assert report.write.stored == 50 and report.write.quarantined == 1

        def strip(row: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in row.items() if k not in ("received_at", "timestamp")}

        assert [strip(r) for r in _rows(engine, "events")] == [strip(r) for r in _rows(python, "events")]
        got = _rows(engine, "events")[0]
        assert (got["utm_source"], got["path"], got["email"]) == ("news", "/p", "ann@example.com")
        [bad] = _rows(engine, "quarantine")
        assert bad["origin"] == f"file:{path.name}:52" and bad["payload"] == "not json"
    finally:
        engine.close()
        python.close()


def test_consent_events_record_consent_through_the_engine_import(folder: Path) -> None:
    """The engine path commits through the same write as the HTTP path: the events' consent is recorded."""
    path = folder / "consent.jsonl"
    lines = [
        {
            "type": "track",
            "messageId": "k1",
            "userId": "u1",
            "event": "Consent Updated",
            "properties": {"purpose": "marketing_email", "granted": True},
        },
        {"type": "identify", "messageId": "k2", "userId": "u2", "traits": {"consent_marketing_email": False}},
    ]
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    wh = Warehouse.open("duckdb://:memory:")
    try:
        report = import_events(wh, path, engine=True)
        assert report.path == "engine" and report.python_judged == 0 and report.write.stored == 2
        rows = wh.to_arrow(wh.table("consent_history")).to_pylist()
        assert sorted((r["identifier"], r["purpose"], r["granted"]) for r in rows) == [
            ("u1", "marketing_email", True),
            ("u2", "marketing_email", False),
        ]
    finally:
        wh.close()


def _reader_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name in ("touchpoint-import-read", "touchpoint-import-judge")]


@pytest.mark.timeout(60)  # a reader left waiting on a full queue would hang the import
def test_a_failure_on_either_side_stops_the_reader_and_reaches_the_caller(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-pass and the judging run a chunk ahead, each on a thread: an engine error, a reading error and
    a failed commit each reach the caller and end both threads."""
    path = folder / "ahead.jsonl"
    path.write_bytes(b"".join(b'{"type":"track","userId":"u","event":"E","messageId":"r%d"}\n' % i for i in range(30)))
    wh = Warehouse.open("duckdb://:memory:")
    try:
        chunks = engine_import.chunks

        def engine_fails(self: Any, lines: Any) -> None:
            time.sleep(0.5)  # the reader has read the second (last) chunk meanwhile and waits to say it is done
            raise RuntimeError("the engine failed")

        with monkeypatch.context() as patch:
            patch.setattr(engine_import._Judge, "run", engine_fails)
            patch.setattr(engine_import, "chunks", lambda lines, read, size, limit: chunks(lines, read, 15, limit))
            with pytest.raises(RuntimeError, match="the engine failed"):
                import_events(wh, path, engine=True)
        assert _reader_threads() == []

        def reading_fails(*args: Any) -> Any:
            yield from itertools.islice(chunks(*args), 1)
            raise OSError("the disk failed")

        with monkeypatch.context() as patch:
            patch.setattr(engine_import, "chunks", reading_fails)
            with pytest.raises(OSError, match="the disk failed"):
                import_events(wh, path, engine=True)
        assert _reader_threads() == []
        assert wh.count("events") == 30  # the chunk read before the failure was committed

        def commit_fails(*args: Any) -> Any:
            raise RuntimeError("the commit failed")

        with monkeypatch.context() as patch:
            patch.setattr(engine_import, "commit", commit_fails)
            patch.setattr(engine_import, "chunks", lambda lines, read, size, limit: chunks(lines, read, 5, limit))
            with pytest.raises(RuntimeError, match="the commit failed"):
                import_events(wh, path, engine=True)
        assert _reader_threads() == []
    finally:
        wh.close()


def test_a_large_file_takes_the_engine_by_default(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No flag: the engine from ENGINE_AUTO_EVENTS, the Python path below it; --no-engine / --engine decide."""
    from touchpoint.cli.main import main as cli_main
    from touchpoint.collect import files

    path = folder / "auto.jsonl"
    lines = [{"type": "track", "messageId": f"a{i}", "userId": f"u{i}", "event": "Viewed"} for i in range(50)]
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    wh = Warehouse.open("duckdb://:memory:")
    try:
        assert files.estimated_events(path, "jsonl") == 50
        monkeypatch.setattr(files, "ENGINE_AUTO_EVENTS", 51)
        assert import_events(wh, path).path == "python"
        monkeypatch.setattr(files, "ENGINE_AUTO_EVENTS", 50)
        report = import_events(wh, path)
        assert report.path == "engine" and report.write.duplicates == 50  # the same rows: stored once
        assert import_events(wh, path, engine=False).path == "python"
    finally:
        wh.close()

    def cli(*flags: str) -> dict[str, Any]:
        data = folder / f"auto-cli-{next(_files)}"
        cli_main(["import", "events", str(path), "--data", str(data), "--json", *flags])
        return msgspec.json.decode(capsys.readouterr().out)

    first = cli()
    assert first["path"] == "engine" and first["stored"] == 50
    assert cli("--no-engine")["path"] == "python"


def test_an_import_the_server_runs_for_a_client_keeps_the_python_path(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Beside the collector the engine's burst (both cores, gigabytes) is not taken unless asked for."""
    import io

    from rich.console import Console

    from touchpoint.cli.common import ServerSession, server_session
    from touchpoint.cli.main import main as cli_main
    from touchpoint.collect import files
    from touchpoint.config import get_settings

    monkeypatch.setattr(files, "ENGINE_AUTO_EVENTS", 0)  # every file is "large"
    path = folder / "relayed.jsonl"
    path.write_text('{"type":"track","messageId":"r1","userId":"u1","event":"Viewed"}\n')
    wh = Warehouse.open("duckdb://:memory:")
    out = io.StringIO()
    session = ServerSession(
        warehouse=wh,
        settings=get_settings(),
        stdout=out,
        stderr=io.StringIO(),
        console=Console(file=out),
        err_console=Console(file=io.StringIO()),
    )
    token = server_session.set(session)
    try:
        cli_main(["import", "events", str(path), "--json"])
        cli_main(["import", "events", str(path), "--json", "--engine"])
    finally:
        server_session.reset(token)
        wh.close()
    printed = capsys.readouterr().out + out.getvalue()
    first, second = (msgspec.json.decode(line) for line in printed.splitlines() if line.startswith("{"))
    assert (first["path"], first["stored"]) == ("python", 1)
    assert (second["path"], second["duplicates"]) == ("engine", 1)


@pytest.mark.parametrize("engine", [True, False])
def test_running_out_of_memory_is_named_and_the_import_can_run_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch, engine: bool
) -> None:
    """DuckDB out of memory is no value at fault: the import stops at once with the settings that give it room
    (it used to retry 30,000 events one transaction each, behind "Current transaction is aborted"), stores
    nothing of the failed chunk, and once given room stores every event once."""
    import uuid

    from touchpoint.collect import store
    from touchpoint.errors import WarehouseOutOfMemory

    def one_by_one(*args: Any) -> Any:
        raise AssertionError("a warehouse out of memory was taken for a row it refused")

    monkeypatch.setattr(store, "_write_one_by_one", one_by_one)
    path = folder / f"memory-{engine}.jsonl"
    context = {"page": {"url": "https://shop.example/p?utm_source=news", "referrer": "https://example.com/"}}
    lines = [
        {"type": "track", "messageId": str(uuid.uuid4()), "userId": f"u{i % 500}", "event": "Product Viewed",
         "timestamp": "2026-11-01T10:00:00.123Z", "properties": {"product_id": f"p{i}", "price": 12.5},
         "context": context}
        for i in range(30_000)
    ]  # fmt: skip
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    url = f"duckdb://{folder / f'memory-{engine}.duckdb'}"
    wh = Warehouse.open(url, config={"memory_limit": "16MB"})
    try:
        with pytest.raises(WarehouseOutOfMemory, match="ran out of memory") as caught:
            import_events(wh, path, engine=engine)
        assert "duckdb_memory_limit (now 16MB)" in (caught.value.hint or "")
        assert wh.count("events") == 0
    finally:
        wh.close()
    wh = Warehouse.open(url)
    try:
        assert import_events(wh, path, engine=engine).write.stored == 30_000
        assert wh.count("events") == 30_000
    finally:
        wh.close()


def test_both_paths_report_the_same_counts(folder: Path) -> None:
    """A messageId repeated in the file is received twice and stored once, whichever path judges it."""
    events = [{"type": "track", "messageId": f"d{i}", "userId": "u", "event": "E"} for i in range(5)]
    lines = [msgspec.json.encode(e) for e in events]
    lines += [lines[0], b'{"type":"track","messageId":"d1","userId":"v","event":"E"}', b"not json"]
    path = folder / "counts.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    reports = []
    for engine in (True, False):
        wh = Warehouse.open("duckdb://:memory:")
        try:
            report = import_events(wh, path, engine=engine)
        finally:
            wh.close()
        assert report.path == ("engine" if engine else "python")
        reports.append(
            {
                k: v
                for k, v in report.to_dict().items()
                if k not in ("seconds", "events_per_second", "path", "python_judged")
            }
        )
    assert reports[0] == reports[1]
    assert (reports[0]["received"], reports[0]["stored"], reports[0]["duplicates"]) == (8, 5, 2)
