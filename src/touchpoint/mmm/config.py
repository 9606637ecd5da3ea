"""The model's settings and priors, with a stable hash so a saved fit can prove what produced it.

>>> cfg = MMMConfig(draws=200, chains=2)
>>> MMMConfig.from_dict(cfg.to_dict()) == cfg
True
>>> MMMConfig(roi_priors={"tv": (2.0, 0.5)}).roi_prior_lognormal("tv")[1] < 1.0
True
>>> lift = LiftCalibration("tv", "2024-03-04", "2024-03-31", roi=1.5, roi_se=0.3, source="experiment:tv-geo")
>>> MMMConfig.from_dict(MMMConfig(calibrations=(lift,)).to_dict()).calibrations[0] == lift
True
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from touchpoint.errors import InvalidInput
from touchpoint.mmm.transforms import ADSTOCKS, SATURATIONS


@dataclass(frozen=True)
class LiftCalibration:
    """A lift measured on one channel over a period, as the model uses it (docs/mmm.md, "Calibration").

    ``roi`` is the test's incremental revenue over the channel's spend in the period ``start``..``end``
    (ISO dates, inclusive) and ``roi_se`` its standard error; the fit adds the likelihood term
    ``roi ~ Normal(model's ROI of that spend in those weeks, roi_se)``. ``source`` names where it came
    from (``experiment:KEY``, ``automation:NAME``) and ``calibration_id`` the stored row.
    """

    channel: str
    start: str
    end: str
    roi: float
    roi_se: float
    source: str = ""
    calibration_id: str = ""

    def __post_init__(self) -> None:
        import datetime as _dt

        try:
            first, last = _dt.date.fromisoformat(str(self.start)), _dt.date.fromisoformat(str(self.end))
        except ValueError:
            raise InvalidInput(
                f"calibration of {self.channel!r}: period {self.start!r}..{self.end!r} is not two ISO dates",
                hint="give start and end as YYYY-MM-DD",
            ) from None
        if last < first:
            raise InvalidInput(
                f"calibration of {self.channel!r}: end {last} is before start {first}", hint="swap start and end"
            )
        if not (math.isfinite(self.roi) and math.isfinite(self.roi_se) and self.roi_se > 0):
            raise InvalidInput(
                f"calibration of {self.channel!r}: roi={self.roi}, roi_se={self.roi_se}",
                hint="roi must be a number and roi_se (its standard error) positive",
            )
        object.__setattr__(self, "start", first.isoformat())
        object.__setattr__(self, "end", last.isoformat())
        object.__setattr__(self, "roi", float(self.roi))
        object.__setattr__(self, "roi_se", float(self.roi_se))


@dataclass(frozen=True)
class MMMConfig:
    """Everything that shapes a fit. Priors are documented in docs/mmm.md ("Priors").

    ``roi_priors`` maps a channel to ``(roi, standard_error)``, e.g. from a lift experiment; it
    replaces the default weakly informative ``LogNormal(roi_prior_mu, roi_prior_sigma)`` prior for
    that channel. ``calibrations`` are lift tests accepted with ``touchpoint mmm calibrate``: each adds a
    likelihood term on its channel's ROI over the test's weeks (:class:`LiftCalibration`).
    ``brand_channels`` are counted as brand in the brand/performance split and the planner's minimum
    brand share.
    """

    adstock: str = "geometric"
    saturation: str = "hill"
    max_lag: int = 13
    yearly_order: int = 2
    trend: bool = True
    holdout_weeks: int = 8
    draws: int = 500
    warmup: int = 500
    chains: int = 4
    seed: int = 0
    target_accept: float = 0.9
    max_tree_depth: int = 10
    roi_prior_mu: float = 0.0
    roi_prior_sigma: float = 1.0
    roi_priors: dict[str, tuple[float, float]] = field(default_factory=dict)
    brand_channels: tuple[str, ...] = ()
    calibrations: tuple[LiftCalibration, ...] = ()
    brand_share_guideline: float = 0.6
    short_term_weeks: int = 4
    interval: float = 0.9
    rhat_max: float = 1.05
    ess_min: float = 100.0
    divergence_max_share: float = 0.01

    def __post_init__(self) -> None:
        if self.adstock not in ADSTOCKS:
            raise InvalidInput(f"adstock {self.adstock!r} is not known", hint=f"use one of {', '.join(ADSTOCKS)}")
        if self.saturation not in SATURATIONS:
            raise InvalidInput(
                f"saturation {self.saturation!r} is not known", hint=f"use one of {', '.join(SATURATIONS)}"
            )
        checks = {
            "max_lag": (self.max_lag, 1, 104),
            "yearly_order": (self.yearly_order, 0, 10),
            "holdout_weeks": (self.holdout_weeks, 0, 104),
            "draws": (self.draws, 10, 100_000),
            "warmup": (self.warmup, 10, 100_000),
            "chains": (self.chains, 1, 32),
            "short_term_weeks": (self.short_term_weeks, 1, 104),
            "max_tree_depth": (self.max_tree_depth, 2, 15),
        }
        for name, (value, lo, hi) in checks.items():
            if not lo <= value <= hi:
                raise InvalidInput(f"{name}={value} is out of range", hint=f"use a value between {lo} and {hi}")
        for name in ("target_accept", "interval", "brand_share_guideline"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise InvalidInput(f"{name}={value} must be strictly between 0 and 1", hint=f"e.g. {name}=0.9")
        if self.roi_prior_sigma <= 0:
            raise InvalidInput(f"roi_prior_sigma={self.roi_prior_sigma} must be positive", hint="e.g. 1.0")
        for channel, pair in self.roi_priors.items():
            if len(pair) != 2 or pair[0] <= 0 or pair[1] <= 0:
                raise InvalidInput(
                    f"roi_priors[{channel!r}]={pair!r} must be (roi > 0, standard error > 0)",
                    hint="give the lift experiment's ROMI and its standard error, e.g. (1.8, 0.4)",
                )
        object.__setattr__(self, "roi_priors", {k: (float(v[0]), float(v[1])) for k, v in self.roi_priors.items()})
        object.__setattr__(self, "brand_channels", tuple(self.brand_channels))
        object.__setattr__(
            self,
            "calibrations",
            tuple(c if isinstance(c, LiftCalibration) else LiftCalibration(**c) for c in self.calibrations),
        )

    def roi_prior_lognormal(self, channel: str) -> tuple[float, float]:
        """``(mu, sigma)`` of the log-normal ROI prior for ``channel`` (moment-matched for calibrations)."""
        if channel in self.roi_priors:
            mean, se = self.roi_priors[channel]
            sigma = math.sqrt(math.log1p((se / mean) ** 2))
            return math.log(mean) - sigma**2 / 2.0, sigma
        return self.roi_prior_mu, self.roi_prior_sigma

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["roi_priors"] = {k: list(v) for k, v in self.roi_priors.items()}
        out["brand_channels"] = list(self.brand_channels)
        out["calibrations"] = [asdict(c) for c in self.calibrations]
        if not self.calibrations:  # left out when empty: the hash of an uncalibrated model stays what it was
            del out["calibrations"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MMMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"unknown model setting(s): {', '.join(sorted(unknown))}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        values = dict(data)
        if "roi_priors" in values:
            values["roi_priors"] = {k: tuple(v) for k, v in values["roi_priors"].items()}
        if "brand_channels" in values:
            values["brand_channels"] = tuple(values["brand_channels"])
        if "calibrations" in values:
            values["calibrations"] = tuple(_calibration(c) for c in values["calibrations"])
        return cls(**values)

    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the settings."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _calibration(value: Any) -> LiftCalibration:
    if isinstance(value, LiftCalibration):
        return value
    known = {f.name for f in fields(LiftCalibration)}
    if not isinstance(value, dict) or set(value) - known:
        raise InvalidInput(
            f"calibration {value!r} is not an object with {', '.join(sorted(known))}",
            hint="accept lift tests with `touchpoint mmm calibrate --from-experiment KEY --accept`",
        )
    return LiftCalibration(**value)
