"""What the CLI, the HTTP API and the demo share: fit and save, plan, case, with their files.

A fitted model lives in a directory (default ``<data_dir>/mmm``): ``model.json`` + ``draws.npz``,
the summary ``fit.json``, and the charts ``romi.png``, ``contributions.png``, ``response_curves.png``.
``plan.json`` and ``case.json``/``case.html``/``case.png`` are written beside them.

A fit that replaces another is compared with it (``diagnostics.refit``): each channel's ROMI interval
before and after, how much it narrowed, and a drift flag when the new ROMI falls outside the previous
fit's interval (with what changed in between: data, settings, calibrations, library versions).
:func:`calibrate` and :func:`withdraw` are the measurement loop (:mod:`touchpoint.mmm.calibration`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.mmm import calibration, report
from touchpoint.mmm.case import investment_case
from touchpoint.mmm.config import LiftCalibration, MMMConfig
from touchpoint.mmm.dataset import MMMData
from touchpoint.mmm.lifetime import NEW_CUSTOMER_KPIS, Lifetime
from touchpoint.mmm.model import MMMResult, calibration_weeks, fit
from touchpoint.mmm.optimize import plan_budget


def model_dir(data_dir: str | Path) -> Path:
    """Where the fitted model of a data directory is kept."""
    return Path(data_dir) / "mmm"


def previous_summary(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``fit.json`` of the model in ``out_dir``, if there is a readable one."""
    path = Path(out_dir) / "fit.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def compare_fits(before: dict[str, Any], result: MMMResult) -> dict[str, Any]:
    """Each channel's ROMI before and after a refit, how much its interval narrowed, and drift.

    A channel drifts when its new posterior mean lies outside the previous fit's interval: the refit
    moved its ROMI by more than the previous fit said it knew. ``changed`` lists what differs between
    the two fits; with nothing changed (same data, settings, calibrations and versions) the draws are
    the same and nothing can drift."""
    after = result.summary()
    ids = lambda s: sorted(  # noqa: E731 - a one-line key
        c.get("calibration_id") or c.get("source", "") for c in s.get("config", {}).get("calibrations", [])
    )
    changed = [
        name
        for name, a, b in (
            ("data", before.get("data_hash"), after["data_hash"]),
            ("settings", _settings(before.get("config", {})), _settings(after["config"])),
            ("calibrations", ids(before), ids(after)),
            ("library versions", before.get("diagnostics", {}).get("versions"), after["diagnostics"]["versions"]),
        )
        if a != b
    ]
    channels: dict[str, Any] = {}
    for ch, now in after["romi"].items():
        was = before.get("romi", {}).get(ch)
        if not was:
            continue
        b, a = was["romi"], now["romi"]
        wb, wa = b["high"] - b["low"], a["high"] - a["low"]
        channels[ch] = {
            "before": {k: b[k] for k in ("mean", "low", "high")},
            "after": {k: a[k] for k in ("mean", "low", "high")},
            "width_before": wb,
            "width_after": wa,
            "narrowed_by": 1.0 - wa / wb if wb > 0 else 0.0,
            "drift": not b["low"] <= a["mean"] <= b["high"],
        }
    return {
        "previous": {
            "fitted_at": before.get("fitted_at"),
            "config_hash": before.get("config_hash"),
            "data_hash": before.get("data_hash"),
        },
        "changed": changed,
        "channels": channels,
        "drift": [ch for ch, v in channels.items() if v["drift"]],
    }


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "calibrations"}


def _flag_drift(result: MMMResult, refit: dict[str, Any]) -> None:
    for ch in refit["drift"]:
        v = refit["channels"][ch]
        b, a = v["before"], v["after"]
        why = ", ".join(refit["changed"]) or "nothing (the sampler is not reproducible here)"
        result.diagnostics["warnings"].append(
            f"ROMI of {ch} drifted: {a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}] lies outside the previous "
            f"fit's interval {b['mean']:.2f} [{b['low']:.2f}, {b['high']:.2f}]; changed since then: {why}"
        )
    if refit["drift"] and result.diagnostics["status"] == "ok":
        result.diagnostics["status"] = "warning"


def fit_and_save(
    data: MMMData, config: MMMConfig, out_dir: str | Path, *, previous: str | Path | None = None
) -> dict[str, Any]:
    """Fit, save the model and its charts into ``out_dir``; return the summary (with file paths).

    The fit is compared with the model it replaces (``previous``, default ``out_dir``): the summary's
    ``diagnostics.refit`` holds each channel's interval before and after and the channels that drifted,
    which are also warned about."""
    out = Path(out_dir)
    before = previous_summary(out if previous is None else previous)
    result = fit(data, config)
    result.diagnostics["refit"] = compare_fits(before, result) if before else None
    if before:
        _flag_drift(result, result.diagnostics["refit"])
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


def drift_report(summary: dict[str, Any]) -> dict[str, Any]:
    """The channels of a fit's summary that drifted against the previous fit, and the warnings saying so
    (what the weekly job writes in its run log)."""
    refit = summary.get("diagnostics", {}).get("refit") or {}
    drift = list(refit.get("drift", []))
    warnings = [w for w in summary.get("warnings", []) if w.startswith("ROMI of ") and " drifted: " in w]
    return {"drift": drift, "drift_warnings": warnings}


def with_calibrations(wh: Any, config: MMMConfig) -> MMMConfig:
    """``config`` with the warehouse's accepted calibrations (replacing any it had): what every fit of the
    warehouse's model uses (the CLI, the API, the weekly job)."""
    return replace(config, calibrations=calibration.active(wh))


def calibrate(
    wh: Any,
    key: str,
    out_dir: str | Path,
    *,
    channel: str | None = None,
    spend: float | None = None,
    options: calibration.LiftOptions | None = None,
    accept: bool = False,
    by: str = "",
    refit: bool = True,
    sources: Any = None,
) -> dict[str, Any]:
    """The measurement loop: read the lift ``key`` names, turn it into a return on the channel's spend in
    the test's weeks and, with ``accept``, store it (by ``by``) and refit the saved model with every
    accepted calibration. Returns ``proposal``, ``accepted`` (the stored row) and, after a refit,
    ``refit`` (the new summary) and ``narrowing`` (the channel's interval before and after)."""
    lift = calibration.measure(wh, key, options, sources=sources)
    return accept_lift(wh, lift, out_dir, channel=channel, spend=spend, accept=accept, by=by, refit=refit)


def accept_lift(
    wh: Any,
    lift: calibration.MeasuredLift,
    out_dir: str | Path,
    *,
    channel: str | None = None,
    spend: float | None = None,
    accept: bool = True,
    by: str = "",
    refit: bool = True,
) -> dict[str, Any]:
    """:func:`calibrate` from a lift already measured (what the demo's simulated geo test gives)."""
    saved = load(out_dir)
    prop = calibration.proposal(wh, lift, channel=channel, channels=saved.data.channels, spend=spend)
    probe = LiftCalibration(prop["channel"], lift.start, lift.end, prop["roi"], max(prop["roi_se"], 1e-12))
    _, unused = calibration_weeks(saved.data, saved.design, replace(saved.config, calibrations=(probe,)))
    if unused:
        raise InvalidInput(
            f"{lift.source} cannot calibrate the saved model: {unused[0]['reason']} (field: period)",
            hint="fit the model on data that include the test's weeks (`touchpoint mmm fit`), then calibrate",
            field="period",
        )
    out: dict[str, Any] = {"proposal": prop, "accepted": None, "refit": None, "narrowing": None}
    if not accept:
        out["note"] = "not stored: add --accept (API: accept: true) to calibrate the model with it"
        return out
    out["accepted"] = calibration.accept(wh, prop, by=by)
    if refit:
        out |= _refit(wh, saved, out_dir, prop["channel"])
    return out


def withdraw(wh: Any, calibration_id: str, out_dir: str | Path, *, by: str, refit: bool = True) -> dict[str, Any]:
    """Withdraw a calibration; with ``refit``, refit the saved model without it."""
    row = calibration.withdraw(wh, calibration_id, by=by)
    out: dict[str, Any] = {"withdrawn": row, "refit": None, "narrowing": None}
    if refit:
        out |= _refit(wh, load(out_dir), out_dir, row["channel"])
    return out


def _refit(wh: Any, saved: MMMResult, out_dir: str | Path, channel: str) -> dict[str, Any]:
    """Refit the saved model's data and settings with the warehouse's calibrations; the channel's change."""
    summary = fit_and_save(saved.data, with_calibrations(wh, saved.config), out_dir)
    refit = summary["diagnostics"].get("refit") or {}
    return {"refit": summary, "narrowing": {"channel": channel, **refit.get("channels", {}).get(channel, {})}}


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
