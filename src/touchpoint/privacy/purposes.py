"""The consent purposes: which there are, and what holds while a person has said nothing.

Purposes come from the ``consent_purposes`` setting (docs/configuration.md): each is ``opt_in``
(denied until granted: marketing, advertising, sharing) or ``opt_out`` (granted until denied:
analytics, personalisation). ``transactional`` (receipts, password resets) is no purpose: it needs
no consent and is never recorded.

>>> from touchpoint.config import Settings
>>> settings = Settings()
>>> default_granted("analytics", settings), default_granted("marketing_email", settings)
(True, False)
>>> try:
...     check("email", "purpose", settings)
... except InvalidInput as exc:
...     print(exc.message)  # doctest: +ELLIPSIS
purpose: 'email' is not a consent purpose (known: advertising, analytics, marketing_email, ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from touchpoint.errors import InvalidInput

if TYPE_CHECKING:
    from touchpoint.config import Settings

TRANSACTIONAL = "transactional"  # needs no consent (receipts, password resets)
OPT_IN, OPT_OUT = "opt_in", "opt_out"


def _settings(settings: Settings | None) -> Settings:
    from touchpoint.config import get_settings

    return settings if settings is not None else get_settings()


def purposes(settings: Settings | None = None) -> dict[str, str]:
    """``{purpose: "opt_in" | "opt_out"}`` as configured."""
    return dict(_settings(settings).consent_purposes)


def default_granted(purpose: str, settings: Settings | None = None) -> bool:
    """Whether ``purpose`` holds for a person who never said (opt-out purposes hold)."""
    return purposes(settings)[check(purpose, "purpose", settings)] == OPT_OUT


def granted_everywhere(purpose: str, settings: Settings | None = None) -> bool:
    """Whether ``purpose`` holds by default for every person who never said (whatever their region)."""
    return default_granted(purpose, settings)


def check(name: Any, field: str, settings: Settings | None = None) -> str:
    """``name`` if it is a configured purpose; else :class:`InvalidInput` naming ``field``."""
    known = purposes(settings)
    if not isinstance(name, str) or name not in known:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise InvalidInput(
            f"{field}: {shown} is not a consent purpose (known: {', '.join(sorted(known))})",
            hint="use one of the known purposes, or add it to the consent_purposes setting (docs/privacy.md)",
        )
    return name


def describe(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Each purpose with its default, for listings (``GET /v1/consent/purposes``)."""
    return [
        {"purpose": name, "default": kind, "default_granted": kind == OPT_OUT}
        for name, kind in sorted(purposes(settings).items())
    ]
