"""What the CLI, the HTTP API, jobs and the demo share: attribution from the warehouse or a path table.

Both return the model comparison (:func:`~touchpoint.journeys.attribution.comparison`) with the input
it was fitted on; from the warehouse, also cost per acquisition and return on ad spend per model
(:func:`~touchpoint.journeys.romi.romi`).

>>> from touchpoint.journeys.pathdata import PathData
>>> data = PathData.from_lists([["email", "direct"], ["search"]], conversions=[1, 1], value=[10, 30])
>>> out = attribute_paths(data, choose_models("last,first"))
>>> out["models"], out["input"]
(['last', 'first'], {'source': 'python', 'paths': 2})
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from touchpoint.collect.channels import ChannelRule
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput
from touchpoint.journeys.attribution import MODELS, comparison, fit_all
from touchpoint.journeys.pathdata import PathData
from touchpoint.warehouse import Warehouse


@dataclass(frozen=True)
class AttributionOptions:
    """How every chosen model is fitted (see :func:`touchpoint.journeys.attribution.attribute`)."""

    order: int = 1
    bootstrap: int = 0
    use_nulls: bool = True
    half_life: float | None = None
    value_function: str = "conversions"


def choose_models(names: str | Iterable[str]) -> list[str]:
    """The models to fit: ``all`` (alone or among the names) is every model; otherwise each name once, in
    order. A comma-separated string is split. Unknown names raise :class:`InvalidInput`."""
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen = [n.strip() for n in items if n.strip()]
    if "all" in chosen:
        return list(MODELS)
    for name in chosen:
        if name not in MODELS:
            raise InvalidInput(f"--model {name!r} is not known", hint=f"use one of: {', '.join(MODELS)} or all")
    return list(dict.fromkeys(chosen))


def attribute_paths(
    data: PathData, models: Sequence[str] = MODELS, options: AttributionOptions | None = None
) -> dict[str, Any]:
    """Fit ``models`` on aggregated journeys and compare them."""
    fitted = fit_all(data, models, **asdict(options or AttributionOptions()))
    out = comparison(fitted)
    out["input"] = {"source": data.source, "paths": data.n_paths}
    return out


def attribute_warehouse(
    wh: Warehouse,
    models: Sequence[str] = MODELS,
    options: AttributionOptions | None = None,
    *,
    lookback_days: float = 30.0,
    conversion_event: str = ORDER_COMPLETED,
    timeout_minutes: float = 30.0,
    rules: Sequence[ChannelRule] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    identity: str = "auto",
    romi: bool = True,
) -> dict[str, Any]:
    """Build the journeys from the event log (people by the customer rule, ``identity``), fit
    ``models``, compare them and, with ``romi``, join spend for CPA and ROAS (else ``romi`` is None)."""
    from touchpoint.journeys.romi import romi as romi_report
    from touchpoint.journeys.touches import journeys

    data = journeys(
        wh,
        lookback_days=lookback_days,
        conversion_event=conversion_event,
        timeout_minutes=timeout_minutes,
        rules=rules,
        start=start,
        end=end,
        identity=identity,
    )
    fitted = fit_all(data, models, **asdict(options or AttributionOptions()))
    out = comparison(fitted)
    out["romi"] = romi_report(wh, fitted, start=start, end=end) if romi else None
    out["input"] = {"source": data.source, "paths": data.n_paths}
    return out
