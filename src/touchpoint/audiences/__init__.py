"""Audiences: who to act on, defined in a JSON language, evaluated in the warehouse, with history.

A definition (:mod:`touchpoint.audiences.definition`) compiles to one Ibis expression
(:mod:`touchpoint.audiences.compile`); :mod:`touchpoint.audiences.refresh` keeps memberships current
(full or incremental) and :mod:`touchpoint.audiences.membership` reads them, now or at any past
instant. :mod:`touchpoint.audiences.workflow` is what the CLI, the HTTP API and jobs call.
See docs/audiences.md.
"""

from touchpoint.audiences.definition import parse, to_dict

__all__ = ["parse", "to_dict"]
