"""What an event says about consent: the one rule the collector and the file imports share.

:func:`~touchpoint.collect.store.write_rows` calls :func:`extract` on the events it commits and appends
the rows to ``consent_history`` in the same transaction, so an event and the consent it carries are
stored together or not at all, whichever path brought them. Three places in an event carry consent
(docs/privacy.md, "Consent"):

1. ``context.consent.categoryPreferences``: ``{category: bool}`` as Segment's consent tools send it.
   A category maps to a purpose by the ``consent_categories`` setting, or by being named like one
   (lower case, spaces and ``-`` read as ``_``); other categories (``C0001``, "Strictly Necessary")
   are not purposes and are passed over.
2. identify ``traits.consent_<purpose>``: ``true`` or ``false``.
3. a track event ``Consent Updated`` with ``properties.purpose`` (a name or a list) and
   ``properties.granted`` (bool), or ``properties.categoryPreferences`` as in 1.

A later place wins for the same purpose in one event. The consent row names the event's most trusted
identifier (``user_id``, else ``email``, else ``anonymous_id``), the event's ``timestamp`` as
``valid_from`` and its ``messageId`` as proof. A value that cannot be read (an unknown purpose, a
``granted`` that is not a boolean) costs the consent, never the event: it is reported in ``problems``.

>>> import datetime as dt, json, pyarrow as pa
>>> at = dt.datetime(2026, 1, 2)
>>> events = pa.Table.from_pylist([{"message_id": "m1", "type": "track", "event": "Consent Updated",
...     "user_id": "u1", "anonymous_id": None, "email": None, "timestamp": at, "received_at": at,
...     "traits": None, "context": None,
...     "properties": json.dumps({"purpose": "marketing_email", "granted": False})}])
>>> found = extract(events, {"marketing_email": "opt_in"}, {})
>>> [(r["identifier"], r["purpose"], r["granted"], r["proof"]) for r in found.rows]
[('u1', 'marketing_email', False, 'm1')]
>>> bad = events.set_column(events.schema.get_field_index("properties"), "properties",
...     pa.array([json.dumps({"purpose": "email", "granted": "yes"})]))
>>> extract(bad, {"marketing_email": "opt_in"}, {}).problems  # doctest: +ELLIPSIS
["event 'm1': field 'properties.purpose': 'email' is not a consent purpose (known: marketing_email)..."]
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

CONSENT_EVENT = "Consent Updated"
_decode = msgspec.json.Decoder().decode
TRAIT_PREFIX = "consent_"
WHO = ("user_id", "email", "anonymous_id")  # the identifier a consent row names, most trusted first
_CATEGORY = re.compile(r"[\s\-]+")


@dataclass
class Extracted:
    """Consent rows found in a batch, the problems met, and the events whose own consent denies analytics."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: the events (their positions in the table read) whose own consent denies analytics, in order
    analytics_denied: list[int] = field(default_factory=list)


def consent_id(source: str, proof: str | None, identifier_type: str, identifier: str, purpose: str) -> str:
    """The history row's key: the same statement recorded again (a replay, a retry) is the same row."""
    text = "\n".join((source, proof or "", identifier_type, identifier, purpose))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _norm(category: str) -> str:
    return _CATEGORY.sub("_", category.strip()).lower()


def category_purpose(category: str, purposes: dict[str, str], categories: dict[str, str]) -> str | None:
    """The purpose a consent category stands for (``categories`` keys normalised), or None when it is not one.

    >>> category_purpose("Data Sharing", {"sharing": "opt_in"}, {"data_sharing": "sharing"})
    'sharing'
    """
    name = _norm(category)
    mapped = categories.get(name)
    if mapped is not None:
        return mapped
    return name if name in purposes else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(key: Any) -> str:
    """A key as part of a field path, cut short (a hostile key may be kilobytes long)."""
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return _decode(text)
    except (ValueError, msgspec.DecodeError):
        return None


class _Reader:
    def __init__(self, purposes: dict[str, str], categories: dict[str, str]) -> None:
        self.purposes = purposes
        self.categories = {_norm(k): v for k, v in categories.items()}  # normalised once, not per event
        self.seen: dict[str, str | None] = {}
        self.known = ", ".join(sorted(purposes))

    def purpose(self, name: Any, where: str) -> str:
        if not isinstance(name, str) or name not in self.purposes:
            raise ValueError(
                f"field {where!r}: {_short(name)} is not a consent purpose (known: {self.known}); "
                "add it to the consent_purposes setting"
            )
        return name

    @staticmethod
    def granted(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"field {where!r}: {_short(value)} is not true or false")
        return value

    def preferences(self, prefs: Any, where: str, out: dict[str, bool], problems: list[str]) -> None:
        if not isinstance(prefs, dict):
            problems.append(f"field {where!r}: {_short(prefs)} is not an object of category: true|false")
            return
        for category, value in prefs.items():
            key = str(category)
            if key not in self.seen:  # a site sends the same few categories on every event
                self.seen[key] = category_purpose(key, self.purposes, self.categories)
            purpose = self.seen[key]
            if purpose is None:
                continue  # a category that is no purpose of ours (strictly necessary, a vendor code)
            try:
                out[purpose] = self.granted(value, f"{where}.{_name(category)}")
            except ValueError as exc:
                problems.append(str(exc))


def _statements(event: dict[str, Any], reader: _Reader, problems: list[str]) -> dict[str, bool]:
    found: dict[str, bool] = {}
    context = _json(event.get("context"))
    if isinstance(context, dict) and isinstance(context.get("consent"), dict):
        consent = context["consent"]
        if "categoryPreferences" in consent:
            reader.preferences(consent["categoryPreferences"], "context.consent.categoryPreferences", found, problems)
    if event.get("type") == "identify":
        traits = _json(event.get("traits"))
        if isinstance(traits, dict):
            for name, value in traits.items():
                if isinstance(name, str) and name.startswith(TRAIT_PREFIX):
                    where = f"traits.{_name(name)}"
                    try:
                        purpose = reader.purpose(name[len(TRAIT_PREFIX) :], where)
                        found[purpose] = reader.granted(value, where)
                    except ValueError as exc:
                        problems.append(str(exc))
    if event.get("type") == "track" and event.get("event") == CONSENT_EVENT:
        props = _json(event.get("properties"))
        props = props if isinstance(props, dict) else {}
        if "categoryPreferences" in props:
            reader.preferences(props["categoryPreferences"], "properties.categoryPreferences", found, problems)
        if "purpose" in props or "categoryPreferences" not in props:
            try:
                names = props.get("purpose")
                listed = names if isinstance(names, list) and names else [names]
                purposes = [reader.purpose(n, "properties.purpose") for n in listed]
                granted = reader.granted(props.get("granted"), "properties.granted")
                found.update(dict.fromkeys(purposes, granted))
            except ValueError as exc:
                problems.append(str(exc))
    return found


def mentions(event: str | None, *texts: str | None) -> bool:
    """Whether one event may carry consent: a ``Consent Updated`` event, or JSON (traits, context, properties)
    that says "consent" somewhere; the rule :func:`candidate_rows` applies to a table, for one row in Python (the
    collector log tells which acknowledged events the sender must see loaded before its consent check).

    >>> mentions("Signed Up", '{"plan": "pro"}', None), mentions(None, '{"consent_marketing_email": false}')
    (False, True)
    """
    return event == CONSENT_EVENT or any(text is not None and "consent" in text for text in texts)


def candidate_rows(events: pa.Table) -> pa.Array:
    """The positions of the rows whose JSON says "consent" somewhere, or that are a ``Consent Updated`` event
    (:func:`mentions`)."""
    names = events.column_names
    hit = pc.equal(events.column("event").cast(pa.string()), CONSENT_EVENT) if "event" in names else None
    for column in ("traits", "context", "properties"):
        if column in names:
            found = pc.match_substring(events.column(column).cast(pa.string()), "consent")
            hit = found if hit is None else pc.or_kleene(hit, found)
    if hit is None:
        return pa.array([], pa.uint64())
    return pc.indices_nonzero(pc.fill_null(hit, False))


def extract(events: pa.Table, purposes: dict[str, str], categories: dict[str, str]) -> Extracted:
    """The consent rows the events in ``events`` (the ``events`` table's columns) carry."""
    out = Extracted()
    if events.num_rows == 0:
        return out
    reader = _Reader(purposes, categories)
    rows = candidate_rows(events)  # the few rows that mention consent, found in Arrow: the hot path stays cheap
    if len(rows) == 0:
        return out
    events = events.take(rows)
    positions = rows.to_pylist()
    columns = ("message_id", "type", "event", *WHO, "timestamp", "received_at", "traits", "context", "properties")
    data = {c: events.column(c).to_pylist() for c in columns if c in events.column_names}
    for i in range(events.num_rows):
        event = {c: data[c][i] for c in data}
        mid = str(event["message_id"])
        problems: list[str] = []
        try:
            found = _statements(event, reader, problems)
        except Exception as exc:  # consent extraction never costs an event
            problems.append(f"the consent could not be read: {_short(exc)}")
            found = {}
        out.problems.extend(f"event {mid!r}: {p}" for p in problems)
        who = next(((k, event[k]) for k in WHO if event.get(k)), None)
        if found.get("analytics") is False:
            out.analytics_denied.append(positions[i])
        if who is None:
            if found:
                out.problems.append(f"event {mid!r}: consent without a userId, email or anonymousId is not recorded")
            continue
        at: datetime = event["timestamp"]
        for purpose, granted in found.items():
            out.rows.append(
                {
                    "consent_id": consent_id("event", mid, who[0], who[1], purpose),
                    "identifier_type": who[0],
                    "identifier": who[1],
                    "purpose": purpose,
                    "granted": granted,
                    "source": "event",
                    "proof": mid,
                    "actor": None,
                    "valid_from": at,
                    "valid_until": None,
                    "recorded_at": event.get("received_at") or at,
                }
            )
    return out
