"""Bounces and spam complaints: what the mail provider reports back, turned into consent.

Email leaves through SMTP (:mod:`touchpoint.automations.channels`); whether it arrived, and whether the
recipient marked it as spam, comes back later from the provider (a webhook, a feedback loop, a CSV of
its suppression list). One documented shape, from ``POST /v1/email/events`` and
``touchpoint privacy bounces import FILE``::

    {"type": "hard_bounce" | "soft_bounce" | "complaint", "email": "ann@shop.example",
     "message_id": "<provider's or our Message-ID>", "time": "2026-03-01T10:00:00Z", "reason": "550 ..."}

- ``complaint``: a denial of ``marketing_email``, source ``complaint``. A spam report is the strongest
  "stop" a recipient can give (Art. 21(3) GDPR makes objection to direct marketing absolute).
- ``hard_bounce``: a denial of ``marketing_email``, source ``bounce``, for the address. The address
  cannot receive mail; a denial makes every marketing send stop through the check automations already
  run at selection and again just before sending, with no second list to keep in step. The person's
  will is not what it records, so it is lifted the way a person lifts a denial: a later grant (a new
  sign-up with a working address) wins, as the consent rule says. Transactional email is not consent
  checked and still goes to the address (see docs/privacy.md).
- ``soft_bounce`` (a full mailbox, a greylisting): counted only.

Each row is recorded under the address (``identifier_type = email``, lower case), the event's ``time`` as
``valid_from``, and ``<type>:<message_id>`` as proof, so the same report delivered twice (webhooks retry)
records one row.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> out = record(wh, [{"type": "complaint", "email": "Ann@Shop.example", "message_id": "m-1"},
...                  {"type": "soft_bounce", "email": "bob@shop.example", "message_id": "m-2"}])
>>> out["counts"], out["recorded"]
({'hard_bounce': 0, 'soft_bounce': 1, 'complaint': 1}, 1)
>>> record(wh, [{"type": "complaint", "email": "ann@shop.example", "message_id": "m-1"}])["recorded"]
0
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchpoint.collect.consent import consent_id
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.clock import naive_utc

TYPES = ("hard_bounce", "soft_bounce", "complaint")
PURPOSE = "marketing_email"
SOURCE = {"hard_bounce": "bounce", "complaint": "complaint"}  # soft bounces record nothing
MAX_EVENTS = 10_000  # one request or file; a provider's backlog is imported in several
FIELDS = ("type", "email", "message_id", "time", "reason")


def _when(value: Any, where: str) -> datetime:
    if value is None or value == "":
        return datetime.now(UTC).replace(tzinfo=None)
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{where}.time: {value[:60]!r} is not an ISO 8601 instant", hint="e.g. 2026-03-01T10:00:00Z"
            ) from None
    else:
        raise InvalidInput(f"{where}.time: {value!r} is not an ISO 8601 instant", hint="e.g. 2026-03-01T10:00:00Z")
    return naive_utc(at, f"{where}.time")


def check(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The events, checked and normalised; :class:`InvalidInput` naming the first bad field (``events[i].type``)."""
    out = []
    for i, item in enumerate(items):
        where = f"events[{i}]"
        if i >= MAX_EVENTS:
            raise InvalidInput(f"events: more than {MAX_EVENTS:,}", hint="send them in several requests or files")
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where}: not an object", hint="send {type, email, message_id, time}")
        unknown = sorted(str(k) for k in item if k not in FIELDS)
        if unknown:
            raise InvalidInput(f"{where}: unknown field {unknown[0][:60]!r}", hint=f"the fields: {', '.join(FIELDS)}")
        kind = item.get("type")
        if kind not in TYPES:
            raise InvalidInput(f"{where}.type: {str(kind)[:60]!r} is not known", hint=f"use one of {', '.join(TYPES)}")
        address = item.get("email")
        if not isinstance(address, str) or "@" not in address or len(address) > 320:
            raise InvalidInput(f"{where}.email: {str(address)[:60]!r} is not an email address", hint="e.g. a@b.example")
        message_id = item.get("message_id")
        if message_id is not None and (not isinstance(message_id, str) or len(message_id) > 1000):
            raise InvalidInput(f"{where}.message_id: not a string of at most 1000 characters", hint="or leave it out")
        at = _when(item.get("time"), where)
        out.append({"type": kind, "email": address.strip().lower(), "message_id": message_id or None, "time": at})
    return out


def record(wh: Warehouse, items: Iterable[Mapping[str, Any]], *, actor: str | None = None) -> dict[str, Any]:
    """Record the bounces and complaints in ``items`` (the documented shape); returns the counts per type and
    how many consent rows were new (a report delivered again records nothing)."""
    from touchpoint.privacy import consent

    events = check(items)
    counts = dict.fromkeys(TYPES, 0)
    rows = []
    now = consent.now()
    for e in events:
        counts[e["type"]] += 1
        source = SOURCE.get(e["type"])
        if source is None:
            continue
        proof = f"{e['type']}:{e['message_id'] or e['time'].isoformat()}"
        rows.append(
            {
                "consent_id": consent_id(source, proof, "email", e["email"], PURPOSE),
                "identifier_type": "email",
                "identifier": e["email"],
                "purpose": PURPOSE,
                "granted": False,
                "source": source,
                "proof": proof,
                "actor": actor,
                "valid_from": e["time"],
                "valid_until": None,
                "recorded_at": now,
            }
        )
    return {"counts": counts, "events": len(events), "recorded": consent.record(wh, rows)}


def read_file(path: str | Path) -> list[dict[str, Any]]:
    """The events in a file: a JSON array, JSON lines, or CSV with a header row of the field names."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {str(p)!r}: {exc}", hint="give a JSON, JSON-lines or CSV file") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            doc = json.loads(text)
            return list(doc) if isinstance(doc, list) else []
        if stripped.startswith("{"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{str(p)!r} is not valid JSON: {exc}", hint="one object per line, or an array") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{k: v for k, v in r.items() if k is not None and v not in (None, "")} for r in rows]
