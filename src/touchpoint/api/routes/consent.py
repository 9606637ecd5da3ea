"""Consent over HTTP: record a person's consent (admin key), read its state and history (read key).

``POST /v1/consent`` ``{"identifier", "purposes": [...] | "purpose", "granted": bool, "type"?,
"valid_from"?, "valid_until"?, "proof"?}``; ``GET /v1/profiles/{identifier}/consent``;
``GET /v1/consent/purposes``; ``POST /v1/email/events`` (bounces and spam complaints, admin key).
See docs/privacy.md, "Consent".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.privacy import audit, bounces, consent, purposes

router = APIRouter(tags=["privacy"])


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(..., min_length=1, max_length=1000, description="any identifier, or a profile id")
    type: str | None = Field(None, max_length=100, description="only match this identifier type (e.g. email)")
    purposes: Any = Field(None, description="purpose names (a list), or one name")
    purpose: Any = Field(None, description="one purpose name (instead of purposes)")
    granted: Any = Field(..., description="true: consent given; false: withdrawn")
    valid_from: datetime | None = Field(None, description="when it starts to hold (default: now)")
    valid_until: datetime | None = Field(None, description="when it stops holding (default: until changed)")
    proof: str | None = Field(None, max_length=1000, description="a reference to the consent's record")


@router.post(
    "/v1/consent", summary="Record consent given or withdrawn for one or more purposes", **audited("consent.set")
)
def record_consent(body: ConsentBody, app: State, scope: AdminKey, note: Audit) -> dict[str, Any]:
    note.subject = audit.pseudonym(app.warehouse, body.identifier)
    names = body.purposes if body.purposes is not None else body.purpose
    if names is None:
        names = []
    if not isinstance(names, str | list):
        names = [names]  # reported by name below
    out = consent.set_consent(
        app.warehouse,
        body.identifier,
        names,
        body.granted,
        source="api",
        actor=f"api key ({scope})",
        proof=body.proof,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        id_type=body.type,
        settings=app.settings,
    )
    note.subject, note.rows = out["profile_id"], len(out["recorded"])
    return out


@router.get(
    "/v1/profiles/{identifier}/consent",
    summary="A person's consent per purpose now, and its history",
    **audited("consent.read"),
)
def show_consent(
    identifier: str,
    app: State,
    _key: ReadKey,
    id_type: str | None = Query(None, alias="type", description="only match this identifier type"),
) -> dict[str, Any]:
    return consent.show(app.warehouse, identifier, id_type=id_type, settings=app.settings)


@router.get("/v1/consent/purposes", summary="The consent purposes and their defaults")
def list_purposes(app: State, _key: ReadKey) -> dict[str, Any]:
    return {"purposes": purposes.describe(app.settings)}


class EmailEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(..., max_length=20, description="hard_bounce, soft_bounce or complaint")
    email: str = Field(..., max_length=320, description="the recipient's address")
    message_id: str | None = Field(None, max_length=1000, description="the message's id (makes a retry a no-op)")
    time: datetime | None = Field(None, description="when it happened (default: now)")
    reason: str | None = Field(None, max_length=2000, description="the provider's text; not stored")


class EmailEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EmailEvent] = Field(..., max_length=bounces.MAX_EVENTS)


@router.post(
    "/v1/email/events",
    summary="Bounces and spam complaints from the mail provider: complaints and hard bounces stop marketing email",
    **audited("consent.email_events"),
)
def email_events(body: EmailEvents, app: State, scope: AdminKey, note: Audit) -> dict[str, Any]:
    out = bounces.record(
        app.warehouse, [e.model_dump(exclude_none=True) for e in body.events], actor=f"api key ({scope})"
    )
    note.rows = out["recorded"]
    note.detail = dict(out["counts"])  # the counts, never the addresses
    return out
