"""The consent purposes: which there are, and what holds while a person has said nothing.

Purposes come from the ``consent_purposes`` setting (docs/configuration.md): each is ``opt_in``
(denied until granted: marketing, advertising, sharing) or ``opt_out`` (granted until denied:
analytics, personalisation). ``transactional`` (receipts, password resets) is no purpose: it needs
no consent and is never recorded.

A purpose's default may differ by region (``consent_region_defaults``): a person's region is the
trait ``consent_region`` when set, else their ``country`` trait (ISO 3166-1 alpha-2) mapped by
``consent_regions`` (EU and EEA countries -> ``EU`` by default; any other country is its own region);
a person with neither gets the purpose's own default.

>>> from touchpoint.config import Settings
>>> settings = Settings()
>>> default_granted("analytics", settings), default_granted("marketing_email", settings)
(True, False)
>>> eu = Settings(consent_region_defaults={"analytics": {"EU": "opt-in"}})
>>> default_granted("analytics", eu, region="EU"), default_granted("analytics", eu, region="US")
(False, True)
>>> region_of("se", eu), region_of("US", eu), region_of(None, eu)
('EU', 'US', None)
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


def default_granted(purpose: str, settings: Settings | None = None, *, region: str | None = None) -> bool:
    """Whether ``purpose`` holds for a person who never said (opt-out purposes hold), in ``region`` if known."""
    name = check(purpose, "purpose", settings)
    if region is not None:
        by_region = region_defaults(name, settings)
        if region.upper() in by_region:
            return by_region[region.upper()]
    return purposes(settings)[name] == OPT_OUT


def region_defaults(purpose: str, settings: Settings | None = None) -> dict[str, bool]:
    """``{region: granted by default}`` for ``purpose`` as configured in ``consent_region_defaults``."""
    configured = _settings(settings).consent_region_defaults.get(purpose, {})
    return {region: kind == OPT_OUT for region, kind in configured.items()}


def granted_everywhere(purpose: str, settings: Settings | None = None) -> bool:
    """Whether ``purpose`` holds by default for every person who never said, whatever their region."""
    return default_granted(purpose, settings) and all(region_defaults(purpose, settings).values())


def region_of(country: str | None, settings: Settings | None = None) -> str | None:
    """The consent region of a country code (``consent_regions``; an unlisted country is its own region)."""
    if not country or not country.strip():
        return None
    code = country.strip().upper()
    return _settings(settings).consent_regions.get(code, code)


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
        {
            "purpose": name,
            "default": kind,
            "default_granted": kind == OPT_OUT,
            "default_by_region": dict(_settings(settings).consent_region_defaults.get(name, {})),
        }
        for name, kind in sorted(purposes(settings).items())
    ]
