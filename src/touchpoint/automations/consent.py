"""Consent for an action's purpose, unsubscribe tokens, and recording an unsubscribe.

Consent is the privacy module's (:mod:`touchpoint.privacy.consent`): :func:`with_consent` adds its
decision as a column to the query that selects the contacts, so the decision and the check are one
query; the sender repeats it at send time. The purpose ``transactional`` needs no consent. An
unsubscribe is a denial in the consent history (source ``unsubscribe``, the token's digest as proof).

An unsubscribe link carries ``profile_id`` and purpose signed with HMAC-SHA256 under the signing
key (``automations_signing_key``, or a random key kept in ``<data_dir>/automations.key``):

>>> key = b"k" * 32
>>> token = make_token(key, "p-1", "marketing_email")
>>> read_token(key, token)
('p-1', 'marketing_email')
>>> try:
...     read_token(key, token[:-2] + "xx")
... except InvalidInput as exc:
...     print(exc.message)
the unsubscribe link is not valid (it was changed or cut short)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis

from touchpoint.automations.definition import TRANSACTIONAL
from touchpoint.config import get_settings
from touchpoint.errors import InvalidInput
from touchpoint.privacy import consent as privacy_consent
from touchpoint.privacy import purposes
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.clock import utcnow
from touchpoint.warehouse.private_files import private_dir, write_private

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings

KEY_FILE = "automations.key"


def signing_key(settings: Settings) -> bytes:
    """The key that signs unsubscribe links and webhook bodies: the setting, else the data directory's own."""
    if settings.automations_signing_key:
        return settings.automations_signing_key.encode()
    path = Path(settings.data_dir).expanduser() / KEY_FILE
    if not path.exists():
        private_dir(path.parent)
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip().encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, profile_id: str, purpose: str) -> str:
    body = f"{profile_id}\n{purpose}".encode()
    mac = hmac.new(key, b"unsubscribe\n" + body, hashlib.sha256).digest()[:18]
    return f"{_b64(body)}.{_b64(mac)}"


def read_token(key: bytes, token: str) -> tuple[str, str]:
    """``(profile_id, purpose)`` of a valid token; :class:`InvalidInput` for anything else."""
    invalid = InvalidInput(
        "the unsubscribe link is not valid (it was changed or cut short)",
        hint="use the link from the email as it arrived",
    )
    try:
        body_text, mac_text = token.split(".", 1)
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, TypeError):
        raise invalid from None
    expected = hmac.new(key, b"unsubscribe\n" + body, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(mac, expected):
        raise invalid
    try:
        profile_id, purpose = body.decode().split("\n", 1)
    except (UnicodeDecodeError, ValueError):
        raise invalid from None
    return profile_id, purpose


def unsubscribe(wh: Warehouse, key: bytes, token: str) -> dict[str, Any]:
    """Record the denial a token stands for (again is harmless: the same token records nothing new)."""
    profile_id, purpose = read_token(key, token)
    if purpose == TRANSACTIONAL:  # a receipt's link: nothing to withdraw, and not a purpose to record
        return {"unsubscribed": True, "profile_id": profile_id, "purpose": purpose}
    privacy_consent.record_unsubscribe(wh, profile_id, purpose, token)
    return {"unsubscribed": True, "profile_id": profile_id, "purpose": purpose}


def with_consent(
    wh: Warehouse,
    people: ir.Table,
    purpose: str | None,
    *,
    column: str = "consent",
    at: ir.TimestampValue | None = None,
) -> ir.Table:
    """``people`` (with a ``profile_id`` column) plus a boolean ``column``: may we act on them for ``purpose``
    at ``at`` (an expression: a prepared read's bound instant; default the present)?"""
    if purpose is None or purpose == TRANSACTIONAL:
        return people.mutate(**{column: ibis.literal(True)})
    try:
        return privacy_consent.with_consent(wh, people, purpose, column=column, at=at)
    except InvalidInput:  # a purpose removed from consent_purposes since the automation was saved: none holds
        return people.mutate(**{column: ibis.literal(False)})


def shape(purpose: str | None) -> Hashable:
    """What shapes :func:`with_consent`'s query for ``purpose`` beside the data (the purpose's default, its
    regions' defaults, the country-to-region mapping, or that the purpose is unknown): the key of a
    prepared read that checks it, so a changed setting compiles the read again."""
    if purpose is None or purpose == TRANSACTIONAL:
        return "always"
    try:
        default = purposes.default_granted(purpose)
    except InvalidInput:
        return "unknown"
    regions = tuple(sorted(purposes.region_defaults(purpose).items()))
    return (purpose, default, regions, tuple(sorted(get_settings().consent_regions.items())) if regions else ())


now = utcnow  # the instant consent is judged at (the warehouse's clock)
