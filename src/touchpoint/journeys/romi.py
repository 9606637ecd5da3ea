"""The ROMI bridge: credited conversions and revenue per channel next to what each channel cost.

Spend comes from the ``spend`` table summed per channel over the same period as the conversions.
Channel names are matched after normalising both sides (lower case, runs of anything but letters
and digits become ``_``), so ``"Paid Search"`` in spend meets ``paid_search`` from the channel
rules; ``aliases`` maps other spend names onto channels (``{"google_ads": "paid_search"}``).

For each model: cost per acquisition ``CPA = spend / credited conversions`` and return on ad spend
``ROAS = credited revenue / spend``. When the attribution was bootstrapped, their intervals follow
from the credit intervals (spend is taken as known).

>>> from touchpoint.journeys.pathdata import PathData
>>> from touchpoint.journeys.attribution import attribute
>>> r = attribute(PathData.from_lists([["email"]], conversions=[4], value=[100]), "last")
>>> romi_table({"last": r}, {"email": 50.0})["rows"][0]["cpa"]
12.5
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from touchpoint.journeys.attribution import CAVEAT, AttributionResult

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse


def normalise_channel(name: str) -> str:
    """``"Paid Search"`` -> ``"paid_search"``."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def spend_by_channel(
    wh: Warehouse,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Total spend per (normalised) channel over ``[start, end)`` from the ``spend`` table."""
    t = wh.table("spend")
    if start is not None:
        t = t.filter(t.date >= start.date())
    if end is not None:
        t = t.filter(t.date < end.date())
    rows = wh.to_arrow(t.group_by("channel").agg(amount=t.amount.sum())).to_pylist()
    alias = {normalise_channel(k): normalise_channel(v) for k, v in (aliases or {}).items()}
    out: dict[str, float] = {}
    for r in rows:
        key = normalise_channel(r["channel"])
        key = alias.get(key, key)
        out[key] = out.get(key, 0.0) + float(r["amount"] or 0.0)
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def romi_table(results: Mapping[str, AttributionResult], spend: Mapping[str, float]) -> dict[str, Any]:
    """Rows per (model, channel) with spend, credited conversions and revenue, CPA and ROAS."""
    rows = []
    spend_n = {normalise_channel(k): float(v) for k, v in spend.items()}
    for model, res in results.items():
        credited = {normalise_channel(c): i for i, c in enumerate(res.channels)}
        for key in sorted(set(credited) | set(spend_n)):
            i = credited.get(key)
            conv = float(res.conversions[i]) if i is not None else 0.0
            value = float(res.value[i]) if i is not None else 0.0
            cost = spend_n.get(key, 0.0)
            row: dict[str, Any] = {
                "model": model,
                "channel": res.channels[i] if i is not None else key,
                "spend": cost,
                "conversions": conv,
                "revenue": value,
                "cpa": _ratio(cost, conv) if cost > 0 else None,
                "roas": _ratio(value, cost),
            }
            if i is not None and "conversions" in res.intervals and cost > 0:
                lo, hi = res.intervals["conversions"][:, i]
                vlo, vhi = res.intervals["value"][:, i]
                row["cpa_ci"] = [_ratio(cost, float(hi)), _ratio(cost, float(lo))]
                row["roas_ci"] = [float(vlo) / cost, float(vhi) / cost]
            rows.append(row)
    return {
        "rows": rows,
        "total_spend": sum(spend_n.values()),
        "unmatched_spend": sorted(
            k for k in spend_n if not any(k in {normalise_channel(c) for c in r.channels} for r in results.values())
        ),
        "method": "CPA = spend / credited conversions; ROAS = credited revenue / spend; "
        "spend and conversions over the same period",
        "caveat": CAVEAT,
    }


def romi(
    wh: Warehouse,
    results: Mapping[str, AttributionResult],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`romi_table` with spend read from the warehouse for ``[start, end)``."""
    out = romi_table(results, spend_by_channel(wh, start=start, end=end, aliases=aliases))
    out["period"] = {"start": start, "end": end}
    return out
