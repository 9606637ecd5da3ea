"""Unified customer profiles: traits, computed traits, timelines and search.

>>> from touchpoint.profiles import build, get_profile, timeline, search  # doctest: +SKIP
"""

from touchpoint.profiles.build import PROFILES, TRAITS, build

__all__ = ["PROFILES", "TRAITS", "build"]
