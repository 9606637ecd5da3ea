"""Erasure that leaves no trace (GDPR Art. 17): the person's rows, files and bytes, then a suppression entry.

:func:`erase` runs, holding the identity section (no identity or profile update interleaves):

1. **Suppress.** A keyed hash of every identifier of the person goes on the suppression list
   (:mod:`touchpoint.collect.suppression`): from this commit on, the collector (HTTP, file import,
   replay) drops their events, counted, so a retry or a re-import cannot bring them back.
2. **Delete** every row that holds them in every table the registry classifies as personal
   (:func:`touchpoint.privacy.people.personal_tables`): raw events under every identifier, quarantine
   inputs naming them, identity nodes, links, overrides and merge log, profiles, traits, sessions,
   predictions, scores, audience memberships, automation entries and outbox payloads; in one
   transaction. Aggregates that identify nobody (prediction runs, attribution, experiment results)
   stay.
3. **Files.** Every file under the data directory other than the warehouse and its keys is
   searched for the person's identifiers: line files (JSON lines, CSV, logs) lose the lines that
   name them, Parquet files the rows, any other file holding them (a cached report, an export) is
   removed.
4. **Bytes.** :meth:`~touchpoint.warehouse.base.Warehouse.compact`: deleted rows still sit in freed
   blocks of the DuckDB file and its WAL until the database is rewritten.
5. **Check.** Every personal table is queried again; rows that arrived meanwhile (a commit that
   raced the suppression list) are deleted and the storage compacted once more.
6. **Log** the request in ``privacy_erasures``: when, who, the subject's keyed hash, rows deleted
   per table, files touched: never the data.

A crash (even SIGKILL) at any step leaves a warehouse that opens with everyone else's data whole: the
deletes are one transaction and the compaction swaps files atomically. Erasing the same identifier again
then finishes the job: an erasure whose suppression entries exist without its record is resumed (files,
compaction, check, record) under its first id.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "track", "userId": "u-1", "event": "A"},
...                         {"type": "track", "userId": "u-2", "event": "B"}])
>>> erase(wh, "u-1", actor="doctest")["deleted"]["events"], wh.count("events")
(1, 1)
>>> write_messages(wh, [{"type": "track", "userId": "u-1", "event": "A again"}]).suppressed
1
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchpoint.collect import suppression
from touchpoint.collect.collector_log import CollectorLog
from touchpoint.collect.committer import Collector
from touchpoint.errors import NotFound
from touchpoint.identity.lookup import candidates
from touchpoint.privacy.people import Person, find, guess_type, match, personal_tables, rows
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow
from touchpoint.warehouse.schema import TableSpec

log = logging.getLogger(__name__)

#: Files under the data directory an erasure never edits: the warehouse, its log and the keys.
KEEP_NAMES = frozenset({suppression.KEY_FILE, "automations.key", "server.json"})
KEEP_SUFFIXES = (".duckdb", ".duckdb.wal", ".wal", ".key", ".compact")
LINE_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".log")
MAX_CHECKS = 2


_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def count(wh: Warehouse, person: Person) -> dict[str, int]:
    """How many rows of each personal table hold ``person``."""
    return {spec.name: int(wh.to_arrow(rows(wh, spec, person).count()).as_py()) for spec in personal_tables(wh)}


def _delete_table(wh: Warehouse, tx: Any, spec: TableSpec, person: Person) -> None:
    p = spec.personal
    assert p is not None
    name = spec.name
    if not (p.profile or p.identifiers or p.kinds) and p.payloads:  # matched by searching free text
        t = wh.table(name)
        if len(spec.key) == 1:
            keys = wh.to_arrow(t.filter(match(wh, t, spec, person)).select(spec.key[0])).column(0).to_pylist()
            tx.delete(name, spec.key[0], keys)
        else:
            tx.replace(name, t.filter(~match(wh, t, spec, person)))
    if p.messages and person.values():
        from touchpoint.privacy.people import person_events

        ids = person_events(wh, person).message_id
        for column in p.messages:
            tx.delete(name, column, ids)
    for column in p.profile:
        tx.delete(name, column, sorted(person.profile_ids))
    for column in p.identifiers:
        tx.delete(name, column, person.keys())
    for _, column in p.kinds:
        tx.delete(name, column, sorted(person.values()))
    for column in p.nodes:
        tx.delete(name, column, sorted(person.node_ids))


def delete_rows(wh: Warehouse, person: Person) -> dict[str, int]:
    """Delete the person's rows from every personal table in one transaction; rows deleted per table."""
    counts = count(wh, person)
    specs = [s for s in personal_tables(wh) if counts.get(s.name)]
    specs.sort(key=lambda s: s.name == schema.EVENTS.name)  # events last: other tables find rows by message id
    with wh.write() as tx:
        for spec in specs:
            _delete_table(wh, tx, spec, person)
    return {k: v for k, v in counts.items() if v}


# -- files under the data directory ------------------------------------------------------------------------
def _kept(path: Path) -> bool:
    return path.name in KEEP_NAMES or path.name.endswith(KEEP_SUFFIXES)


def _replace(path: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".erase-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _scrub_parquet(path: Path, needles: list[str]) -> bool:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    hit = pa.array([False] * table.num_rows)
    for name in table.column_names:
        column = table.column(name)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            continue
        for needle in needles:
            hit = pc.or_kleene(hit, pc.fill_null(pc.match_substring(column, needle, ignore_case=True), False))
    if not pc.any(hit).as_py():
        return False
    sink = pa.BufferOutputStream()
    pq.write_table(table.filter(pc.invert(hit)), sink)
    _replace(path, sink.getvalue().to_pybytes())
    return True


def scrub_files(folder: Path | None, person: Person, *, skip: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    """Remove the person from the files under ``folder``: ``{"rewritten": [...], "removed": [...]}``
    (paths relative to ``folder``). Folders in ``skip`` are left to their owner: the collector log's segments
    are written while this runs, and the log deletes them itself once loaded (its ``purge``)."""
    done: dict[str, list[str]] = {"rewritten": [], "removed": []}
    needles = person.needles()
    if folder is None or not folder.is_dir() or not needles:
        return done
    raw = [n.encode() for n in needles] + [n.lower().encode() for n in needles]
    skipped = [s.resolve() for s in skip]
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        if _kept(path) or any(path.resolve().is_relative_to(s) for s in skipped):
            continue
        relative = str(path.relative_to(folder))
        if path.suffix == ".parquet":
            if _scrub_parquet(path, needles):
                done["rewritten"].append(relative)
            continue
        data = path.read_bytes()
        low = data.lower()
        if not any(n in data or n in low for n in raw):
            continue
        if path.name.endswith(LINE_SUFFIXES):
            lines = data.splitlines(keepends=True)
            kept = [line for line in lines if not any(n in line.lower() for n in raw)]
            _replace(path, b"".join(kept))
            done["rewritten"].append(relative)
        else:
            path.unlink()
            done["removed"].append(relative)
    return done


# -- the request ---------------------------------------------------------------------------------------------
def erase(
    wh: Warehouse,
    identifier: str,
    *,
    actor: str,
    data_dir: Path | None = None,
    collector: Collector | None = None,
) -> dict[str, Any]:
    """Erase the person ``identifier`` names: rows, files, bytes; suppress their future events.

    ``data_dir`` defaults to the warehouse's own folder. ``collector``: the running server's (with the
    collector log, its segments hold the person's loaded events until it purges them, after the suppression).
    Raises :class:`~touchpoint.errors.NotFound` when nothing holds ``identifier`` (an erasure of nobody is not
    a success). Returns the request's record: ``erasure_id``, ``identifiers`` (how many), ``deleted`` (rows
    per table), ``files``, ``compaction`` and ``seconds``.
    """
    start = time.perf_counter()
    requested = _now()
    folder = data_dir if data_dir is not None else suppression.data_dir(wh)
    with wh.exclusive("identity"):
        try:
            person = find(wh, identifier)
            erasure_id = uuid.uuid4().hex
        except NotFound:
            unfinished = _unfinished(wh, identifier)
            if unfinished is None:
                raise
            # An erasure of this person was cut short (the process died after its deletes, before its
            # record): finish it, so the bytes the compaction had not yet removed go too.
            person, erasure_id = Person(asked=identifier), unfinished
            person.identifiers |= {(guess_type(form), form) for form in candidates(identifier, None)}
        secret = suppression.key(wh, create=True)
        assert secret is not None
        with wh.write() as tx:
            suppression.add(wh, tx, sorted(person.identifiers), erasure_id)
        suppression.forget(wh)
        deleted = delete_rows(wh, person)
        log_dirs = (collector.directory,) if isinstance(collector, CollectorLog) else ()
        files = scrub_files(folder, person, skip=log_dirs)
        if collector is not None and not collector.purge():
            log.warning("the collector log did not load its backlog in time; its older segments go once loaded")
        compaction = wh.compact()
        for _ in range(MAX_CHECKS):
            late = delete_rows(wh, person)
            if not late:
                break
            for table, n in late.items():
                deleted[table] = deleted.get(table, 0) + n
            compaction = wh.compact()
        record = {
            "erasure_id": erasure_id,
            "requested_at": requested,
            "finished_at": _now(),
            "actor": actor,
            "subject_hash": suppression.digest(identifier, secret),
            "identifiers": len(person.identifiers),
            "deleted": json.dumps(deleted, sort_keys=True),
            "files": json.dumps({k: len(v) for k, v in files.items()}, sort_keys=True),
            "compact_seconds": float(compaction.get("seconds") or 0.0),
            "status": "erased",
        }
        arrow = pa.Table.from_pylist([record], schema=schema.ERASURES.schema.to_pyarrow())
        with wh.write() as tx:
            tx.append(schema.ERASURES.name, arrow)
    return {
        "erasure_id": erasure_id,
        "subject_hash": record["subject_hash"],
        "identifiers": len(person.identifiers),
        "deleted": deleted,
        "files": files,
        "compaction": compaction,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _unfinished(wh: Warehouse, identifier: str) -> str | None:
    """The id of an erasure that suppressed ``identifier`` but has no record: one a crash cut short."""
    secret = suppression.key(wh)
    if secret is None or not wh.has_table(schema.SUPPRESSIONS.name):
        return None
    hashes = [suppression.digest(form, secret) for form in candidates(identifier, None)]
    s, done = wh.table(schema.SUPPRESSIONS.name), wh.table(schema.ERASURES.name)
    ids = wh.to_arrow(s.filter(s.hash.isin(hashes)).select("erasure_id").distinct()).column("erasure_id").to_pylist()
    recorded = set(wh.to_arrow(done.filter(done.erasure_id.isin(ids)).select("erasure_id")).column(0).to_pylist())
    unfinished = sorted(i for i in ids if i is not None and i not in recorded)
    return unfinished[0] if unfinished else None


def erasures(wh: Warehouse, limit: int = 100) -> list[dict[str, Any]]:
    """The latest erasure requests, newest first, with the events their suppression entries dropped since."""
    t = wh.table(schema.ERASURES.name)
    got = wh.to_arrow(t.order_by(t.requested_at.desc()).limit(limit)).to_pylist()
    s = wh.table(schema.SUPPRESSIONS.name)
    drops = {
        r["erasure_id"]: int(r["dropped"] or 0)
        for r in wh.to_arrow(s.group_by("erasure_id").agg(dropped=s.dropped.sum())).to_pylist()
    }
    out = []
    for r in got:
        r = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
        for k in ("deleted", "files"):
            r[k] = json.loads(r[k]) if r.get(k) else {}
        r["dropped_since"] = drops.get(r["erasure_id"], 0)
        out.append(r)
    return out
