"""A small shop for the privacy tests, loaded through the real import path (`touchpoint import events`).

Zelda is the person erased: she browses anonymously, identifies with a user id and an email, orders
with a distinctive coupon, is aliased from an old id, has an input quarantined, and after the
profiles were built sends events under a new anonymous id tied to her only by the event log (stale
identity tables). Ann and Bob are bystanders whose data must stay as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ZELDA = {
    "user": "user-zelda-91c2e",
    "anon": "anon-zelda-7f3a1",
    "late_anon": "anon-zelda-late-55d0",
    "old_id": "legacy-zelda-0042",
    "email": "zelda.quintessa@example.test",
    "coupon": "ZQ-MAGENTA-4471",
    "phone_note": "kumquat-velvet-harbour",
}
#: What must be gone after the erasure: every identifier and distinctive property value.
ZELDA_NEEDLES = sorted(ZELDA.values())
BYSTANDERS = ("user-ann-1234", "user-bob-5678")


def _event(i: int, **fields: Any) -> dict[str, Any]:
    return {"messageId": f"m-{i:04d}", "timestamp": f"2026-11-{1 + i % 27:02d}T10:00:00Z", **fields}


def zelda_events() -> list[dict[str, Any]]:
    z = ZELDA
    return [
        _event(1, type="page", anonymousId=z["anon"], name="Home", properties={"path": "/"}),
        _event(
            2,
            type="identify",
            anonymousId=z["anon"],
            userId=z["user"],
            traits={"email": z["email"].upper(), "first_name": "Zelda", "note": z["phone_note"]},
        ),
        _event(
            3,
            type="track",
            userId=z["user"],
            event="Order Completed",
            properties={"order_id": "o-z1", "revenue": 42.5, "coupon": z["coupon"]},
        ),
        _event(4, type="alias", userId=z["user"], previousId=z["old_id"]),
        _event(5, type="track", userId=z["user"], event="Product Viewed", properties={"sku": "lens-1"}),
    ]


def bystander_events() -> list[dict[str, Any]]:
    out = []
    for n, user in enumerate(BYSTANDERS):
        base = 100 + 10 * n
        out += [
            _event(base, type="identify", userId=user, traits={"email": f"{user}@example.test", "first_name": user}),
            _event(base + 1, type="track", userId=user, event="Order Completed", properties={"revenue": 10 + n}),
            _event(base + 2, type="page", userId=user, name="Home"),
        ]
    return out


def late_events() -> list[dict[str, Any]]:
    """Sent after the profiles were built: only the event log ties the new anonymous id to Zelda."""
    z = ZELDA
    return [
        _event(50, type="identify", anonymousId=z["late_anon"], userId=z["user"]),
        _event(51, type="page", anonymousId=z["late_anon"], name="Lenses"),
    ]


def bad_line() -> str:
    """An input the collector quarantines (an unknown type) that carries Zelda's identifiers."""
    return json.dumps({"type": "purchase?", "userId": ZELDA["user"], "messageId": "m-bad-1"})


def write_jsonl(path: Path, events: list[dict[str, Any]], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "".join(line + "\n" for line in extra))
    return path


def data_files(data: Path) -> None:
    """Files a real data directory accumulates: an exported list, a cached report, a Parquet extract."""
    exports = data / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    rows = [{"email": ZELDA["email"], "user": ZELDA["user"]}] + [
        {"email": f"{u}@example.test", "user": u} for u in BYSTANDERS
    ]
    (exports / "people.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (exports / "report.html").write_text(f"<html><td>{ZELDA['email']}</td></html>")
    (exports / "bystanders.html").write_text(f"<html><td>{BYSTANDERS[0]}</td></html>")
    pq.write_table(pa.Table.from_pylist(rows), exports / "people.parquet")


AUDIENCE = {"event": "Order Completed", "within_days": 3650}
