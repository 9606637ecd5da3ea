"""What the CLI, the HTTP API and the demo share: fit and save, plan, case, with their files.

A fitted model lives in a directory (default ``<data_dir>/mmm``): ``model.json`` + ``draws.npz``,
the summary ``fit.json``, and the charts ``romi.png``, ``contributions.png``, ``response_curves.png``.
``plan.json`` and ``case.json``/``case.html``/``case.png`` are written beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.mmm import report
from touchpoint.mmm.case import investment_case
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.dataset import MMMData
from touchpoint.mmm.lifetime import NEW_CUSTOMER_KPIS, Lifetime
from touchpoint.mmm.model import MMMResult, fit
from touchpoint.mmm.optimize import plan_budget


def model_dir(data_dir: str | Path) -> Path:
    """Where the fitted model of a data directory is kept."""
    return Path(data_dir) / "mmm"


def fit_and_save(data: MMMData, config: MMMConfig, out_dir: str | Path) -> dict[str, Any]:
    """Fit, save the model and its charts into ``out_dir``; return the summary (with file paths)."""
    out = Path(out_dir)
    result = fit(data, config)
    result.save(out)
    summary = result.summary()
    summary["contributions"] = result.contributions_over_time()
    summary["response_curves"] = result.response_curves()
    files = {
        "romi": report.plot_romi(summary, out / "romi.png"),
        "contributions": report.plot_contributions(summary["contributions"], out / "contributions.png", result.status),
        "response_curves": report.plot_response_curves(
            summary["response_curves"], out / "response_curves.png", result.status
        ),
    }
    summary["files"] = {k: str(v) for k, v in files.items()} | {"model": str(out / "model.json")}
    (out / "fit.json").write_text(json.dumps(summary))
    return summary


def load(out_dir: str | Path) -> MMMResult:
    return MMMResult.load(out_dir)


def make_plan(result: MMMResult, out_dir: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`plan_budget` and, with ``out_dir``, save it as ``plan.json``."""
    plan = plan_budget(result, **kwargs)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        path = Path(out_dir) / "plan.json"
        path.write_text(json.dumps(plan, indent=1))
        plan["file"] = str(path)
    return plan


def read_plan(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise NotFound(f"plan file {str(p)!r} does not exist", hint="make one with `touchpoint mmm plan --budget N`")
    try:
        plan = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{p} is not JSON ({exc.msg}, line {exc.lineno})",
            hint="use the plan.json that `touchpoint mmm plan` writes",
        ) from exc
    if not isinstance(plan, dict):
        raise InvalidInput(f"{p} does not hold a plan object", hint="use the plan.json `touchpoint mmm plan` writes")
    return plan


def order_values(wh: Any) -> tuple[float | None, float | None]:
    """(mean first-order revenue, mean repeat-order revenue) over customers by the customer rule, with
    "first" as the new-customer KPIs define it (each customer's earliest order)."""
    import ibis

    from touchpoint.predict.summary import orders_from_events

    o = orders_from_events(wh)
    o = o.filter(o.customer_id.notnull())
    o = o.mutate(rank=ibis.row_number().over(group_by=o.customer_id, order_by=[o.ts, o.revenue]))
    row = wh.to_arrow(
        o.aggregate(
            first=o.revenue.mean(where=o.rank == 0),
            repeat=o.revenue.mean(where=o.rank > 0),
        )
    ).to_pylist()[0]
    return row["first"], row["repeat"]


def lifetime_for(result: MMMResult, wh: Any) -> Lifetime | None:
    """The CLV bridge for ``result``'s investment case: the latest CLV run's models and the
    warehouse's mean first-order value; None when the model is not of new customers or no CLV run
    exists (the case then counts first orders only, and says so)."""
    from touchpoint.predict.fitted import fitted_value
    from touchpoint.predict.summary import unit_days

    if result.data.target_name not in NEW_CUSTOMER_KPIS:
        return None
    fv = fitted_value(wh)
    if fv is None:
        return None
    first, repeat = order_values(wh)
    if not first:
        return None
    return Lifetime(
        fv.model, fv.spend, unit_days(fv.options.unit), float(first), repeat_order_value=repeat and float(repeat)
    )


def make_case(
    result: MMMResult, plan: dict[str, Any], out_dir: str | Path | None = None, **kwargs: Any
) -> dict[str, Any]:
    """:func:`investment_case`; with ``out_dir`` also ``case.json``, ``case.png``, ``case.html`` and ``case.pdf``."""
    case = investment_case(result, plan, **kwargs)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        png = report.plot_case(case, out / "case.png")
        (out / "case.html").write_text(report.case_html(case, plan, png))
        pdf = report.case_pdf(case, plan, out / "case.pdf")
        case["files"] = {
            "json": str(out / "case.json"),
            "png": str(png),
            "html": str(out / "case.html"),
            "pdf": str(pdf),
        }
        (out / "case.json").write_text(json.dumps(case, indent=1))
    return case
