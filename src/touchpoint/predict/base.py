"""What every customer-value model shares: data checks, maximum-likelihood fitting, standard errors,
a convergence report, and saving/loading with a config hash.

Models fit on per-customer summaries (frequency, recency, age ``T``), not on events, so their cost grows
with customers. Identical summary rows are merged with weights before fitting (exact: the likelihood
is a sum over customers), and parameter-free terms are computed once per distinct value.

>>> import numpy as np
>>> from touchpoint.predict import BetaGeoModel
>>> m = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
>>> round(float(m.expected_purchases(39, 2, 30.43, 38.86)[0]), 3)
1.226
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from touchpoint.errors import InvalidInput, ModelMismatch, ModelNotFitted

#: Bumped whenever a model's likelihood or parameterisation changes; saved models carry it.
MODEL_FORMAT_VERSION = 1


def as_array(value: Any, name: str, *, integer: bool = False, allow_negative: bool = False) -> np.ndarray:
    """A 1-d float64 array from ``value``, checked: finite, not negative (unless allowed)."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}", hint="pass one value per customer")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{name}[{i}] is {float(arr[i])}, not a finite number", hint=f"clean or drop that {name}")
    if not allow_negative and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise InvalidInput(
            f"{name}[{i}] is {float(arr[i])}; it cannot be negative", hint=f"check how {name} is computed"
        )
    if integer and (arr != np.round(arr)).any():
        i = int(np.flatnonzero(arr != np.round(arr))[0])
        raise InvalidInput(f"{name}[{i}] is {float(arr[i])}; it must be a whole number of repeat purchases")
    return arr


def check_rfm(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one customer-by-sufficient-statistic triple (x, t_x, T) and broadcast it."""
    x = as_array(frequency, "frequency", integer=True)
    tx = as_array(recency, "recency")
    t_cal = as_array(T, "T")
    try:
        x, tx, t_cal = np.broadcast_arrays(x, tx, t_cal)
    except ValueError as exc:
        raise InvalidInput(
            f"frequency, recency and T have different lengths ({x.size}, {tx.size}, {t_cal.size})",
            hint="pass one value per customer for each",
        ) from exc
    if (tx > t_cal + 1e-9).any():
        i = int(np.flatnonzero(tx > t_cal + 1e-9)[0])
        raise InvalidInput(
            f"customer {i}: recency {tx[i]} is later than T {t_cal[i]}",
            hint="recency is the time from first to last purchase and cannot exceed the customer's age T",
        )
    if ((x == 0) & (tx > 0)).any():
        i = int(np.flatnonzero((x == 0) & (tx > 0))[0])
        raise InvalidInput(
            f"customer {i}: recency {tx[i]} with no repeat purchase",
            hint="customers without repeat purchases have recency 0",
        )
    return x.astype(np.float64), tx.astype(np.float64), t_cal.astype(np.float64)


def wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """sum(weights * values) without BLAS: a 1-d ``@`` may start BLAS threads, which on a busy
    machine cost far more than they save."""
    return float(np.einsum("i,i->", weights, values))


def row_codes(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's distinct combination of values, and the first row holding each combination.

    Faster than ``np.unique(axis=0)``: each column is factorised on its own and the codes combined.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    n_keys = 1
    for col in columns:
        uniq, inv = np.unique(col, return_inverse=True)
        key = key * len(uniq) + inv.ravel()
        if n_keys * len(uniq) > 2**40:  # re-code before the combined key could overflow int64
            _, key = np.unique(key, return_inverse=True)
            key = key.ravel().astype(np.int64)
            n_keys = int(key.max()) + 1
        else:
            n_keys *= len(uniq)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.ravel(), first


def compress(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Merge identical rows: the distinct rows and how many customers (or summed weights) each stands for."""
    inverse, first = row_codes(*columns)
    w = np.ones(len(columns[0])) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(inverse, weights=w, minlength=len(first))
    return [np.asarray(c)[first] for c in columns], counts


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and, for each input, the index of its distinct value."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.ravel()


@dataclass
class FitReport:
    """How a fit went: the estimates with standard errors, the optimum reached and whether to trust it."""

    model: str
    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    n_customers: int
    n_distinct_rows: int
    converged: bool
    iterations: int
    function_evaluations: int
    gradient_norm: float
    hessian_positive_definite: bool
    message: str
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Model(ABC):
    """Base class: a named model with literature-named parameters, fitted by maximum likelihood.

    Subclasses implement ``_prepare`` (turn validated data into the arrays the likelihood needs) and
    ``_nll`` (the negative log-likelihood and its gradient with respect to the log-parameters).
    """

    name: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    default_start: ClassVar[tuple[float, ...]] = ()
    registry: ClassVar[dict[str, type[Model]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Model.registry[cls.name] = cls

    def __init__(self, params: dict[str, float] | None = None) -> None:
        self.params_: dict[str, float] | None = None
        self.report_: FitReport | None = None
        self.covariance_: np.ndarray | None = None
        self.hessian_: np.ndarray | None = None
        if params is not None:
            missing = [p for p in self.param_names if p not in params]
            if missing:
                raise InvalidInput(
                    f"{self.name} needs parameters {', '.join(self.param_names)}; missing {', '.join(missing)}"
                )
            bad = [p for p in self.param_names if not (np.isfinite(params[p]) and params[p] > 0)]
            if bad:
                raise InvalidInput(f"{self.name} parameter {bad[0]}={params[bad[0]]!r} must be a positive number")
            self.params_ = {p: float(params[p]) for p in self.param_names}

    # -- parameters ------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        if self.params_ is None:
            raise ModelNotFitted(f"the {self.name} model has no parameters yet", hint="call fit() or load() first")
        return np.array([self.params_[p] for p in self.param_names])

    # -- to implement ----------------------------------------------------------------------------
    @abstractmethod
    def _nll(self, log_theta: np.ndarray, data: Any) -> tuple[float, np.ndarray]:
        """Negative summed log-likelihood and its gradient with respect to log-parameters."""

    # -- fitting ---------------------------------------------------------------------------------
    def _fit_prepared(
        self, data: Any, n_customers: int, n_rows: int, start: tuple[float, ...] | None, restarts: int
    ) -> FitReport:
        # The optimiser works on 3-4 parameters: BLAS threads only add overhead (a lot of it when the
        # machine is busy), so BLAS runs single-threaded during the fit.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit_single_thread(data, n_customers, n_rows, start, restarts)

    def _fit_single_thread(
        self, data: Any, n_customers: int, n_rows: int, start: tuple[float, ...] | None, restarts: int
    ) -> FitReport:
        t0 = time.perf_counter()
        scale = max(float(n_customers), 1.0)

        def objective(eta: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):
                value, grad = self._nll(eta, data)
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                return 1e10, np.zeros_like(eta)
            return value / scale, grad / scale

        starts = [np.log(np.asarray(start or self.default_start, dtype=np.float64))]
        rng = np.random.default_rng(12345)
        for _ in range(restarts):
            starts.append(starts[0] + rng.normal(0.0, 0.7, size=len(self.param_names)))
        from scipy import optimize  # at first fit: with scipy.stats it costs the server about 50 MB at start

        best: optimize.OptimizeResult | None = None
        total_iter = total_eval = 0
        bounds = [(-12.0, 12.0)] * len(self.param_names)
        for eta0 in starts:
            res = optimize.minimize(
                objective,
                eta0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-14, "maxcor": 20},
            )
            total_iter += int(res.nit)
            total_eval += int(res.nfev)
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        theta = np.exp(best.x)
        self.params_ = dict(zip(self.param_names, (float(v) for v in theta), strict=True))
        with np.errstate(all="ignore"):
            nll, grad_eta = self._nll(best.x, data)
        se, pd_ok = self._standard_errors(best.x, data)
        warnings: list[str] = []
        at_bound = [p for p, e in zip(self.param_names, best.x, strict=True) if abs(abs(e) - 12.0) < 1e-6]
        if at_bound:
            warnings.append(
                f"parameter(s) {', '.join(at_bound)} reached the search bound; the likelihood is flat there "
                "and the estimate is not identified"
            )
        if not pd_ok:
            warnings.append("the Hessian is not positive definite at the optimum; standard errors are unreliable")
        grad_norm = float(np.max(np.abs(grad_eta / scale)))
        converged = bool(best.success or grad_norm < 1e-5) and np.isfinite(nll) and not at_bound
        report = FitReport(
            model=self.name,
            params=dict(self.params_),
            standard_errors=dict(zip(self.param_names, (float(v) for v in se), strict=True)),
            log_likelihood=float(-nll),
            n_customers=int(n_customers),
            n_distinct_rows=int(n_rows),
            converged=converged,
            iterations=total_iter,
            function_evaluations=total_eval,
            gradient_norm=grad_norm,
            hessian_positive_definite=pd_ok,
            message=str(best.message),
            seconds=time.perf_counter() - t0,
            warnings=warnings,
        )
        self.report_ = report
        return report

    def _standard_errors(self, eta: np.ndarray, data: Any) -> tuple[np.ndarray, bool]:
        """Standard errors from the observed information: finite differences of the analytic gradient."""
        theta = np.exp(eta)
        k = len(theta)

        def grad_theta(th: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                _, g_eta = self._nll(np.log(th), data)
            return g_eta / th  # d nll / d theta

        hess = np.empty((k, k))
        for j in range(k):
            h = 1e-5 * theta[j]
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            hess[:, j] = (grad_theta(up) - grad_theta(down)) / (2 * h)
        hess = (hess + hess.T) / 2
        self.hessian_ = hess
        try:
            np.linalg.cholesky(hess)
            cov = np.linalg.inv(hess)
            self.covariance_ = cov
            return np.sqrt(np.clip(np.diag(cov), 0, None)), True
        except np.linalg.LinAlgError:
            self.covariance_ = None
            return np.full(k, np.nan), False

    def sample_params(self, n: int, seed: int = 0) -> np.ndarray:
        """Parameter draws from the asymptotic normal of the log-parameters (delta method), shape (n, k)."""
        cov = self.covariance_
        theta = self.theta
        if cov is None:
            return np.tile(theta, (n, 1))
        cov_log = cov / np.outer(theta, theta)
        rng = np.random.default_rng(seed)
        return np.exp(rng.multivariate_normal(np.log(theta), cov_log, size=n))

    # -- persistence -----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"model": self.name, "param_names": list(self.param_names), "format": MODEL_FORMAT_VERSION}

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        from touchpoint import __version__

        return {
            "model": self.name,
            "format": MODEL_FORMAT_VERSION,
            "touchpoint_version": __version__,
            "config": self.config(),
            "config_hash": self.config_hash(),
            "params": dict(self.params_ or {}),
            "covariance": None if self.covariance_ is None else self.covariance_.tolist(),
            "report": self.report_.to_dict() if self.report_ else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        name = data.get("model")
        target = Model.registry.get(str(name)) if cls is Model else cls
        if target is None or target.name != name:
            raise ModelMismatch(
                f"the saved model is {name!r}, not {cls.name or 'a known model'}",
                hint=f"load it with the {name} class, or Model.from_dict to pick the class from the file",
            )
        if data.get("format") != MODEL_FORMAT_VERSION:
            raise ModelMismatch(
                f"the saved {name} model has format {data.get('format')!r}; this code reads {MODEL_FORMAT_VERSION}",
                hint="fit the model again with this version of touchpoint",
            )
        model = target(params=data["params"])
        if data.get("config_hash") != model.config_hash():
            raise ModelMismatch(
                f"the saved {name} model's config hash {data.get('config_hash')} does not match this code's "
                f"{model.config_hash()}",
                hint="the model definition changed; fit it again",
            )
        if data.get("covariance") is not None:
            model.covariance_ = np.asarray(data["covariance"], dtype=np.float64)
        if data.get("report"):
            model.report_ = FitReport(**data["report"])
        return model

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"cannot read a saved model from {path}: {exc}") from exc
        return cls.from_dict(data)
