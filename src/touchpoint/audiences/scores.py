"""Lead scores: rule-based points computed in the warehouse, bands, forward-only lifecycle stages.

One expression computes every profile's points: each fit rule's condition (the audience language)
gives its points when it holds; each engagement rule adds ``points x 0.5 ** (age / half-life)`` per
matching event. Points add up per group, a group is capped (``caps``), the total is floored at 0 and
capped by ``ceiling``. The band is the highest whose ``min`` the points reach. The stage moves forward
only: a profile keeps the furthest stage it has earned, unless :func:`demote` moves it back explicitly.
Each entry into a band and each stage change is recorded once (``score_band_entries``,
``score_stages``): the facts a sales hand-off triggers on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.audiences import store
from touchpoint.audiences.compile import Compiler, _where
from touchpoint.audiences.scoredef import ScoreDefinition, parse_score
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse, schema

TABLE, RESULTS = schema.SCORES.name, schema.SCORE_RESULTS.name
BANDS, STAGES = schema.SCORE_BANDS.name, schema.SCORE_STAGES.name


# -- definitions --------------------------------------------------------------------------------------
def _named(wh: Warehouse, name: str) -> ir.Table:
    t = wh.table(TABLE)
    return t.filter(t.name == name)


def _all(wh: Warehouse) -> ir.Table:
    return wh.table(TABLE).order_by("name")


def _result_of(wh: Warehouse, name: str, profile_id: str) -> ir.Table:
    t = wh.table(RESULTS)
    return t.filter((t.score == name) & (t.profile_id == profile_id))


def stored(wh: Warehouse, name: str, profile_id: str) -> dict[str, Any] | None:
    """The profile's row of score ``name``'s last run (None when the run did not score it)."""
    rows = wh.prepared(_result_of, name, profile_id).to_pylist()
    return rows[0] if rows else None


def get(wh: Warehouse, name: str) -> dict[str, Any]:
    rows = wh.prepared(_named, name).to_pylist()
    if not rows:
        raise NotFound(f"no score named {name!r}", hint="list them with `touchpoint scores list`")
    return {**rows[0], "definition": json.loads(rows[0]["definition"])}


def list_all(wh: Warehouse) -> list[dict[str, Any]]:
    return [{**r, "definition": json.loads(r["definition"])} for r in wh.prepared(_all).to_pylist()]


def save(
    wh: Warehouse, name: str, definition: Any, *, description: str | None = None, replace: bool = False
) -> dict[str, Any]:
    """Validate and save a score definition (with ``replace``, a new version)."""
    store.check_name(name)
    parsed = parse_score(definition)
    _compile(wh, parsed, store.now())  # unknown audiences, wrong types
    at = store.now()
    with wh.write() as tx:
        t = wh.table(TABLE)
        old = wh.to_arrow(t.filter(t.name == name)).to_pylist()
        if old and not replace:
            raise AlreadyExists(f"a score named {name!r} exists", hint="add --replace to change it")
        row = {
            "name": name,
            "description": description if description is not None or not old else old[0]["description"],
            "definition": json.dumps(definition, sort_keys=True),
            "version": (old[0]["version"] + 1) if old else 1,
            "created_at": old[0]["created_at"] if old else at,
            "updated_at": at,
        }
        if old:
            tx.delete(TABLE, "name", [name])
        tx.append(TABLE, pa.Table.from_pylist([row], schema=schema.SCORES.schema.to_pyarrow()))
    return get(wh, name)


# -- the expression ------------------------------------------------------------------------------------
def _compile(wh: Warehouse, s: ScoreDefinition, now: datetime, restrict: ir.Table | None = None) -> ir.Table:
    """Per profile: one column per rule (``r_<i>``), ``fit``, ``engagement``, ``points``, ``band``, ``earned``."""
    c = Compiler(wh, now, store.lookup(wh))
    fit_preds = [(f"r_{i}", c.node(rule.when, f"$.fit[{i}].when"), rule) for i, rule in enumerate(s.fit)]
    stage_preds = [
        c.node(st.when, f"$.stages[{i}].when") if st.when is not None else None for i, st in enumerate(s.stages)
    ]
    eng_cols = []
    now_s = ibis.literal(now).epoch_seconds()
    for i, rule in enumerate(s.engagement):
        col = f"r_{len(s.fit) + i}"
        c.plan.event_names.add(rule.step.event)

        since = None if rule.within_days is None else now - timedelta(days=rule.within_days)
        c.plan.since.append(since)

        def hit(ev: ir.Table, rule: Any = rule, since: datetime | None = since) -> ir.Value:
            return _where(ev, rule.step, now, since)

        def decayed(ev: ir.Table, rule: Any = rule) -> ir.Value:
            age_days = (now_s - ev.timestamp.epoch_seconds()) / 86400.0
            return ibis.literal(0.5).pow(age_days / rule.half_life_days) * rule.points

        h, v = f"{col}_m", f"{col}_v"
        c.plan.aggregates.append((col, {h: hit, v: decayed}, lambda t, h=h, v=v: t[v].sum(where=t[h])))
        eng_cols.append((col, rule))
    t = c.table(restrict)
    values: dict[str, ir.Value] = {}
    for col, pred, fit_rule in fit_preds:
        values[col] = ibis.ifelse(pred(t), fit_rule.points, 0.0)
    for col, _ in eng_cols:
        values[col] = ibis.coalesce(t[col], 0.0)
    r = t.select("profile_id", **values)
    groups: dict[str, list[tuple[str, str]]] = {}
    for col, _, fit_rule in fit_preds:
        groups.setdefault(fit_rule.group, []).append((col, "fit"))
    for col, eng_rule in eng_cols:
        groups.setdefault(eng_rule.group, []).append((col, "engagement"))
    fit_total: ir.Value = ibis.literal(0.0)
    eng_total: ir.Value = ibis.literal(0.0)
    for group, cols in groups.items():
        raw = sum((r[col] for col, _ in cols), ibis.literal(0.0))
        capped = ibis.least(raw, s.caps[group]) if group in s.caps else raw
        if all(kind == "fit" for _, kind in cols):
            fit_total = fit_total + capped
        else:
            eng_total = eng_total + capped
    total = ibis.greatest(fit_total + eng_total, 0.0)
    points = ibis.least(total, s.ceiling) if s.ceiling is not None else total
    r = r.mutate(fit=fit_total, engagement=eng_total, points=points.round(2))
    band: ir.Value = ibis.null("string")
    for b in s.bands:
        band = ibis.ifelse(r.points >= b.min, ibis.literal(b.name), band)
    # stages need the features table: compute them on t and join by profile_id
    stage_cols = {}
    for i, stage_pred in enumerate(stage_preds):
        stage_cols[f"s_{i}"] = stage_pred(t) if stage_pred is not None else ibis.literal(True)
    st_t = t.select(tp_sp="profile_id", **stage_cols)
    r = r.mutate(band=band).join(st_t, r.profile_id == st_t.tp_sp)
    earned: ir.Value = ibis.literal(0)
    for i, st in enumerate(s.stages):
        cond = r[f"s_{i}"]
        if st.min_points is not None:
            cond = cond & (r.points >= st.min_points)
        earned = ibis.ifelse(cond, i, earned) if i else earned
    return r.mutate(earned=earned).drop("tp_sp", *stage_cols)


def _definition(wh: Warehouse, name: str) -> ScoreDefinition:
    return parse_score(get(wh, name)["definition"])


# -- running -----------------------------------------------------------------------------------------------
def run(wh: Warehouse, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Score every profile; record band entries and stage promotions; returns counts per band and stage."""
    at = now or store.now()
    s = _definition(wh, name)
    expr = _compile(wh, s, at)
    prev = wh.table(RESULTS)
    prev = prev.filter(prev.score == name).select(tp_pp="profile_id", prev_band="band", prev_stage="stage")
    j = expr.left_join(prev, expr.profile_id == prev.tp_pp)
    rows = wh.to_arrow(
        j.select("profile_id", "fit", "engagement", "points", "band", "earned", "prev_band", "prev_stage")
    )
    names = [st.name for st in s.stages]
    index = {n: i for i, n in enumerate(names)}
    prev_idx = pa.array(
        [index.get(v, -1) if v is not None else -1 for v in rows.column("prev_stage").to_pylist()], pa.int64()
    )
    earned = rows.column("earned").cast(pa.int64())
    new_idx = pc.max_element_wise(prev_idx, earned) if names else earned
    stage = pa.array([names[i] if names and i >= 0 else None for i in new_idx.to_pylist()], pa.string())
    n = rows.num_rows
    ts = pa.array([at] * n, pa.timestamp("us"))
    results = pa.table(
        {
            "score": pa.array([name] * n, pa.string()),
            "profile_id": rows.column("profile_id"),
            "points": rows.column("points").cast(pa.float64()),
            "fit": rows.column("fit").cast(pa.float64()),
            "engagement": rows.column("engagement").cast(pa.float64()),
            "band": rows.column("band"),
            "stage": stage,
            "computed_at": ts,
        }
    )
    band_changed = pc.fill_null(pc.not_equal(rows.column("band"), rows.column("prev_band")), True)
    band_changed = pc.and_(band_changed, pc.is_valid(rows.column("band")))
    entries = pa.table(
        {
            "score": results.column("score"),
            "profile_id": results.column("profile_id"),
            "band": results.column("band"),
            "previous": rows.column("prev_band"),
            "entered_at": ts,
        }
    ).filter(band_changed)
    promoted = pc.greater(new_idx, prev_idx) if names else pa.array([False] * n)
    prev_names = (
        pa.array([names[i] if i >= 0 else None for i in prev_idx.to_pylist()], pa.string())
        if names
        else pa.nulls(n, pa.string())
    )
    stages = pa.table(
        {
            "score": results.column("score"),
            "profile_id": results.column("profile_id"),
            "stage": stage,
            "previous": prev_names,
            "kind": pa.array(["promoted"] * n, pa.string()),
            "reason": pa.array(["rules"] * n, pa.string()),
            "changed_at": ts,
        }
    ).filter(promoted)
    with wh.write() as tx:
        tx.delete(RESULTS, "score", [name])
        tx.append(RESULTS, results)
        # a second run at the same instant (a changed definition) replaces that instant's facts
        tx.upsert(BANDS, entries, key=["score", "profile_id", "entered_at"])
        tx.upsert(STAGES, stages, key=["score", "profile_id", "changed_at"])
    bands = pc.value_counts(results.column("band")).to_pylist()
    stage_counts = pc.value_counts(stage).to_pylist() if names else []
    return {
        "score": name,
        "profiles": n,
        "bands": {str(b["values"]): b["counts"] for b in bands},
        "stages": {str(x["values"]): x["counts"] for x in stage_counts},
        "band_entries": entries.num_rows,
        "promotions": stages.num_rows,
        "computed_at": at,
    }


def explain(wh: Warehouse, name: str, profile_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Which rules gave a profile how many points, the caps applied, its band and stage."""
    s = _definition(wh, name)
    at = now or store.now()
    restrict = ibis.memtable(pa.table({"profile_id": [profile_id]}))
    rows = wh.to_arrow(_compile(wh, s, at, restrict)).to_pylist()
    if not rows:
        raise NotFound(f"no profile {profile_id!r}", hint="use a profile id (see `touchpoint profiles show`)")
    t = wh.table(RESULTS)
    stored = wh.to_arrow(t.filter((t.score == name) & (t.profile_id == profile_id))).to_pylist()
    return _explanation(name, s, rows[0], stored[0]["stage"] if stored else None, at)


def explain_all(wh: Warehouse, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Every profile's explanation at once (one pass over the events, as :func:`run`), for a cache.

    ``now`` defaults to now, as :func:`explain`'s. Returns ``{"score", "at", "rows", "definition"}``:
    ``rows`` an Arrow table sorted by ``profile_id`` with the rule columns and the stored stage;
    :func:`explanation_of` turns one profile's row into :func:`explain`'s answer at ``at``.
    """
    s = _definition(wh, name)
    t = wh.table(RESULTS)
    at = now or store.now()
    stages = t.filter(t.score == name).select(tp_pid="profile_id", stage="stage")
    r = _compile(wh, s, at)
    r = r.left_join(stages, r.profile_id == stages.tp_pid).drop("tp_pid")
    return {"score": name, "at": at, "rows": wh.to_arrow(r).sort_by("profile_id"), "definition": s}


def explanation_of(cached: dict[str, Any], profile_id: str) -> dict[str, Any] | None:
    """One profile's explanation from :func:`explain_all`'s answer (None when it was not scored then)."""
    rows: pa.Table = cached["rows"]
    at = int(pc.index(rows.column("profile_id"), profile_id).as_py())
    if at < 0:
        return None
    row = rows.slice(at, 1).to_pylist()[0]
    return _explanation(cached["score"], cached["definition"], row, row.get("stage"), cached["at"])


def _explanation(name: str, s: ScoreDefinition, row: dict[str, Any], stage: str | None, at: datetime) -> dict[str, Any]:
    rules = [
        {"rule": r.name, "kind": "fit", "group": r.group, "points": round(row[f"r_{i}"], 4)}
        for i, r in enumerate(s.fit)
    ]
    rules += [
        {
            "rule": r.name,
            "kind": "engagement",
            "group": r.group,
            "points": round(row[f"r_{len(s.fit) + i}"], 4),
            "half_life_days": r.half_life_days,
        }
        for i, r in enumerate(s.engagement)
    ]
    groups: dict[str, dict[str, Any]] = {}
    for r in rules:
        g = groups.setdefault(r["group"], {"group": r["group"], "raw": 0.0, "cap": s.caps.get(r["group"])})
        g["raw"] += r["points"]
    for g in groups.values():
        g["counted"] = min(g["raw"], g["cap"]) if g["cap"] is not None else g["raw"]
    return {
        "score": name,
        "profile_id": row["profile_id"],
        "points": row["points"],
        "fit": row["fit"],
        "engagement": row["engagement"],
        "ceiling": s.ceiling,
        "band": row["band"],
        "stage": stage,
        "rules": rules,
        "groups": list(groups.values()),
        "at": at,
    }


def demote(wh: Warehouse, name: str, profile_id: str, stage: str, *, reason: str) -> dict[str, Any]:
    """Move a profile back to an earlier stage (e.g. sales returns a lead); recorded with its reason."""
    s = _definition(wh, name)
    names = [st.name for st in s.stages]
    if stage not in names:
        raise InvalidInput(f"score {name!r} has no stage {stage!r}", hint=f"its stages: {', '.join(names)}")
    t = wh.table(RESULTS)
    rows = wh.to_arrow(t.filter((t.score == name) & (t.profile_id == profile_id))).to_pylist()
    if not rows:
        raise NotFound(f"profile {profile_id!r} has not been scored by {name!r}", hint="run the score first")
    current = rows[0]["stage"]
    if current is None or names.index(stage) >= names.index(current):
        raise InvalidInput(
            f"{stage!r} is not before the current stage {current!r}", hint="stages only move back by demotion"
        )
    at = store.now()
    with wh.write() as tx:
        tx.upsert(
            RESULTS,
            pa.Table.from_pylist([{**rows[0], "stage": stage}], schema=schema.SCORE_RESULTS.schema.to_pyarrow()),
            key=["score", "profile_id"],
        )
        tx.append(
            STAGES,
            pa.Table.from_pylist(
                [
                    {
                        "score": name,
                        "profile_id": profile_id,
                        "stage": stage,
                        "previous": current,
                        "kind": "demoted",
                        "reason": reason,
                        "changed_at": at,
                    }
                ],
                schema=schema.SCORE_STAGES.schema.to_pyarrow(),
            ),
        )
    return {"score": name, "profile_id": profile_id, "stage": stage, "previous": current, "reason": reason}


def band_entries(
    wh: Warehouse, since: datetime, *, score: str | None = None, band: str | None = None
) -> list[dict[str, Any]]:
    """Band entries after ``since``, oldest first (the sales hand-off reads the 'hot' ones)."""
    t = wh.table(BANDS)
    cond = t.entered_at > ibis.literal(since, "timestamp")
    if score is not None:
        cond = cond & (t.score == score)
    if band is not None:
        cond = cond & (t.band == band)
    return wh.to_arrow(t.filter(cond).order_by(["entered_at", "profile_id"])).to_pylist()


def compare(
    wh: Warehouse, name: str, *, event: str = "Order Completed", days: int = 30, now: datetime | None = None
) -> dict[str, Any]:
    """The rule-based score beside the learned propensity model, on the same out-of-time question:
    scored as of ``now - days``, does the profile do ``event`` in the ``days`` after? Both AUCs.

    The rule-based side reads traits and computed traits as they are now (profiles keep no history),
    so its AUC can be flattered by traits that changed in the window; events are cut at the cutoff.
    """
    from touchpoint.identity.people import customer_events
    from touchpoint.predict.propensity import _auc, run_propensity

    at = now or store.now()
    cutoff = at - timedelta(days=days)
    s = _definition(wh, name)
    points = wh.to_arrow(_compile(wh, s, cutoff).select("profile_id", "points"))
    e = wh.table("events")
    e = e.filter((e.event == event) & (e.timestamp > ibis.literal(cutoff)) & (e.timestamp <= ibis.literal(at)))
    did = wh.to_arrow(customer_events(wh, e, name="profile_id").select("profile_id").distinct())
    y = pc.is_in(points.column("profile_id"), value_set=did.column("profile_id")).to_numpy(zero_copy_only=False)
    x = points.column("points").to_numpy(zero_copy_only=False)
    rule: dict[str, Any] = {"profiles": len(y), "positives": int(y.sum()), "scored_at": cutoff}
    rule["auc"] = float(_auc(y.astype(float), x)) if 0 < y.sum() < len(y) else None
    learned: dict[str, Any]
    try:
        run_ = run_propensity(wh, event, days, as_of=at.date())
        learned = {
            "auc": run_.test["auc"],
            "brier": run_.test["brier"],
            "model": "HistGradientBoosting",
            "rows": run_.scores.num_rows,
        }
    except Exception as exc:  # too little data to fit: say so beside the rule-based figure
        learned = {"auc": None, "error": str(exc)}
    return {"score": name, "event": event, "days": days, "rule_based": rule, "propensity": learned}
