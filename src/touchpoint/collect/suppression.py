"""The suppression list: events from erased people are dropped at the door, and counted.

When a person is erased (:mod:`touchpoint.privacy.erase`), a keyed hash of each of their
identifiers goes to ``privacy_suppressions``. :func:`touchpoint.collect.store.write_rows`, the one
write path of the HTTP collector, file imports and replays, calls :func:`drop_suppressed` before it
commits: an event whose ``user_id``, ``anonymous_id``, ``email`` or ``previous_id`` is on the list is
not stored (nor quarantined), the drop adds to the entry's ``dropped`` counter in the same
transaction and to :attr:`WriteResult.suppressed`, so a client's retry or the re-import of an old
file cannot bring the person back, and an operator sees how often it happens.

The hash is HMAC-SHA256 keyed by a random per-installation key in ``<data_dir>/privacy.key``
(mode 0600), not a plain or salted hash stored beside the list: identifiers are guessable (emails,
sequential user ids), so whoever holds a copy of the warehouse alone could test guesses against a
hash whose salt sits in the same database. With the key kept out of the warehouse, a leaked dump
or backup of it says nothing about who was erased. Losing the key makes the list unmatchable:
back it up with the data directory (docs/privacy.md).

>>> key = b"k" * 32
>>> digest("ann@example.com", key) == digest("ann@example.com", key) != digest("bob@example.com", key)
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchpoint.collect.normalize import EventRows
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.private_files import private_dir, write_private
from touchpoint.warehouse.schema import EVENTS, SUPPRESSIONS

KEY_FILE = "privacy.key"
TABLE = SUPPRESSIONS.name
#: The event columns an erased person's identifier is looked for in.
ID_COLUMNS = ("user_id", "anonymous_id", "email", "previous_id")
_POSITIONS = tuple(EVENTS.schema.names.index(c) for c in ID_COLUMNS)

_memory_keys: weakref.WeakKeyDictionary[Warehouse, bytes] = weakref.WeakKeyDictionary()
_cache: weakref.WeakKeyDictionary[Warehouse, frozenset[str]] = weakref.WeakKeyDictionary()
_keys: weakref.WeakKeyDictionary[Warehouse, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def data_dir(wh: Warehouse) -> Path | None:
    """The data directory of ``wh``: its DuckDB file's folder, else the settings' ``data_dir``; None in memory."""
    path = getattr(wh, "path", None)
    if path == ":memory:":
        return None
    if isinstance(path, str):
        return Path(path).expanduser().absolute().parent
    from touchpoint.config import get_settings

    return Path(get_settings().data_dir).expanduser().absolute()


def key(wh: Warehouse, *, create: bool = False) -> bytes | None:
    """The installation's HMAC key (created with ``create``); an in-memory warehouse has one for its life."""
    with _lock:
        if wh in _keys:
            return _keys[wh]
        folder = data_dir(wh)
        if folder is None:
            value: bytes | None = _memory_keys.setdefault(wh, secrets.token_bytes(32))
        else:
            path = folder / KEY_FILE
            if not path.exists():
                if not create:
                    return None
                private_dir(folder)
                write_private(path, secrets.token_urlsafe(32))
            value = path.read_text(encoding="utf-8").strip().encode()
        if value is not None:
            _keys[wh] = value
        return value


def digest(value: str, secret: bytes) -> str:
    """The hex HMAC-SHA256 of an identifier value."""
    return hmac.new(secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()  # (a lone surrogate)


def hashes(wh: Warehouse) -> frozenset[str]:
    """The suppressed hashes, cached per warehouse (:func:`forget` after the list changes)."""
    cached = _cache.get(wh)
    if cached is not None:
        return cached
    if not wh.has_table(TABLE):
        loaded: frozenset[str] = frozenset()
    else:
        column = wh.to_arrow(wh.table(TABLE).select("hash")).column("hash")
        loaded = frozenset(str(h) for h in column.to_pylist())
    _cache[wh] = loaded
    return loaded


def forget(wh: Warehouse) -> None:
    """Drop the cached list (an erasure added to it)."""
    _cache.pop(wh, None)


def add(wh: Warehouse, tx: Any, identifiers: Iterable[tuple[str, str]], erasure_id: str) -> list[str]:
    """Put ``(type, value)`` identifiers on the list inside the transaction ``tx``; returns their hashes."""
    import pyarrow as pa

    secret = key(wh, create=True)
    assert secret is not None
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: dict[str, str] = {}
    for id_type, value in identifiers:
        rows.setdefault(digest(value, secret), id_type)
    table = pa.table(
        {
            "hash": list(rows),
            "id_type": list(rows.values()),
            "erasure_id": [erasure_id] * len(rows),
            "added_at": pa.array([now] * len(rows), pa.timestamp("us")),
            "dropped": pa.array([0] * len(rows), pa.int64()),
        }
    )
    tx.insert_new(TABLE, table)
    return list(rows)


def drop_suppressed(wh: Warehouse, rows: EventRows) -> dict[str, int]:
    """Remove from ``rows`` the events (and rejected inputs) of suppressed people; ``{hash: dropped}``.

    Costs one cached set lookup while the list is empty; otherwise one HMAC per distinct identifier.
    A rejected input is matched on the identifiers its JSON payload names (``userId``,
    ``anonymousId``, ``previousId``, an ``email`` in traits or properties).
    """
    listed = hashes(wh)
    if not listed or not (rows.rows or rows.rejected):
        return {}
    secret = key(wh)
    if secret is None:  # the list has entries but its key is gone: say so loudly, keep collecting
        import logging

        logging.getLogger(__name__).error(
            "the suppression list has entries but %s is missing: erased people's events cannot be recognised",
            KEY_FILE,
        )
        return {}
    dropped: dict[str, int] = {}
    memo: dict[str, str | None] = {}

    def listed_hash(values: Iterable[Any]) -> str | None:
        for value in values:
            if not isinstance(value, str) or not value:
                continue
            if value not in memo:
                h = digest(value, secret)
                memo[value] = h if h in listed else None
            if memo[value] is not None:
                return memo[value]
        return None

    kept = []
    for row in rows.rows:
        hit = listed_hash(row[p] for p in _POSITIONS)
        if hit is None:
            kept.append(row)
        else:
            dropped[hit] = dropped.get(hit, 0) + 1
    rows.rows[:] = kept
    if rows.rejected:
        keep = []
        for i, rejected in enumerate(rows.rejected):
            hit = listed_hash(_payload_ids(rejected.payload))
            if hit is None:
                keep.append(i)
            else:
                dropped[hit] = dropped.get(hit, 0) + 1
        if len(keep) < len(rows.rejected):
            rows.rejected[:] = [rows.rejected[i] for i in keep]
            rows.rejected_at[:] = [rows.rejected_at[i] for i in keep]
            rows.rejected_source[:] = [rows.rejected_source[i] for i in keep]
    return dropped


def drop_suppressed_table(wh: Warehouse, events: Any) -> tuple[Any, dict[str, int]]:
    """:func:`drop_suppressed` for events in an Arrow table (the engine file import): ``(kept, {hash: dropped})``.

    One HMAC per distinct identifier, and only while the list has entries.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    listed = hashes(wh)
    if not listed or events.num_rows == 0:
        return events, {}
    secret = key(wh)
    if secret is None:
        return events, {}  # (drop_suppressed logs the missing key for the rejects of the same write)
    names = [EVENTS.schema.names[p] for p in _POSITIONS]
    hit_of: dict[str, str] = {}
    for name in names:
        for value in pc.unique(events.column(name)).to_pylist():
            if isinstance(value, str) and value and value not in hit_of:
                h = digest(value, secret)
                if h in listed:
                    hit_of[value] = h
    if not hit_of:
        return events, {}
    columns = {name: events.column(name).to_pylist() for name in names}
    keep: list[bool] = []
    dropped: dict[str, int] = {}
    for i in range(events.num_rows):
        hit = next((hit_of[v] for name in names if (v := columns[name][i]) in hit_of), None)
        keep.append(hit is None)
        if hit is not None:
            dropped[hit] = dropped.get(hit, 0) + 1
    return events.filter(pa.array(keep)), dropped


def _payload_ids(payload: str) -> list[Any]:
    """The identifiers a rejected input's payload names, as far as it parses. Read a level at a time without
    recursion (:func:`~touchpoint.collect.decode.top_fields`): a payload refused for its nesting is often
    thousands of levels deep, and a recursive parser's answer would depend on the caller's stack (the HTTP
    path and the file import once disagreed on whether such an input was an erased person's)."""
    import json

    from touchpoint.collect.decode import top_fields

    def fields(raw: bytes | None) -> dict[str, bytes]:
        return top_fields(raw) if raw is not None else {}

    def scalar(raw: bytes | None) -> Any:
        if raw is None or raw[:1] in (b"{", b"["):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    doc = fields(payload.encode("utf-8", "surrogatepass"))
    found: list[Any] = [scalar(doc.get(name)) for name in ("userId", "anonymousId", "previousId")]
    for holder in (doc.get("traits"), doc.get("properties"), fields(doc.get("context")).get("traits")):
        email = scalar(fields(holder).get("email"))
        if isinstance(email, str):
            found.append(email.strip().lower())
    return [v for v in found if isinstance(v, str)] + [str(v) for v in found if isinstance(v, int | float)]


def count_drops(wh: Warehouse, tx: Any, dropped: dict[str, int]) -> None:
    """Add the drops to each entry's counter, inside the events lane's transaction ``tx``.

    One events writer runs at a time and an erasure only inserts, so read-then-set is safe.
    """
    if not dropped:
        return
    t = wh.table(TABLE)
    current = wh.to_arrow(t.filter(t.hash.isin(list(dropped))).select("hash", "dropped")).to_pylist()
    now = datetime.now(UTC).replace(tzinfo=None)
    for row in current:
        total = int(row["dropped"] or 0) + dropped[row["hash"]]
        tx.update(TABLE, {"dropped": total, "last_dropped_at": now}, key="hash", value=row["hash"])
