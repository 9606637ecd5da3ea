"""Merge rules: which identifiers link, in which priority, how many of each a profile may hold.

The rules are plain data (:class:`MergeRules`) with a ``to_dict``/``from_dict`` round trip and a
stable :meth:`~MergeRules.fingerprint`, stored with every resolution so that an incremental
update made under other rules is refused instead of silently mixing two partitions.

>>> rules = MergeRules(limits={"email": 3}, blocked_values=("test@example.com",))
>>> rules.limit("user_id"), rules.limit("email"), rules.limit("anonymous_id")
(1, 3, None)
>>> is_junk("  NULL ") and is_junk("0000") and is_junk("[object Object]") and not is_junk("u-42")
True
>>> MergeRules.from_dict(rules.to_dict()) == rules
True
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from touchpoint.errors import InvalidInput

#: Values that never link, compared trimmed and lower-cased.
JUNK_VALUES: tuple[str, ...] = (
    "",
    "null",
    "none",
    "nil",
    "undefined",
    "nan",
    "anonymous",
    "anon",
    "guest",
    "unknown",
    "n/a",
    "na",
    "test",
    "user",
    "0",
    "-1",
    "[object object]",
    "{}",
    "[]",
    "true",
    "false",
)
#: Placeholder addresses typed into forms to get past them; they never link either.
JUNK_EMAILS: tuple[str, ...] = (
    "test@test.com",
    "test@example.com",
    "example@example.com",
    "user@example.com",
    "email@email.com",
    "email@example.com",
    "noemail@noemail.com",
    "no@email.com",
    "none@none.com",
    "null@null.com",
    "na@na.com",
    "a@a.com",
    "x@x.com",
    "asdf@asdf.com",
    "noreply@noreply.com",
)
#: Values made only of zeros, dashes, dots, spaces or underscores ("0000", "--", "00000000-0000-...").
JUNK_PATTERN = r"^[0\-_. ]*$"
_JUNK_RE = re.compile(JUNK_PATTERN)

BUILTIN_TYPES = ("user_id", "email", "phone", "anonymous_id")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PATH = re.compile(r"^(traits|context|properties)(\.[A-Za-z0-9_$\-]+)+$")


def is_junk(value: str | None, extra: tuple[str, ...] = ()) -> bool:
    """True when ``value`` must never link two identifiers (the Python twin of the engine rule)."""
    if value is None:
        return True
    text = value.strip().lower()
    return text in JUNK_VALUES or text in extra or bool(_JUNK_RE.match(text))


@dataclass(frozen=True)
class ExternalId:
    """An identifier read from a JSON path of the event, e.g. ``traits.loyalty_id``.

    ``type`` names the identifier type (``loyalty_id``); ``path`` is ``traits.``, ``context.`` or
    ``properties.`` followed by keys. Identify calls sent by Segment's libraries also carry
    ``context.traits``, so ``traits.x`` reads ``context.traits.x`` too when ``traits.x`` is absent.
    """

    type: str
    path: str

    def __post_init__(self) -> None:
        if not _TYPE_NAME.match(self.type) or self.type in BUILTIN_TYPES:
            raise InvalidInput(
                f"external id type {self.type!r} is not allowed",
                hint="use lower-case letters, digits and '_' (not user_id, email, phone or anonymous_id)",
            )
        if not _PATH.match(self.path):
            raise InvalidInput(
                f"external id path {self.path!r} is not a JSON path of the event",
                hint="write e.g. 'traits.loyalty_id', 'context.traits.crm_id' or 'properties.account_no'",
            )


@dataclass(frozen=True)
class MergeRules:
    """How identifiers become profiles.

    ``priority``: identifier types from most to least trusted. An event belongs to the profile of
    its most trusted identifier, and a profile's anchor is chosen by it on ties. Types not listed
    (external ids from ``context.externalIds``) rank after the listed ones, before ``anonymous_id``.

    ``limits``: most identifiers of one type a profile may hold (``None``: no limit). A link that
    would exceed one is refused and recorded with that reason, so two known people are never
    merged through a shared device or a shared address.

    ``blocked_values``: extra junk values (compared trimmed, lower-cased) on top of
    :data:`JUNK_VALUES` and :data:`JUNK_PATTERN`. ``blocked_emails`` likewise for emails only, on top of
    :data:`JUNK_EMAILS`.

    ``external_ids``: identifiers read from event JSON (:class:`ExternalId`);
    ``segment_external_ids`` also reads Segment's ``context.externalIds`` list (``[{id, type}]``).

    ``default_country_code``: digits (e.g. ``"44"``) used to put national phone numbers
    (``020 7946 0958``) in E.164 form; without it only numbers sent with ``+`` or ``00`` are E.164,
    others are kept as their digits.
    """

    priority: tuple[str, ...] = ("user_id", "email", "phone", "anonymous_id")
    limits: dict[str, int | None] = field(
        default_factory=lambda: {"user_id": 1, "email": 5, "phone": 5, "anonymous_id": None}
    )
    default_limit: int | None = 5
    blocked_values: tuple[str, ...] = ()
    blocked_emails: tuple[str, ...] = ()
    external_ids: tuple[ExternalId, ...] = ()
    segment_external_ids: bool = True
    default_country_code: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", tuple(self.priority))
        object.__setattr__(self, "blocked_values", tuple(v.strip().lower() for v in self.blocked_values))
        object.__setattr__(self, "blocked_emails", tuple(v.strip().lower() for v in self.blocked_emails))
        object.__setattr__(
            self,
            "external_ids",
            tuple(e if isinstance(e, ExternalId) else ExternalId(**e) for e in self.external_ids),
        )
        merged = {"user_id": 1, "email": 5, "phone": 5, "anonymous_id": None}
        merged.update(self.limits)
        object.__setattr__(self, "limits", merged)
        for name, value in merged.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidInput(
                    f"merge rule limits[{name!r}] = {value!r} is not a positive whole number",
                    hint="use 1 or more, or null for no limit",
                )
        if self.default_limit is not None and self.default_limit < 1:
            raise InvalidInput(f"default_limit {self.default_limit!r} must be 1 or more (or null)")
        if len(set(self.priority)) != len(self.priority):
            raise InvalidInput(f"merge rule priority {list(self.priority)} names a type twice")
        for name in self.priority:
            if not _TYPE_NAME.match(name):
                raise InvalidInput(f"merge rule priority names {name!r}, which is not an identifier type")
        if self.default_country_code is not None and not re.fullmatch(r"[1-9][0-9]{0,2}", self.default_country_code):
            raise InvalidInput(
                f"default_country_code {self.default_country_code!r} is not a country calling code",
                hint="give digits only, e.g. '44' or '1'",
            )

    # -- lookups ---------------------------------------------------------------------------------
    def limit(self, id_type: str) -> int | None:
        """The most identifiers of ``id_type`` one profile may hold (None: unlimited)."""
        if id_type in self.limits:
            return self.limits[id_type]
        return self.default_limit

    def rank(self, id_type: str) -> int:
        """Priority rank of a type: 0 is most trusted. Unlisted types rank just before anonymous_id."""
        if id_type in self.priority:
            position = self.priority.index(id_type)
            if id_type == "anonymous_id":
                return 1000 + position
            return position
        return 500

    def types(self) -> tuple[str, ...]:
        """Every identifier type these rules can produce, most trusted first."""
        names = set(self.priority) | set(BUILTIN_TYPES) | {e.type for e in self.external_ids}
        return tuple(sorted(names, key=lambda n: (self.rank(n), n)))

    # -- (de)serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["priority"] = list(self.priority)
        data["blocked_values"] = list(self.blocked_values)
        data["blocked_emails"] = list(self.blocked_emails)
        data["external_ids"] = [asdict(e) for e in self.external_ids]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeRules:
        """Build rules from a dict (a config file section); unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"unknown merge rule setting(s): {', '.join(sorted(unknown))}",
                hint=f"use only: {', '.join(sorted(known))}",
            )
        values = dict(data)
        for key in ("priority", "blocked_values", "blocked_emails"):
            if key in values:
                values[key] = tuple(values[key])
        if "external_ids" in values:
            values["external_ids"] = tuple(
                e if isinstance(e, ExternalId) else ExternalId(**e) for e in values["external_ids"]
            )
        return cls(**values)

    def fingerprint(self) -> str:
        """A short hash of everything that changes the partition."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
