"""A small shop for the automation tests: profiles with emails, names and consent, and their triggers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.profiles.workflow import update
from touchpoint.warehouse import Warehouse

SIGNING_KEY = "test-signing-key-0123456789"

WELCOME: dict[str, Any] = {
    "name": "welcome",
    "trigger": {"event": "Signed Up"},
    "holdout": 0.1,
    "goal": {"event": "Order Completed", "within_days": 14},
    "steps": [
        {"send_email": {"subject": "Welcome {{ traits.first_name }}", "text": "Hello!", "purpose": "marketing_email"}}
    ],
}


def email_of(i: int) -> str:
    return f"u{i}@people.test"


def open_shop(tmp_path: Path, n: int, *, consent: Callable[[int], bool] = lambda i: True) -> Warehouse:
    """A warehouse with ``n`` identified people (u0..), their email, first name and marketing consent."""
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    write_messages(
        wh,
        [
            {
                "type": "identify",
                "userId": f"u{i}",
                "traits": {"email": email_of(i), "first_name": f"Name{i}", "consent_marketing_email": consent(i)},
            }
            for i in range(n)
        ],
    )
    update(wh)
    return wh


def set_traits(wh: Warehouse, traits: dict[int, dict[str, Any]]) -> None:
    write_messages(wh, [{"type": "identify", "userId": f"u{i}", "traits": t} for i, t in traits.items()])
    update(wh)


def track(wh: Warehouse, event: str, users: list[int], *, resolve: bool = True, **properties: Any) -> list[str]:
    """One event per user in ``users`` (a user listed twice triggers twice), then the profiles job's work
    (``resolve``: automations act on triggers the profiles have caught up with); returns the messageIds."""
    ids = [uuid.uuid4().hex for _ in users]
    write_messages(
        wh,
        [
            {"type": "track", "userId": f"u{i}", "event": event, "properties": properties, "messageId": m}
            for i, m in zip(users, ids, strict=True)
        ],
    )
    if resolve:
        update(wh)
    return ids


def settings(tmp_path: Path, smtp_port: int | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}" if smtp_port else None,
        smtp_sender="Shop <news@shop.test>",
        automations_signing_key=SIGNING_KEY,
        public_url="https://tp.shop.test",
    )


def profile_of(wh: Warehouse, i: int) -> str:
    p = wh.table("profiles")
    return str(wh.to_arrow(p.filter(p.user_id == f"u{i}").profile_id).to_pylist()[0])
