"""A deterministic simulation of a web shop whose ground truth is known.

Customers are acquired week by week, organically or by paid media whose weekly spend works
through geometric adstock and Hill saturation; after the first order each buys by a BG/NBD
process (Poisson purchases while alive, dropout after each repeat purchase) with Gamma-Gamma
order values. Around every order there are web sessions from channels with UTM tags; some
customers browse anonymously before they identify, some use a second device, a few events carry
junk or shared ids. A randomized email campaign has a known effect. Everything is drawn from one
seeded generator, so the same config gives the same shop.

>>> sim = simulate(DemoConfig(customers=200, weeks=30, seed=1))
>>> len(sim.customers["user_id"]) == 200
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

PAID_CHANNELS: dict[str, dict[str, Any]] = {
    # kind, adstock decay, Hill shape, half-saturation relative to mean weekly adstock, target ROMI
    "paid_search": {"kind": "performance", "decay": 0.3, "shape": 1.2, "half": 1.0, "romi": 3.0},
    "paid_social": {"kind": "performance", "decay": 0.5, "shape": 1.5, "half": 0.9, "romi": 1.8},
    "display": {"kind": "brand", "decay": 0.6, "shape": 1.0, "half": 1.2, "romi": 0.8},
    "video": {"kind": "brand", "decay": 0.8, "shape": 2.0, "half": 1.0, "romi": 1.2},
    "affiliate": {"kind": "performance", "decay": 0.1, "shape": 1.0, "half": 1.5, "romi": 2.5},
}
ORGANIC_CHANNELS = {"organic_search": 0.45, "direct": 0.30, "referral": 0.15, "organic_social": 0.10}
REPEAT_CHANNELS = {"email": 0.35, "direct": 0.35, "organic_search": 0.20, "paid_search": 0.10}


@dataclass(frozen=True)
class DemoConfig:
    """What to simulate. ``customers`` is exact; everything else scales with it."""

    customers: int = 10_000
    seed: int = 42
    start: date = date(2024, 11, 4)  # a Monday
    weeks: int = 104
    bg_nbd: dict[str, float] = field(
        default_factory=lambda: {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
    )  # CDNOW's estimates (Fader, Hardie & Lee 2005), alpha converted from weeks to days
    gamma_gamma: dict[str, float] = field(default_factory=lambda: {"p": 6.25, "q": 3.74, "gamma": 15.44})
    media_share: float = 0.4  # share of first orders caused by paid media, in expectation
    anonymous_first_share: float = 0.3  # customers who browse anonymously before identifying
    second_device_share: float = 0.1
    visitors_per_customer: float = 1.0  # anonymous visitors who never identify
    newsletter_share: float = 0.4
    lens_share: float = 0.2  # customers who buy the 30-day contact lenses
    campaign_at: float = 0.7  # when the email campaign starts, as a share of the period
    campaign_effect: float = 0.04  # extra chance that a live, treated customer orders in the window
    campaign_window_days: int = 14
    currency: str = "EUR"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data


@dataclass
class Simulation:
    """The simulated shop, as arrays and records (times in days since ``config.start``)."""

    config: DemoConfig
    spend: dict[str, np.ndarray]  # channel -> weekly spend
    media: dict[str, dict[str, Any]]  # channel -> adstock, saturation, beta, weekly expected acquisitions
    customers: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]  # customer index, time, value, kind (first/repeat/campaign)
    experiment: dict[str, Any]
    rng_state: int = 0


def adstock(x: np.ndarray, decay: float) -> np.ndarray:
    """Geometric adstock: a_t = x_t + decay * a_(t-1)."""
    out = np.empty_like(x, dtype=float)
    carry = 0.0
    for i, value in enumerate(x):
        carry = value + decay * carry
        out[i] = carry
    return out


def hill(x: np.ndarray, half: float, shape: float) -> np.ndarray:
    """Hill saturation: x^s / (x^s + K^s), 0 at no spend, 1/2 at ``half``."""
    xs = np.power(np.maximum(x, 0.0), shape)
    return xs / (xs + half**shape)


def _spend_shapes(rng: np.random.Generator, weeks: int) -> dict[str, np.ndarray]:
    t = np.arange(weeks)
    season = 1.0 + 0.3 * np.sin(2 * np.pi * (t - 6) / 52.0)
    shapes: dict[str, np.ndarray] = {}
    shapes["paid_search"] = season * rng.lognormal(0.0, 0.15, weeks)
    flights = np.repeat(rng.random(weeks // 6 + 1) < 0.55, 6)[:weeks]
    shapes["paid_social"] = np.where(flights, 1.2, 0.2) * rng.lognormal(0.0, 0.2, weeks)
    shapes["display"] = 0.6 * rng.lognormal(0.0, 0.3, weeks)
    video = np.zeros(weeks)
    for begin in rng.choice(np.arange(0, max(weeks - 5, 1)), size=max(weeks // 16, 1), replace=False):
        video[begin : begin + rng.integers(3, 6)] = 3.0
    shapes["video"] = video * rng.lognormal(0.0, 0.1, weeks)
    shapes["affiliate"] = 0.4 * season * rng.lognormal(0.0, 0.1, weeks)
    return shapes


def _acquisitions(
    cfg: DemoConfig, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], np.ndarray, np.ndarray]:
    """Weekly spend, media response, and each customer's acquisition week and channel index."""
    gg = cfg.gamma_gamma
    aov = gg["p"] * gg["gamma"] / (gg["q"] - 1.0)
    shapes = _spend_shapes(rng, cfg.weeks)
    names = list(PAID_CHANNELS)
    # Level L (EUR/week per unit of shape) so that paid media cause media_share of first orders in expectation.
    level = cfg.media_share * cfg.customers * aov / sum(PAID_CHANNELS[c]["romi"] * shapes[c].sum() for c in names)
    spend = {c: np.round(shapes[c] * level, 2) for c in names}
    media: dict[str, dict[str, Any]] = {}
    intensities = []
    for c in names:
        spec = PAID_CHANNELS[c]
        ads = adstock(spend[c], spec["decay"])
        half = spec["half"] * float(ads[ads > 0].mean())
        response = hill(ads, half, spec["shape"])
        beta = spec["romi"] * spend[c].sum() / (response.sum() * aov)
        intensities.append(beta * response)
        media[c] = {
            "kind": spec["kind"],
            "adstock": {"type": "geometric", "decay": spec["decay"]},
            "saturation": {"type": "hill", "half_saturation": half, "shape": spec["shape"]},
            "beta": beta,
            "expected_romi": spec["romi"],
        }
    t = np.arange(cfg.weeks)
    organic = 1.0 + 0.2 * np.sin(2 * np.pi * (t - 6) / 52.0)
    organic *= (1 - cfg.media_share) * cfg.customers / organic.sum()
    lam = np.vstack([organic, *intensities])  # (1 + channels) x weeks
    counts = rng.multinomial(cfg.customers, (lam / lam.sum()).ravel()).reshape(lam.shape)
    channel_idx, week = np.nonzero(counts)
    reps = counts[channel_idx, week]
    return spend, media, np.repeat(week, reps), np.repeat(channel_idx, reps)


def weekly_first_order_revenue(
    orders: dict[str, np.ndarray], customer_channel: np.ndarray, weeks: int, channels: list[str]
) -> dict[str, np.ndarray]:
    """Revenue of the first orders each channel caused, per week (the channels' true short-term effect)."""
    first = orders["kind"] == 0
    week = np.minimum((orders["time"][first] // 7).astype(int), weeks - 1)
    value = orders["value"][first]
    channel = customer_channel[orders["customer"][first]]
    return {c: np.bincount(week[channel == c], weights=value[channel == c], minlength=weeks) for c in channels}


def simulate(cfg: DemoConfig) -> Simulation:
    """Run the simulation for ``cfg`` (deterministic for a given config)."""
    if cfg.customers < 1 or cfg.weeks < 8:
        from touchpoint.errors import InvalidInput

        raise InvalidInput("the demo needs at least 1 customer and 8 weeks", hint="use --customers 1000 or more")
    rng = np.random.default_rng(cfg.seed)
    n = cfg.customers
    horizon = cfg.weeks * 7.0
    spend, media, week, channel_idx = _acquisitions(cfg, rng)
    order = rng.permutation(n)  # shuffle so customer numbers do not follow acquisition order
    week, channel_idx = week[order], channel_idx[order]
    acquired = week * 7.0 + rng.random(n) * 7.0
    names = ["organic", *PAID_CHANNELS]
    organic_pick = rng.choice(list(ORGANIC_CHANNELS), size=n, p=list(ORGANIC_CHANNELS.values()))
    channel = np.where(channel_idx == 0, organic_pick, np.array(names, dtype=object)[channel_idx])

    bg = cfg.bg_nbd
    lam = rng.gamma(bg["r"], 1.0 / bg["alpha"], n)
    p = rng.beta(bg["a"], bg["b"], n)
    gg = cfg.gamma_gamma
    nu = rng.gamma(gg["q"], 1.0 / gg["gamma"], n)

    # First orders, then repeat purchases while alive (dropout after each repeat purchase).
    o_cust = [np.arange(n)]
    o_time = [acquired]
    o_kind = [np.zeros(n, dtype=np.int8)]
    current = acquired.copy()
    alive = np.ones(n, dtype=bool)
    died_at = np.full(n, np.inf)
    active = np.arange(n)
    while active.size:
        gaps = rng.exponential(1.0 / np.maximum(lam[active], 1e-12))
        nxt = current[active] + gaps
        buys = nxt < horizon
        active, nxt = active[buys], nxt[buys]
        o_cust.append(active)
        o_time.append(nxt)
        o_kind.append(np.ones(active.size, dtype=np.int8))
        current[active] = nxt
        dies = rng.random(active.size) < p[active]
        alive[active[dies]] = False
        died_at[active[dies]] = nxt[dies]
        active = active[~dies]

    cust = np.concatenate(o_cust)
    times = np.concatenate(o_time)
    kind = np.concatenate(o_kind)

    # The randomized email campaign: customers acquired a week before it are split 50/50.
    start_day = float(np.floor(cfg.weeks * cfg.campaign_at) * 7.0)
    window = float(cfg.campaign_window_days)
    eligible = np.nonzero(acquired < start_day - 7.0)[0]
    treated = rng.random(eligible.size) < 0.5
    in_window = (times >= start_day) & (times < start_day + window)
    y0 = np.isin(eligible, cust[in_window])
    live = died_at[eligible] > start_day
    extra = live & (rng.random(eligible.size) < cfg.campaign_effect)
    y1 = y0 | extra
    extra_cust = eligible[treated & extra]
    extra_time = start_day + rng.random(extra_cust.size) * window
    cust = np.concatenate([cust, extra_cust])
    times = np.concatenate([times, extra_time])
    kind = np.concatenate([kind, np.full(extra_cust.size, 2, dtype=np.int8)])

    values: np.ndarray = np.round(np.maximum(rng.gamma(gg["p"], 1.0 / nu[cust]), 0.5), 2)
    sort = np.lexsort((cust, times))
    cust, times, kind, values = cust[sort], times[sort], kind[sort], values[sort]

    arm = np.full(n, None, dtype=object)
    arm[eligible] = np.where(treated, "treatment", "control")
    experiment: dict[str, Any] = {
        "start_day": start_day,
        "window_days": window,
        "units": {"control": int((~treated).sum()), "treatment": int(treated.sum())},
        "true_conversion": {"control": float(y0[~treated].mean()), "treatment": float(y1[treated].mean())},
        "true_lift_absolute": float((y1.astype(float) - y0).mean()),
        "potential_control": float(y0.mean()),
        "potential_treatment": float(y1.mean()),
        "extra_revenue": float(values[kind == 2].sum()),
        "eligible": eligible,
        "treated": treated,
    }
    customers: dict[str, np.ndarray] = {
        "index": np.arange(n),
        "user_id": np.array([f"cust-{i + 1:06d}" for i in range(n)], dtype=object),
        "acquired": acquired,
        "channel": channel,
        "lam": lam,
        "p": p,
        "nu": nu,
        "alive_at_end": alive,
        "died_at": died_at,
        "arm": arm,
        "lens": rng.random(n) < cfg.lens_share,
        "anonymous_first": rng.random(n) < cfg.anonymous_first_share,
        "second_device": rng.random(n) < cfg.second_device_share,
        "newsletter": rng.random(n) < cfg.newsletter_share,
    }
    orders: dict[str, np.ndarray] = {"customer": cust, "time": times, "kind": kind, "value": values}
    return Simulation(cfg, spend, media, customers, orders, experiment, rng_state=int(rng.integers(2**31)))
