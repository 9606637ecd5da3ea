"""The KPIs that matter, each with its value, interval, sample size and method: what ``touchpoint kpis``
and ``GET /v1/kpis`` print (the one workflow both call).

- ``customer_equity``: the sum of CLV over customers, with its change by quarter split into
  acquisition, retention and spend per customer (:mod:`touchpoint.plan.equity`);
- ``satisfaction``: mean score and top-box share of the ``csat`` survey, by segment and quarter
  (:mod:`touchpoint.plan.satisfaction`);
- ``relative_attractiveness``: our mean rating over the alternatives' among respondents who rated
  both, and whether it predicts who stays (:mod:`touchpoint.plan.attractiveness`);
- ``nps`` only when asked, beside the documented reason it is not a headline KPI.

See docs/kpis.md for the methods and their references.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> k = kpis(wh)
>>> sorted(k["kpis"]), k["customer_equity"]["n"], k["satisfaction"]["n"]
(['customer_equity', 'relative_attractiveness', 'satisfaction'], 0, 0)
"""

from __future__ import annotations

from typing import Any

from touchpoint.plan import attractiveness, equity, satisfaction
from touchpoint.plan.surveys import answers, in_period, quarter_bounds
from touchpoint.predict.clv import PREDICTIONS_TABLE
from touchpoint.predict.store import clean
from touchpoint.warehouse import Warehouse

LEVEL = 0.9
HEADLINE = ("customer_equity", "satisfaction", "relative_attractiveness")


def _predictions(wh: Warehouse) -> dict[str, dict[str, float]]:
    t = wh.table(PREDICTIONS_TABLE)
    rows = wh.to_arrow(t.select("customer_id", "p_alive", "clv")).to_pydict()
    return {
        c: {"p_alive": p if p is not None else float("nan"), "clv": v if v is not None else float("nan")}
        for c, p, v in zip(rows["customer_id"], rows["p_alive"], rows["clv"], strict=True)
    }


def attractiveness_kpi(wh: Warehouse, brand: str | None, *, quarter: str | None = None) -> dict[str, Any]:
    """The relative-attractiveness KPI (``brand`` is the ``brand_name`` setting)."""
    a = answers(wh, "attractiveness")
    if quarter is not None:
        a = in_period(a, *quarter_bounds(quarter))
    if not brand:
        brands = sorted({str(b) for b in a.brand})[:10]
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": 0,
            "method": "our brand is not named",
            "hint": "set brand_name (TOUCHPOINT_BRAND_NAME or brand_name in touchpoint.toml)"
            + (f"; the brands rated are {brands}" if brands else ""),
        }
    if len(a) == 0:
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": 0,
            "method": "no usable attractiveness answers",
            "hint": 'send track("Survey Responded", {"survey": "attractiveness", "brand": "'
            + brand
            + '", "score": 7, "scale_max": 10}) and the same for the alternatives the respondent knows',
            "skipped": a.skipped,
        }
    out = attractiveness.index(a, brand, level=LEVEL)
    out["relation_to_retention_and_clv"] = attractiveness.relation(a, brand, _predictions(wh), level=LEVEL)
    return out


def kpis(
    wh: Warehouse,
    *,
    quarter: str | None = None,
    brand: str | None = None,
    by: str | None = "segment",
    nps: bool = False,
    equity_draws: int = equity.DRAWS,
) -> dict[str, Any]:
    """Every KPI; with ``quarter`` (``2026Q3``), survey KPIs use that quarter's answers and customer
    equity is valued at its end. ``by`` is the survey answers' property for the by-segment split."""
    if quarter is not None:
        quarter_bounds(quarter)
    csat = answers(wh, "csat", by=by)
    if quarter is not None:
        series = satisfaction.summarise(csat, level=LEVEL).get("by_quarter", [])
        csat_kpi = satisfaction.summarise(in_period(csat, *quarter_bounds(quarter)), level=LEVEL, by_quarter=False)
        csat_kpi["by_quarter"] = series
    else:
        csat_kpi = satisfaction.summarise(csat, level=LEVEL)
    out: dict[str, Any] = {
        "quarter": quarter.strip().upper() if quarter else None,
        "interval": LEVEL,
        "kpis": list(HEADLINE),
        "customer_equity": equity.customer_equity(wh, quarter=quarter, draws=equity_draws),
        "satisfaction": csat_kpi,
        "relative_attractiveness": attractiveness_kpi(wh, brand, quarter=quarter),
    }
    if nps:
        a = answers(wh, "nps")
        if quarter is not None:
            a = in_period(a, *quarter_bounds(quarter))
        out["nps"] = satisfaction.nps(a, level=LEVEL)
    cleaned: dict[str, Any] = clean(out)  # NaN -> None: valid JSON for the API and --json
    return cleaned
