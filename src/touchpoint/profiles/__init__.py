"""Unified customer profiles: traits, computed traits, timelines and search.

``build(wh)`` rebuilds the ``profiles`` and ``profile_traits`` tables from the events and the
identities (:mod:`touchpoint.identity`); :func:`get_profile`, :func:`timeline` and :func:`search`
read them. See ``docs/identity.md``.
"""

from touchpoint.profiles.build import PROFILES, TRAITS, build
from touchpoint.profiles.lookup import get_profile, search, stats
from touchpoint.profiles.timeline import timeline

__all__ = ["PROFILES", "TRAITS", "build", "get_profile", "search", "stats", "timeline"]
