"""Planning an experiment: sample size, minimum detectable effect, power, and expected duration.

Power of the two-sided test of a difference ``delta`` between two arms with ``n_a`` and
``n_b = ratio * n_a`` units, by the normal approximation the analysis engines use:

    power = Phi(z - z_{1-alpha/2}) + Phi(-z - z_{1-alpha/2}),   z = delta / sqrt(var_a / n_a + var_b / n_b)

For a conversion rate ``p`` the variances are ``p (1 - p)`` per arm (unpooled, as in the Welch test);
for a mean metric both arms share the standard deviation ``sd``. ``test="t"`` uses the noncentral t
distribution instead (small samples). Results equal statsmodels' ``NormalIndPower`` and
``TTestIndPower`` (the tests check to 1e-6). Sample sizes are solved numerically (Brent's method).

Effects are given relative to the baseline (``mde=0.05`` is a 5% lift), as marketers state them.

>>> math.ceil(sample_size_binomial(0.10, 0.10))  # units per arm to detect 10% -> 11% at 80% power
14749
>>> round(mde_binomial(0.10, 14749), 3)
0.1
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from touchpoint.errors import InvalidInput

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse


def _check(alpha: float, power: float | None = None, ratio: float = 1.0) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha {alpha!r} must be between 0 and 1", hint="use e.g. 0.05")
    if power is not None and not 0 < power < 1:
        raise InvalidInput(f"power {power!r} must be between 0 and 1", hint="use e.g. 0.8")
    if not ratio > 0:
        raise InvalidInput(f"ratio {ratio!r} (treatment units per control unit) must be positive", hint="e.g. 1")


def _check_rate(p: float) -> None:
    if not 0 < p < 1:
        raise InvalidInput(f"baseline rate {p!r} must be between 0 and 1", hint="e.g. 0.03 for a 3% conversion")


def _power_z(z: float, alpha: float) -> float:
    from scipy import stats as st  # here, not at the top: scipy takes most of a second to import

    crit = st.norm.isf(alpha / 2)
    return float(st.norm.sf(crit - z) + st.norm.cdf(-crit - z))


def _power_t(d: float, n_a: float, n_b: float, alpha: float) -> float:
    from scipy import stats as st

    df = n_a + n_b - 2
    nc = d * math.sqrt(1 / (1 / n_a + 1 / n_b))
    upper, lower = st.t.isf(alpha / 2, df), st.t.ppf(alpha / 2, df)
    return float(st.nct.sf(upper, df, nc) + st.nct.cdf(lower, df, nc))


def power_mean(
    n: float,
    mde: float,
    baseline: float,
    sd: float,
    *,
    alpha: float = 0.05,
    ratio: float = 1.0,
    test: str = "z",
) -> float:
    """Power to detect a relative lift ``mde`` on a mean ``baseline`` with per-unit ``sd``.

    ``n`` is the control arm's units; the treatment has ``ratio * n``."""
    _check(alpha, None, ratio)
    if not sd > 0 or baseline == 0:
        raise InvalidInput(f"sd {sd!r} must be positive and baseline {baseline!r} non-zero", hint="from past data")
    if not n >= 2:
        raise InvalidInput(f"n {n!r} must be at least 2 units per arm", hint="give the control arm's units")
    d = abs(mde * baseline) / sd
    if test == "t":
        return _power_t(d, n, n * ratio, alpha)
    if test != "z":
        raise InvalidInput(f"test {test!r} is not known", hint="use 'z' (normal) or 't'")
    return _power_z(d * math.sqrt(1 / (1 / n + 1 / (n * ratio))), alpha)


def power_binomial(n: float, baseline: float, mde: float, *, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power to detect a relative lift ``mde`` on a conversion rate ``baseline`` with ``n`` control units."""
    _check(alpha, None, ratio)
    _check_rate(baseline)
    p2 = baseline * (1 + mde)
    if not 0 < p2 < 1:
        raise InvalidInput(f"a {mde:+.1%} lift on {baseline:.1%} leaves (0, 1)", hint="use a smaller effect")
    if not n >= 2:
        raise InvalidInput(f"n {n!r} must be at least 2 units per arm", hint="give the control arm's units")
    se = math.sqrt(baseline * (1 - baseline) / n + p2 * (1 - p2) / (n * ratio))
    return _power_z(abs(p2 - baseline) / se, alpha)


def _root(fn: Any, lo: float, hi: float, **tolerances: Any) -> float:
    """The root of ``fn`` between ``lo`` and ``hi`` (Brent's method)."""
    from scipy import optimize

    return float(optimize.brentq(fn, lo, hi, **tolerances))


def _solve(fn: Any, target: float, lo: float, hi: float) -> float:
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if f_lo > 0:
        return lo
    if f_hi < 0:
        raise InvalidInput("no sample size up to 10^12 units reaches that power", hint="use a larger effect")
    return _root(lambda x: fn(x) - target, lo, hi, xtol=1e-10, rtol=1e-14, maxiter=500)


def sample_size_binomial(
    baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Control-arm units needed (treatment: ``ratio`` times that)."""
    _check(alpha, power, ratio)
    if mde == 0:
        raise InvalidInput("mde 0 needs infinitely many units", hint="give the smallest lift worth detecting")
    return _solve(lambda n: power_binomial(n, baseline, mde, alpha=alpha, ratio=ratio), power, 2.0, 1e12)


def sample_size_mean(
    baseline: float,
    sd: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    test: str = "z",
) -> float:
    """Control-arm units needed to detect a relative lift ``mde`` on a mean metric."""
    _check(alpha, power, ratio)
    if mde == 0:
        raise InvalidInput("mde 0 needs infinitely many units", hint="give the smallest lift worth detecting")
    n_z = _solve(lambda n: power_mean(n, mde, baseline, sd, alpha=alpha, ratio=ratio), power, 2.0, 1e12)
    if test == "z":
        return n_z
    # the t test needs a few more units than the z test; the noncentral t is unstable far beyond that
    return _solve(
        lambda n: power_mean(n, mde, baseline, sd, alpha=alpha, ratio=ratio, test=test),
        power,
        2.0,
        2 * n_z + 10,
    )


def mde_binomial(baseline: float, n: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """Smallest relative lift (upwards) detectable with ``n`` control units."""
    _check(alpha, power, ratio)
    _check_rate(baseline)
    hi = (1 - 1e-9) / baseline - 1
    if power_binomial(n, baseline, hi, alpha=alpha, ratio=ratio) < power:
        raise InvalidInput(f"{n:.0f} units per arm cannot reach {power:.0%} power", hint="plan for more units")
    return _root(lambda m: power_binomial(n, baseline, m, alpha=alpha, ratio=ratio) - power, 1e-9, hi, xtol=1e-12)


def mde_mean(
    baseline: float,
    sd: float,
    n: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    test: str = "z",
) -> float:
    """Smallest relative lift detectable on a mean metric with ``n`` control units."""
    _check(alpha, power, ratio)
    return _root(
        lambda m: power_mean(n, m, baseline, sd, alpha=alpha, ratio=ratio, test=test) - power, 1e-12, 1e6, xtol=1e-14
    )


# -- duration from observed traffic --------------------------------------------------------------


@dataclass
class DurationEstimate:
    """How long an experiment needs, from how many new units an audience brings per day."""

    units_needed: int
    share: float
    days: float | None
    lookback_days: int
    cumulative_units: list[int]
    daily_new_units: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.days is None:
            return f"no traffic seen in the last {self.lookback_days} days; cannot estimate a duration"
        weeks = math.ceil(self.days / 7)
        return (
            f"about {math.ceil(self.days)} days (round up to {weeks} full week(s)) to expose "
            f"{self.units_needed:,} units at {self.share:.0%} of traffic ({self.method})"
        )


def expected_duration(
    wh: Warehouse,
    units_needed: float,
    *,
    event: str | None = None,
    lookback_days: int = 28,
    share: float = 1.0,
    unit: str = "any",
) -> DurationEstimate:
    """Days until ``units_needed`` distinct units are exposed, if ``share`` of the audience enters.

    The audience is every unit that sent ``event`` (any event when None). Over the last
    ``lookback_days`` we count how many *distinct* units had arrived by each day (returning
    visitors do not count twice, which is why traffic grows slower than page views); beyond the
    window we extrapolate with the last week's rate of new units.
    """
    from touchpoint.experiments.metrics import with_unit
    from touchpoint.privacy.analytics import events as analytics_events

    if not 0 < share <= 1:
        raise InvalidInput(f"share {share!r} must be in (0, 1]", hint="the fraction of the audience in the test")
    if lookback_days < 7:
        raise InvalidInput(f"lookback_days {lookback_days} is too short", hint="use at least 7 (a full week)")
    t = analytics_events(wh)
    if event is not None:
        t = t.filter(t.event == event)
    last = t.timestamp.max().to_pyarrow().as_py()
    needed = math.ceil(units_needed)
    if last is None:
        return DurationEstimate(needed, share, None, lookback_days, [], 0.0, "no events")
    start = last - timedelta(days=lookback_days)
    t = with_unit(wh, t.filter(t.timestamp > start), unit)
    t = t.filter(t._unit.notnull())
    first = t.group_by("_unit").aggregate(first=t.timestamp.min())
    day = (first.first.epoch_seconds() - int(_epoch(start))) // 86400
    per_day = first.group_by(d=day.cast("int64")).aggregate(k=first.count())
    rows = wh.to_arrow(per_day).to_pylist()
    counts = np.zeros(lookback_days, dtype=np.int64)
    for r in rows:
        counts[min(max(int(r["d"]), 0), lookback_days - 1)] += int(r["k"])
    return duration_from(np.cumsum(counts).tolist(), needed, share=share)


def duration_from(cumulative: list[int], units_needed: float, *, share: float = 1.0) -> DurationEstimate:
    """The duration from a traffic curve already counted (``cumulative`` distinct units by day, as
    :func:`expected_duration` counts them): a planner asked many times reuses one count.

    >>> duration_from([10, 20, 30, 40, 50, 60, 70, 80], 30).days
    3.0
    >>> print(duration_from([10, 20, 30, 40, 50, 60, 70, 80], 100).method)
    extrapolated beyond 8 days at the last week's 10 new units/day
    """
    if not 0 < share <= 1:
        raise InvalidInput(f"share {share!r} must be in (0, 1]", hint="the fraction of the audience in the test")
    lookback_days = len(cumulative)
    needed = math.ceil(units_needed)
    if not lookback_days:
        return DurationEstimate(needed, share, None, lookback_days, [], 0.0, "no events")
    cumulative_arr = np.asarray(cumulative, dtype=np.int64)
    target = needed / share
    hit = np.flatnonzero(cumulative_arr >= target)
    rate = float(cumulative_arr[-1] - (cumulative_arr[-8] if lookback_days >= 8 else 0)) / 7.0
    if hit.size:
        days, method = float(hit[0] + 1), f"observed: distinct units over the last {lookback_days} days"
    elif rate > 0:
        days = lookback_days + (target - float(cumulative_arr[-1])) / rate
        method = f"extrapolated beyond {lookback_days} days at the last week's {rate:,.0f} new units/day"
    else:
        days, method = None, "no new units in the last week"
    return DurationEstimate(needed, share, days, lookback_days, cumulative_arr.tolist(), rate, method)


def _epoch(naive_utc: Any) -> float:
    from datetime import UTC

    return float(naive_utc.replace(tzinfo=UTC).timestamp())
