"""An automation's holdout lift as a calibration of the marketing-mix model (``automation:NAME`` keys).

The measuring core (:mod:`touchpoint.mmm.calibration`) reads experiments; automations sit above it, so
this module adds their source: :data:`SOURCES` is every kind a key can name, and the CLI, the API and the
jobs pass it to :func:`touchpoint.mmm.workflow.calibrate`.

The holdout lift is a difference in goal rates (:func:`touchpoint.automations.lift.lift`, absolute, by the
frequentist engine): the incremental conversions are that difference times the treated entrants, and
their revenue is ``value_per_conversion`` each (the automation counts conversions, not money). The
period runs from the automation's first entry to now.
"""

from __future__ import annotations

from datetime import datetime

from touchpoint.automations import lift as lifts
from touchpoint.automations import store
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.mmm import calibration
from touchpoint.mmm.calibration import LiftOptions, MeasuredLift, Resolver
from touchpoint.warehouse import Warehouse, schema


def from_automation(wh: Warehouse, name: str, opts: LiftOptions) -> MeasuredLift:
    """The revenue an automation's treated entrants earned over its held-out ones."""
    try:
        store.get(wh, name)
    except NotFound:
        raise NotFound(
            f"no automation {name!r} (field: --from-experiment automation:NAME)",
            hint=f"`touchpoint automations list` shows them; {calibration.KEY_HINT}",
        ) from None
    value = opts.value_per_conversion
    if value is None or not value > 0:
        raise InvalidInput(
            f"automation {name!r} counts conversions, not money (field: --value-per-conversion)",
            hint="pass --value-per-conversion with the revenue of one goal conversion, e.g. the mean order value",
            field="value_per_conversion",
        )
    at = store.now()
    out = lifts.lift(wh, name, now=at, engine="frequentist", alpha=1 - opts.level, relative=False)
    if out.get("status") in (None, "insufficient_data", "srm_failed") or "lift" not in out:
        raise InvalidInput(
            f"automation {name!r} has no usable holdout lift yet: {out.get('verdict') or out.get('status')}",
            hint="wait for more entrants in both arms (the message says how many are needed)",
        )
    est = out["lift"]
    treated = float(out["entrants"]["treated"])
    z = calibration._z(opts.level)
    se = (est["ci_high"] - est["ci_low"]) / (2 * z) * treated * value
    en = wh.table(schema.AUTOMATION_ENTRIES.name)
    first = wh.to_arrow(en.filter(en.automation == name).entered_at.min())
    first = first.as_py() if hasattr(first, "as_py") else first
    if not isinstance(first, datetime):
        raise InvalidInput(f"automation {name!r} has no entrants yet", hint="wait until people enter it")
    return MeasuredLift(
        source=f"automation:{name}",
        start=first.date().isoformat(),
        end=at.date().isoformat(),
        incremental=est["estimate"] * treated * value,
        low=est["ci_low"] * treated * value,
        high=est["ci_high"] * treated * value,
        se=se,
        level=opts.level,
        metric=f"{out['goal']['event']} within {out['goal']['within_days']} days",
        units=treated,
        details={"goal_rate": out["goal_rate"], "value_per_conversion": value, "status": out["status"]},
    )


#: Every kind of key the measurement loop reads: the measuring core's and the automations' holdouts.
SOURCES: dict[str, Resolver] = {**calibration.SOURCES, "automation": from_automation}
