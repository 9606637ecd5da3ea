"""Propensity: "will this customer do event X within N days?", by gradient boosting on behavioural
features computed in the engine, with a time-based split.

Features are computed from events before a cutoff; the label is whether event X happens in the N days
after it. The model is trained at cutoff ``as_of - 2N`` and evaluated at cutoff ``as_of - N`` (a
genuine out-of-time test: AUC, Brier score, a calibration table and lift by decile), then refitted at
cutoff ``as_of - N`` to score every customer's features at ``as_of``. The classifier is scikit-learn's
HistGradientBoostingClassifier.

>>> FEATURES[:3]
('events', 'events_30d', 'target_events')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput
from touchpoint.predict.summary import as_date, events_with_customer
from touchpoint.warehouse import Warehouse

PROPENSITY_TABLE = "propensity_scores"
FEATURES = (
    "events",
    "events_30d",
    "target_events",
    "target_events_30d",
    "orders",
    "revenue",
    "pages",
    "active_days",
    "distinct_events",
    "days_since_last",
    "days_since_first",
    "days_since_target",
)


def feature_expr(events: ir.Table, cutoff: dt.date, event: str) -> ir.Table:
    """Per customer, behaviour strictly before ``cutoff`` (midnight UTC)."""
    cut = ibis.literal(dt.datetime.combine(cutoff, dt.time()))
    recent = ibis.literal(dt.datetime.combine(cutoff - dt.timedelta(days=30), dt.time()))
    e = events.filter((events.timestamp < cut) & events.customer_id.notnull())
    is_target = (e.event == event).fill_null(False)
    one = ibis.literal(1)
    zero = ibis.literal(0)
    g = e.group_by("customer_id").aggregate(
        events=e.count(),
        events_30d=ibis.ifelse(e.timestamp >= recent, one, zero).sum(),
        target_events=ibis.ifelse(is_target, one, zero).sum(),
        target_events_30d=ibis.ifelse(is_target & (e.timestamp >= recent), one, zero).sum(),
        orders=ibis.ifelse((e.event == ORDER_COMPLETED).fill_null(False), one, zero).sum(),
        revenue=e.revenue.fill_null(0.0).sum(),
        pages=ibis.ifelse(e.type == "page", one, zero).sum(),
        active_days=e.timestamp.date().nunique(),
        distinct_events=e.event.nunique(),
        first_day=e.timestamp.date().min(),
        last_day=e.timestamp.date().max(),
        last_target=ibis.ifelse(is_target, e.timestamp.date(), ibis.null("date")).max(),
    )
    c = ibis.literal(cutoff)
    return g.select(
        "customer_id",
        "events",
        "events_30d",
        "target_events",
        "target_events_30d",
        "orders",
        "revenue",
        "pages",
        "active_days",
        "distinct_events",
        days_since_last=c.delta(g.last_day, unit="day"),
        days_since_first=c.delta(g.first_day, unit="day"),
        days_since_target=c.delta(g.last_target, unit="day"),
    )


def label_expr(events: ir.Table, cutoff: dt.date, days: int, event: str) -> ir.Table:
    start = ibis.literal(dt.datetime.combine(cutoff, dt.time()))
    end = ibis.literal(dt.datetime.combine(cutoff + dt.timedelta(days=days), dt.time()))
    e = events.filter((events.timestamp >= start) & (events.timestamp < end) & (events.event == event))
    return e.select("customer_id").distinct().mutate(label=ibis.literal(1))


def _matrix(table: pa.Table) -> np.ndarray:
    cols = []
    for name in FEATURES:
        v = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        cols.append(v)  # NaN (never did the target) is handled natively by the model
    return np.column_stack(cols)


def _dataset(wh: Warehouse, events: ir.Table, cutoff: dt.date, days: int, event: str) -> tuple[pa.Table, np.ndarray]:
    f = feature_expr(events, cutoff, event)
    lab = label_expr(events, cutoff, days, event)
    j = f.left_join(lab, "customer_id").select(f, label=lab.label.fill_null(0))
    t = wh.to_arrow(j.order_by("customer_id"))
    return t, t.column("label").to_numpy(zero_copy_only=False).astype(np.int64)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def evaluate(y: np.ndarray, score: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """AUC, Brier score, calibration by score decile, lift by decile (top decile first)."""
    order = np.argsort(-score, kind="stable")
    deciles = np.array_split(order, bins)
    base = float(y.mean()) if len(y) else float("nan")
    lift, calib = [], []
    for k, idx in enumerate(deciles, start=1):
        if idx.size == 0:
            continue
        rate = float(y[idx].mean())
        lift.append({"decile": k, "customers": int(idx.size), "rate": rate, "lift": rate / base if base else None})
        calib.append({"decile": k, "predicted": float(score[idx].mean()), "observed": rate})
    return {
        "customers": len(y),
        "positives": int(y.sum()),
        "base_rate": base,
        "auc": _auc(y, score),
        "brier": float(np.mean((score - y) ** 2)),
        "lift_by_decile": lift,
        "calibration": calib,
    }


@dataclass
class PropensityRun:
    event: str
    days: int
    as_of: dt.date
    run_at: dt.datetime
    test: dict[str, Any]
    train_customers: int
    scores: pa.Table
    method: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, *, rows: int = 0) -> dict[str, Any]:
        out = {
            "event": self.event,
            "days": self.days,
            "as_of": self.as_of.isoformat(),
            "run_at": self.run_at.isoformat(),
            "model": "hist_gradient_boosting",
            "features": list(FEATURES),
            "test": self.test,
            "train_customers": self.train_customers,
            "scored_customers": self.scores.num_rows,
            "method": self.method,
            "warnings": self.warnings,
        }
        if rows:
            out["top"] = self.scores.sort_by([("score", "descending")]).slice(0, rows).to_pylist()
        return out


def _classifier(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        random_state=seed,
    )


def run_propensity(wh: Warehouse, event: str, days: int, *, as_of: Any = None, seed: int = 0) -> PropensityRun:
    """Train, test out of time, and score every customer's chance of ``event`` in the next ``days`` days."""
    if not event:
        raise InvalidInput("name the event to predict", hint='e.g. --event "Order Completed"')
    if days < 1:
        raise InvalidInput(f"--days must be at least 1, got {days}")
    events = events_with_customer(wh)
    if as_of is None:
        last = wh.execute(events.timestamp.max())
        if last is None:
            raise InvalidInput("the warehouse has no events", hint="send events or run `touchpoint demo` first")
        as_of_d = as_date(last, "last event") + dt.timedelta(days=1)
    else:
        as_of_d = as_date(as_of, "as of")
    n_target = int(wh.execute(events.filter(events.event == event).count()))
    if n_target == 0:
        raise InvalidInput(f"no event named {event!r} in the warehouse", hint="check the event name's spelling")
    test_cut = as_of_d - dt.timedelta(days=days)
    train_cut = as_of_d - dt.timedelta(days=2 * days)
    train, y_train = _dataset(wh, events, train_cut, days, event)
    test, y_test = _dataset(wh, events, test_cut, days, event)
    for name, y in (("training", y_train), ("test", y_test)):
        if len(y) < 50 or y.sum() < 5 or y.sum() == len(y):
            raise InvalidInput(
                f"the {name} window has {len(y)} customers and {int(y.sum())} who did {event!r}: too few to learn from",
                hint="use a shorter --days, or wait for more data (two windows of --days are needed)",
            )
    # OpenMP threads only pay off on large tables; on small ones (and busy machines) they cost much more
    # than they save, so they are limited to one below 200,000 customers.
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401 - load OpenMP before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if len(y_train) < 200_000 else None, user_api="openmp"):
        clf = _classifier(seed).fit(_matrix(train), y_train)
        test_scores = clf.predict_proba(_matrix(test))[:, 1]
        metrics = evaluate(y_test, test_scores)
        warnings = []
        if metrics["auc"] < 0.6:
            warnings.append(f"out-of-time AUC is {metrics['auc']:.2f}: the scores barely rank customers")
        final = _classifier(seed).fit(_matrix(test), y_test)
        now = wh.to_arrow(feature_expr(events, as_of_d, event).order_by("customer_id"))
        scores = final.predict_proba(_matrix(now))[:, 1] if now.num_rows else np.array([])
    order = np.argsort(-scores, kind="stable")
    decile = np.empty(len(scores), dtype=np.int64)
    for k, idx in enumerate(np.array_split(order, 10), start=1):
        decile[idx] = k
    run_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    n = now.num_rows
    table = pa.table(
        {
            "customer_id": now.column("customer_id"),
            "event": pa.array([event] * n, pa.string()),
            "days": pa.array([days] * n, pa.int64()),
            "score": scores,
            "decile": decile,
            "model": pa.array(["hist_gradient_boosting"] * n, pa.string()),
            "as_of": pa.array([as_of_d] * n, pa.date32()),
            "run_at": pa.array([run_at] * n, pa.timestamp("us")),
        }
    )
    method = (
        f"trained on features at {train_cut} with labels in the next {days} days, tested on features at "
        f"{test_cut} (labels up to {as_of_d}); scores come from a refit at {test_cut} applied to "
        f"features at {as_of_d}"
    )
    return PropensityRun(
        event=event,
        days=days,
        as_of=as_of_d,
        run_at=run_at,
        test=metrics,
        train_customers=len(y_train),
        scores=table,
        method=method,
        warnings=warnings,
    )


def write_scores(wh: Warehouse, run: PropensityRun) -> int:
    """Replace this event's and window's rows in ``propensity_scores`` (other events' scores stay)."""
    with wh.write() as tx:  # read and write under the write lock, so no other run interleaves
        old = wh.table(PROPENSITY_TABLE)
        keep = wh.to_arrow(old.filter((old.event == run.event) & (old.days != run.days)))
        tx.delete(PROPENSITY_TABLE, "event", [run.event])  # this event's rows, less its other windows kept above
        tx.append(PROPENSITY_TABLE, pa.concat_tables([keep, run.scores.cast(keep.schema)]))
    return run.scores.num_rows
