"""Rule-based attribution: first touch, last touch, last non-direct, linear, time decay, position based.

Each model gives every touch of a converting path a weight; the weights of a path sum to one,
so each model credits exactly the observed conversions and value. All models are vectorised
over the flat touch arrays of :class:`~touchpoint.journeys.pathdata.PathData`.

>>> from touchpoint.journeys.pathdata import PathData
>>> data = PathData.from_lists([["email", "search", "direct"]], conversions=[1], value=[90])
>>> [round(float(x), 6) for x in credit(data, weights(data, "position"))[0]]  # direct, email, search
[0.4, 0.4, 0.2]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.journeys.pathdata import PathData

DIRECT = "direct"


@dataclass(frozen=True)
class Touches:
    """What every heuristic reads: the journeys, each touch's position, its path's length, whether it
    is the last touch, and the options (half-life, position shares, the direct channel's name)."""

    data: PathData
    pos: np.ndarray
    length: np.ndarray
    last: np.ndarray
    half_life: float | None
    position_weights: tuple[float, float]
    direct: str


def _first(t: Touches) -> np.ndarray:
    return (t.pos == 0).astype(np.float64)


def _last(t: Touches) -> np.ndarray:
    return t.last.astype(np.float64)


def _linear(t: Touches) -> np.ndarray:
    return 1.0 / t.length


def _last_non_direct(t: Touches) -> np.ndarray:
    data = t.data
    direct_id = data.channels.index(t.direct) if t.direct in data.channels else -1
    eligible = data.touches != direct_id
    # the last eligible touch per path; paths with only direct touches keep their last touch
    idx = np.arange(len(data.touches))
    marked = np.where(eligible, idx, -1)
    best = np.maximum.reduceat(marked, data.offsets[:-1]) if len(idx) else marked
    has = best >= 0
    chosen = np.where(has, best, data.offsets[1:] - 1)
    w = np.zeros(len(idx))
    w[chosen] = 1.0
    return w


def _position(t: Touches) -> np.ndarray:
    first_w, last_w = t.position_weights
    if not (first_w >= 0 and last_w >= 0 and first_w + last_w <= 1):
        raise InvalidInput(
            f"position weights {t.position_weights!r} are not valid",
            hint="give first and last shares >= 0 that sum to at most 1 (default 0.4, 0.4)",
        )
    pos, length, last = t.pos, t.length, t.last
    middle = 1.0 - first_w - last_w
    w = np.zeros(len(pos))
    one = length == 1
    two = length == 2
    many = length > 2
    w[one] = 1.0
    w[two] = 0.5
    w[many & (pos == 0)] = first_w
    w[many & last] = last_w
    inner = many & (pos > 0) & ~last
    w[inner] = middle / (length[inner] - 2)
    return w


def _time_decay(t: Touches) -> np.ndarray:
    data, half_life = t.data, t.half_life
    if data.ages is not None:
        age = np.clip(data.ages, 0.0, None)
        hl = 7.0 if half_life is None else half_life
    else:
        age = (t.length - 1 - t.pos).astype(np.float64)
        hl = 1.0 if half_life is None else half_life
    if not hl > 0:
        raise InvalidInput(f"half-life {half_life!r} must be > 0", hint="e.g. 7 (days) or 1 (step)")
    raw = np.exp2(-age / hl)
    totals = np.add.reduceat(raw, data.offsets[:-1]) if len(raw) else raw
    return raw / totals[data.row_of_touch]


WEIGHTS: dict[str, Callable[[Touches], np.ndarray]] = {
    "first": _first,
    "last": _last,
    "last_non_direct": _last_non_direct,
    "linear": _linear,
    "time_decay": _time_decay,
    "position": _position,
}
HEURISTICS = tuple(WEIGHTS)


def weights(
    data: PathData,
    model: str,
    *,
    half_life: float | None = None,
    position_weights: tuple[float, float] = (0.4, 0.4),
    direct: str = DIRECT,
) -> np.ndarray:
    """The weight of every touch under ``model`` (each path's weights sum to one)."""
    if model not in WEIGHTS:
        raise InvalidInput(f"attribution model {model!r} is not known", hint=f"use one of: {', '.join(HEURISTICS)}")
    length = data.lengths[data.row_of_touch]
    touches = Touches(data, data.position, length, data.position == length - 1, half_life, position_weights, direct)
    return WEIGHTS[model](touches)


def credit(data: PathData, touch_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Credited (conversions, value) per channel from per-touch weights."""
    row = data.row_of_touch
    k = len(data.channels)
    conv = np.bincount(data.touches, weights=touch_weights * data.conversions[row], minlength=k)
    val = np.bincount(data.touches, weights=touch_weights * data.value[row], minlength=k)
    return conv, val
