"""In-memory event tables for trying journey expressions without a warehouse (docs, tests).

>>> t = events_table([{"person": "p", "type": "page", "url": "https://s.example/?gclid=x"}])
>>> t.columns[:3]
('message_id', 'type', 'event')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.warehouse.schema import EVENTS


def events_table(rows: Sequence[Mapping[str, Any]]) -> ir.Table:
    """An Ibis memtable with the ``events`` columns (JSON ones as strings) plus ``person``.

    Missing keys are null; ``message_id`` defaults to the row number.
    """
    fields = [(n, pa.string() if isinstance(t, dt.JSON) else t.to_pyarrow()) for n, t in EVENTS.schema.items()]
    fields.append(("person", pa.string()))
    schema = pa.schema(fields)
    data: dict[str, list[Any]] = {name: [] for name in schema.names}
    for i, row in enumerate(rows):
        for name in schema.names:
            value = row.get(name)
            if name == "message_id" and value is None:
                value = f"m{i:06d}"
            data[name].append(value)
    return ibis.memtable(pa.table(data, schema=schema))
