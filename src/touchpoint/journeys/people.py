"""Who did what: a ``person`` column for every event, by the customer rule of
:mod:`touchpoint.identity.people` (the resolved profile once identities are resolved, else
anonymous-to-user stitching inside the event log).

So the visits a visitor made before signing up count in their journey, and a person in a funnel
is the same customer as in a CLV fit, an experiment or the marketing-mix model.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> person_events(wh).count().to_pyarrow().as_py()
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis.expr.types as ir

from touchpoint.identity.people import Rule
from touchpoint.privacy.analytics import customer_events

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

Identity = Rule


def person_events(wh: Warehouse, *, identity: Identity | str = "auto", events: ir.Table | None = None) -> ir.Table:
    """The ``events`` table with a ``person`` column; rows with no identifier at all are dropped, and so are
    events analytics may not use (consent: :mod:`touchpoint.privacy.analytics`; ``events``, when given, is
    taken as it is).

    ``identity``: the rule of :func:`touchpoint.identity.people.customer_events`: ``auto``
    (profiles when identities are resolved, else ``stitch``), ``profiles``, ``stitch`` or ``raw``
    (``coalesce(user_id, anonymous_id)``).
    """
    out = customer_events(wh, events, rule=identity, name="person")
    return out.filter(out.person.notnull())
