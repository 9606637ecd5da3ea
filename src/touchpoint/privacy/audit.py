"""The audit log: who looked at or changed personal data, when, and how much; tamper-evident.

Every entry says who (``key:<name>``, ``user:<name>``, ``cli:<os user>``, ``job:<name>``), through which
surface, what (an action such as ``profiles.read``), about whom (the subject: a profile id, an audience's
name, or ``hmac:<prefix>``, a keyed pseudonym of an identifier given in a request; never the personal data itself), how
many rows, and how it ended (``ok`` or an error code). Entries are numbered 1, 2, 3 ... and each carries
``hash = sha256(prev_hash + canonical content)`` where ``prev_hash`` is the previous entry's hash: editing
an entry breaks its own hash, deleting one leaves a gap in the numbers and breaks the next entry's link,
and :func:`verify` names the first entry where that happens (docs/privacy.md, "Audit").

Appends are serialised: :func:`record` holds ``wh.exclusive("audit")`` and reads the last entry inside
the warehouse's write transaction, so concurrent requests never fork the chain.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> first = record(wh, actor="key:ops", surface="api", action="profiles.read", subject="p-1", rows=1)
>>> second = record(wh, actor="cli:ana", surface="cli", action="query.run", rows=20)
>>> (first.seq, second.seq, second.prev_hash == first.hash)
(1, 2, True)
>>> verify(wh).ok
True
>>> wh.close()
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from touchpoint.errors import TouchpointError
from touchpoint.warehouse.clock import utcnow
from touchpoint.warehouse.schema import AUDIT_LOG

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

GENESIS = "0" * 64  # the prev_hash of entry 1
TABLE = AUDIT_LOG.name
SURFACES = ("api", "cli", "web", "job")
_SECTION = "audit"  # the wh.exclusive section appends hold


PSEUDONYM_PREFIX = "hmac:"
LEGACY_PREFIX = "sha256:"  # entries written before the keyed pseudonym (kept as written: the chain covers them)
_PSEUDONYM_DOMAIN = b"touchpoint audit subject"  # keeps these digests apart from the suppression list's


def pseudonym(wh: Warehouse, value: str) -> str:
    """How an identifier given in a request (an email, a user id) is named in the log: ``hmac:<16 hex>``,
    keyed by the installation's key in ``<data_dir>/privacy.key`` (the one the suppression list uses,
    :func:`touchpoint.collect.suppression.key`, under a purpose of its own). Without the key a guessed
    email cannot be confirmed against the log; with it, :func:`subject_forms` finds a person's entries.

    >>> from touchpoint.warehouse import Warehouse
    >>> wh = Warehouse.open("duckdb://:memory:")
    >>> name = pseudonym(wh, "ana@example.com")
    >>> name.startswith("hmac:"), len(name), name == pseudonym(wh, "ana@example.com")
    (True, 21, True)
    >>> wh.close()
    """
    from touchpoint.collect import suppression

    secret = suppression.key(wh, create=True)
    assert secret is not None  # create=True always yields a key
    keyed = hmac.new(secret, _PSEUDONYM_DOMAIN, hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + hmac.new(keyed, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def legacy_pseudonym(value: str) -> str:
    """The unkeyed name entries written before the keyed pseudonym carry (looked up, never written).

    >>> legacy_pseudonym("ana@example.com")
    'sha256:8e43ca37701228e7'
    """
    return LEGACY_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def subject_forms(wh: Warehouse, subject: str) -> list[str]:
    """Every ``subject`` an entry about ``subject`` may carry: itself (a profile id, a name), and the keyed
    and legacy pseudonyms of it and of the forms a lookup accepts (an email in lower case)."""
    from touchpoint.identity.lookup import candidates

    forms = dict.fromkeys([subject, *candidates(subject, None)])
    out = dict.fromkeys([subject])
    for form in forms:
        out[pseudonym(wh, form)] = None
        out[legacy_pseudonym(form)] = None
    return list(out)


def cli_actor() -> str:
    """``cli:<os user>``: who runs a command (inside the server: the server's user, who owns the data)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME (a bare container)
        return "cli:unknown"


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    surface: str
    action: str
    subject: str | None
    rows: int | None
    outcome: str
    detail: str | None  # canonical JSON text, hashed as stored
    prev_hash: str
    hash: str

    def canonical(self) -> str:
        """The content the hash covers, as one canonical JSON text."""
        return canonical(self.seq, self.at, self.actor, self.surface, self.action, self.subject, self.rows,
                         self.outcome, self.detail)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "surface": self.surface,
            "action": self.action,
            "subject": self.subject,
            "rows": self.rows,
            "outcome": self.outcome,
            "detail": None if self.detail is None else json.loads(self.detail),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def canonical(
    seq: int,
    at: datetime,
    actor: str,
    surface: str,
    action: str,
    subject: str | None,
    rows: int | None,
    outcome: str,
    detail: str | None,
) -> str:
    content = [seq, at.isoformat(timespec="microseconds"), actor, surface, action, subject, rows, outcome, detail]
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def _detail_text(detail: Mapping[str, Any] | None) -> str | None:
    if not detail:
        return None
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


@contextmanager
def appending(wh: Warehouse) -> Iterator[None]:
    """Hold the audit log's append section: a caller that deletes or changes data and records it in the same
    transaction (retention) takes this *before* ``wh.write()``, so the lock order is always audit, then write."""
    with wh.exclusive(_SECTION):
        yield


def _tail(wh: Warehouse) -> tuple[int, str]:
    # Plain SQL, portable across engines: compiling the same Ibis expression costs several times the query.
    last = wh.query(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1").to_pylist()
    return (int(last[0]["seq"]), str(last[0]["hash"])) if last else (0, GENESIS)


def record(
    wh: Warehouse,
    *,
    actor: str,
    surface: str,
    action: str,
    subject: str | None = None,
    rows: int | None = None,
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry, chained to the last one; returns it. Never pass personal data as ``subject`` or in
    ``detail``: use a profile id, a name, or :func:`pseudonym`."""
    if surface not in SURFACES:
        raise ValueError(f"surface {surface!r} is not one of {', '.join(SURFACES)}")
    detail_text = _detail_text(detail)
    with appending(wh), wh.write() as tx:
        seq, prev = _tail(wh)
        seq += 1
        at = _now()
        content = canonical(seq, at, actor, surface, action, subject, rows, outcome, detail_text)
        entry = Entry(seq, at, actor, surface, action, subject, rows, outcome, detail_text, prev,
                      chain_hash(prev, content))  # fmt: skip
        tx.append(TABLE, pa.Table.from_pylist([_row(entry)], schema=AUDIT_LOG.schema.to_pyarrow()))
    return entry


@dataclass
class Note:
    """What a caller of :func:`recorded` adds to its entry while the work runs: subject, rows, details."""

    action: str
    subject: str | None = None
    rows: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def outcome_of(exc: BaseException | None, invalid: tuple[type[BaseException], ...] = ()) -> str:
    """How a call ended, as the log names it: ``ok``, the error's code, ``invalid_input`` for one of
    ``invalid`` (the surface's own validation errors), else ``internal_error``.

    >>> from touchpoint.errors import NotFound
    >>> outcome_of(None), outcome_of(NotFound("no such profile")), outcome_of(KeyError("bug"))
    ('ok', 'not_found', 'internal_error')
    """
    if exc is None:
        return "ok"
    if isinstance(exc, TouchpointError):
        return exc.code
    if isinstance(exc, invalid):
        return "invalid_input"
    return "internal_error"


@contextmanager
def recorded(
    wh: Warehouse,
    *,
    actor: str | Callable[[], str | None],
    surface: str,
    action: str,
    subject: str | None = None,
    invalid: tuple[type[BaseException], ...] = (),
) -> Iterator[Note]:
    """Record the work in the ``with`` block as one entry when it ends: ``ok``, or the error code it raised.

    ``actor`` may be a function asked when the block ends, for a surface that learns who calls only
    inside it (the API knows the key after its check). A call that failed while it still answers
    ``None`` was refused before anyone was known (no key, a bad key): that is not access, and it is not
    recorded; one that succeeded without an actor is recorded as ``anonymous``. ``invalid`` names the
    surface's own validation errors (recorded as ``invalid_input``).

    >>> from touchpoint.warehouse import Warehouse
    >>> wh = Warehouse.open("duckdb://:memory:")
    >>> with recorded(wh, actor="cli:ana", surface="cli", action="profiles.read") as note:
    ...     note.subject, note.rows = "p-1", 1
    >>> [(e.action, e.subject, e.rows, e.outcome) for e in entries(wh)]
    [('profiles.read', 'p-1', 1, 'ok')]
    >>> wh.close()
    """
    note = Note(action, subject)
    failure: BaseException | None = None
    try:
        yield note
    except Exception as exc:
        failure = exc
        raise
    finally:
        outcome = outcome_of(failure, invalid)
        who = actor() if callable(actor) else actor
        if who is not None or outcome == "ok":
            record(wh, actor=who or "anonymous", surface=surface, action=note.action, subject=note.subject,
                   rows=note.rows, outcome=outcome, detail=note.detail or None)  # fmt: skip


def _row(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AUDIT_LOG.schema.names}


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(**{name: row[name] for name in AUDIT_LOG.schema.names})


def entries(
    wh: Warehouse,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[Entry]:
    """The newest ``limit`` entries (newest first), from ``since`` (naive UTC) on, of one actor or action, about
    one ``subject`` (a profile id or name as written, or an identifier: matched through its pseudonyms)."""
    t = wh.table(TABLE)
    if subject:
        t = t.filter(t.subject.isin(subject_forms(wh, subject)))
    if since is not None:
        t = t.filter(t.at >= since)
    if actor:
        t = t.filter(t.actor == actor)
    if action:
        t = t.filter(t.action == action)
    rows = wh.to_arrow(t.order_by(ibis.desc("seq")).limit(max(0, limit))).to_pylist()
    return [_entry(r) for r in rows]


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok``, how many entries it checked, the head, and the first broken entry."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_seq: int
    broken_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "broken": None if self.ok else {"seq": self.broken_seq, "reason": self.reason},
        }


def _pruned_anchor(wh: Warehouse) -> tuple[int, str] | None:
    """The first entry kept and the hash it must follow, from the last retention run that pruned the log."""
    t = wh.table(TABLE)
    pruned = t.filter((t.action == "retention.delete") & (t.subject == TABLE)).order_by(ibis.desc("seq")).limit(1)
    rows = wh.to_arrow(pruned.select("detail")).to_pylist()
    if not rows or not rows[0]["detail"]:
        return None
    detail = json.loads(rows[0]["detail"])
    if "first_kept_seq" not in detail or "anchor" not in detail:
        return None
    return int(detail["first_kept_seq"]), str(detail["anchor"])


def verify(wh: Warehouse, *, batch_rows: int = 50_000) -> Verification:
    """Recompute the chain from the first entry: stops at the first entry that was edited, that does not
    follow the one before it, or after a gap in the numbers (a deleted entry).

    Entries removed by a retention rule on ``audit_log`` are not a break: the retention run records where
    the kept log starts and the hash it follows, and that record is itself part of the chain.
    Removing the newest entries leaves no trace in the log itself; compare the head with one kept
    elsewhere (``touchpoint audit verify --json`` prints it)."""
    t = wh.table(TABLE)
    expected_seq, prev = 1, GENESIS
    anchor = _pruned_anchor(wh)
    checked, first_seq, after = 0, 0, None
    while True:  # pages of entries by number: memory stays flat however long the log
        page = t if after is None else t.filter(t.seq > after)
        rows = wh.to_arrow(page.order_by("seq").limit(batch_rows)).to_pylist()
        if not rows:
            break
        after = rows[-1]["seq"]
        for row in rows:
            entry = _entry(row)
            if checked == 0:
                first_seq = entry.seq
                if anchor is not None and entry.seq == anchor[0]:
                    expected_seq, prev = anchor
            broken = None
            if entry.seq != expected_seq:
                missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}..{entry.seq - 1}"
                broken = f"entries {missing} are missing (deleted) before entry {entry.seq}"
                if entry.seq < expected_seq:
                    broken = f"entry {entry.seq} repeats a number already used"
            elif entry.prev_hash != prev:
                broken = f"entry {entry.seq} does not follow the entry before it (prev_hash differs)"
            elif chain_hash(entry.prev_hash, entry.canonical()) != entry.hash:
                broken = f"entry {entry.seq} was changed after it was written (its hash does not match its content)"
            if broken is not None:
                return Verification(False, checked, expected_seq - 1, prev, first_seq, entry.seq, broken)
            checked += 1
            expected_seq, prev = entry.seq + 1, entry.hash
    return Verification(True, checked, expected_seq - 1, prev, first_seq)
