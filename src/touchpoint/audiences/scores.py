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

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.audiences import definition as d
from touchpoint.audiences import store
from touchpoint.audiences.compile import Compiler, Instant, _Plan, _where, ago, carried, lit
from touchpoint.audiences.refresh import candidates, sources
from touchpoint.audiences.scoredef import ScoreDefinition, parse_score
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse, prepared, schema

TABLE, RESULTS = schema.SCORES.name, schema.SCORE_RESULTS.name
BANDS, STAGES = schema.SCORE_BANDS.name, schema.SCORE_STAGES.name
STATE = schema.SCORE_STATE.name


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


def profile_score(wh: Warehouse, name: str, profile_id: str) -> dict[str, Any]:
    """A profile's stored score: the points, band and stage the last run that scored it recorded, when
    (``computed_at``: every full run stamps every row; an incremental run the rows it rescored), and the
    points split into fit and engagement. :func:`explain` recomputes the rule by rule explanation now.
    :class:`~touchpoint.errors.NotFound` for an unknown score, or a profile the score has no row for."""
    get(wh, name)  # an unknown score is its own error
    row = stored(wh, name, profile_id)
    if row is None:
        raise NotFound(
            f"score {name!r} has no points for profile {profile_id!r}",
            hint="check the profile id (`touchpoint profiles show`); a new profile is scored by the next run",
        )
    return {k: row[k] for k in ("score", "profile_id", "points", "band", "stage", "computed_at", "fit", "engagement")}


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
    return _compiler(wh, s, now)[1](restrict)


def _compiler(
    wh: Warehouse, s: ScoreDefinition, now: datetime, *, at: Instant = None, ident: dict[str, Any] | None = None
) -> tuple[_Plan, Callable[[ir.Table | None], ir.Table]]:
    """What :func:`_compile`'s expression depends on (an incremental run's candidates, without building
    it) and a function building it for every profile or those in ``restrict``. ``at`` and ``ident`` as
    :class:`~touchpoint.audiences.compile.Compiler` takes them (a bound instant, for :func:`_scored`)."""
    c = Compiler(wh, now, store.lookup(wh), at=at, ident=ident)
    at = c.at
    fit_preds = [(f"r_{i}", c.node(rule.when, f"$.fit[{i}].when"), rule) for i, rule in enumerate(s.fit)]
    stage_preds = [
        c.node(st.when, f"$.stages[{i}].when") if st.when is not None else None for i, st in enumerate(s.stages)
    ]
    eng_cols = []
    now_s = lit(at).epoch_seconds()
    for i, rule in enumerate(s.engagement):
        col = f"r_{len(s.fit) + i}"
        c.plan.event_names.add(rule.step.event)

        since = None if rule.within_days is None else now - timedelta(days=rule.within_days)
        c.plan.since.append(since)
        # an event that becomes visible, or leaves the rule's window, moves the points between two runs
        c.plan.offsets.update({0} if rule.within_days is None else {0, rule.within_days})

        start = None if rule.within_days is None else ago(at, rule.within_days)

        def hit(ev: ir.Table, rule: Any = rule, start: Instant = start) -> ir.Value:
            return _where(ev, rule.step, at, start)

        def decayed(ev: ir.Table, rule: Any = rule) -> ir.Value:
            age_days = (now_s - ev.timestamp.epoch_seconds()) / 86400.0
            return ibis.literal(0.5).pow(age_days / rule.half_life_days) * rule.points

        h, v = f"{col}_m", f"{col}_v"
        c.plan.aggregates.append((col, {h: hit, v: decayed}, lambda t, h=h, v=v: t[v].sum(where=t[h])))
        eng_cols.append((col, rule))
    return c.plan, lambda restrict: _expression(c, s, restrict, fit_preds, stage_preds, eng_cols)


def _expression(
    c: Compiler,
    s: ScoreDefinition,
    restrict: ir.Table | None,
    fit_preds: list[tuple[str, Any, Any]],
    stage_preds: list[Any],
    eng_cols: list[tuple[str, Any]],
) -> ir.Table:
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
def _state(wh: Warehouse, name: str) -> dict[str, Any] | None:
    t = wh.table(STATE)
    rows = wh.to_arrow(t.filter(t.score == name)).to_pylist()
    return rows[0] if rows else None


def _fingerprint(wh: Warehouse, definition: Any, s: ScoreDefinition) -> str:
    """A hash of the definition and of every audience its rules name, transitively (a change in any of
    them makes the next run a full one)."""
    nodes = [r.when for r in s.fit] + [st.when for st in s.stages if st.when is not None]
    named = sorted({a for node in nodes for a in d.audiences_named(node)})
    find = store.lookup(wh)
    audiences = {a: store.fingerprint(wh, a, node) for a in named if (node := find(a)) is not None}
    text = json.dumps({"definition": definition, "audiences": audiences}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def touched(
    wh: Warehouse, plan: _Plan, state: dict[str, Any], now: datetime, definition: Any = None, stamp: str = ""
) -> pa.Array:
    """The profiles whose points can have moved since the run ``state`` records, other than by the
    clock alone: the audiences' candidates (:func:`touchpoint.audiences.refresh.candidates`: new events
    of the kinds the rules name, events entering or leaving a window, date traits and consents crossing
    an edge), every profile rebuilt since (new events, identity changes, traits: ``built_at`` after the
    run's), and the profiles a merge or split since then made or removed.

    With the score's ``definition`` (and its fingerprint ``stamp``), the candidates are a prepared read
    (:func:`_candidates`, compiled once per definition) when the identity state carries the events and
    no rule reads consent."""

    built = state["profiles_built_at"]
    ident = carried(wh) if definition is not None and not plan.consents else None
    if ident is not None:
        values = [_text(now), _text(state["evaluated_at"])]
        instants = (state["events_watermark"], built, ident.get("watermark"))
        values += [_text(x if isinstance(x, datetime) else datetime.fromisoformat(str(x))) for x in instants if x]
        key = (stamp.split("|")[0], json.dumps(definition, sort_keys=True), *(x is not None for x in instants))
        found: pa.Table = wh.prepared(_candidates, *values, key=key)
    else:
        found = wh.to_arrow(_candidates_expr(wh, plan, state, now, built, None))
    ids = set(found.column("profile_id").to_pylist())
    if built is not None:  # a merge is logged before the profiles it changes are rebuilt
        rows = wh.prepared(_merges_since, _text(built)).to_pylist()
        for row in rows:
            ids.update(x for x in [row["profile_id"], *(row["merged_profile_ids"] or "").split(",")] if x)
    ids.discard(None)
    return pa.array(sorted(ids), pa.string())


def _merges_since(wh: Warehouse, built: str) -> ir.Table:
    from touchpoint.identity import tables as T

    log = wh.table(T.MERGE_LOG)
    return log.filter(log.logged_at >= _instant(built)).select("profile_id", "merged_profile_ids")


def _candidates_expr(
    wh: Warehouse, plan: _Plan, state: dict[str, Any], now: Instant, built: Instant, ident: dict[str, Any] | None
) -> ir.Table:
    p = wh.table("profiles")
    parts = [p.filter(p.built_at.notnull() if built is None else p.built_at > lit(built)).select("profile_id")]
    cand = candidates(wh, plan, state, now, ident)
    if cand is not None:
        parts.append(cand)
    return parts[0].union(parts[1], distinct=True) if len(parts) > 1 else parts[0]


def _candidates(wh: Warehouse, key: tuple[Any, ...], now: str, evaluated_at: str, *rest: str) -> ir.Table:
    """The builder of :func:`touched`'s candidates (a prepared read): ``key`` is the fingerprint, the
    definition (JSON) and whether the events watermark, the profiles' ``built_at`` and the identity
    watermark are set; their values follow ``now`` and the last run's instant, in that order."""
    _, definition, *present = key
    values = iter(rest)
    watermark, built, mark = (_instant(next(values)) if p else None for p in present)
    plan = _compiler(wh, parse_score(json.loads(definition)), _REFERENCE)[0]
    state = {"evaluated_at": _instant(evaluated_at), "events_watermark": watermark}
    return _candidates_expr(wh, plan, state, _instant(now), built, {"watermark": mark})


def run(wh: Warehouse, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Score every profile; record band entries and stage promotions; returns counts per band and stage."""
    return refresh(wh, name, now=now, full=True)


def refresh(wh: Warehouse, name: str, *, now: datetime | None = None, full: bool = False) -> dict[str, Any]:
    """Bring score ``name`` up to ``now`` (default: the clock): incremental when it can, else full.

    Incremental: only the profiles :func:`touched` since the last run are rescored, at ``now``, exactly
    as a full run at ``now`` scores them; the others keep their last points. Points also move with the
    clock alone (the half-life, a band's threshold crossed as points decay), which only a full run
    catches: the ``scores_full`` job runs one every 15 minutes. A changed definition (or of an audience
    it names), new predictions, a clock that went back or a new day for forward-looking dates make the
    run full. Returns the counts of the rows scored, with ``mode`` and ``candidates``.
    """
    started = time.perf_counter()
    at = now or store.now()
    with wh.exclusive(f"score:{name}"):
        saved = get(wh, name)
        s = parse_score(saved["definition"])
        seen = sources(wh)
        state = _state(wh, name)
        stamp = _fingerprint(wh, saved["definition"], s) + "|" + seen["predictions"]
        plan = _compiler(wh, s, at)[0]
        incremental = (
            not full
            and state is not None
            and state["fingerprint"] == stamp
            and at >= state["evaluated_at"]
            and not (plan.forward_dates and state["evaluated_at"].date() != at.date())
        )
        scope: pa.Array | None = None
        if incremental and state is not None:
            scope = touched(wh, plan, state, at, saved["definition"], stamp)
        rows = _score_rows(wh, name, saved["definition"], stamp, plan, at, scope)
        row = {
            "score": name,
            "evaluated_at": at,
            "events_watermark": seen["watermark"],
            "profiles_built_at": seen["profiles_built_at"],
            "fingerprint": stamp,
            "full_at": at if scope is None else (state or {}).get("full_at"),
            "mode": "full" if scope is None else "incremental",
            "candidates": None if scope is None else len(scope),
            "seconds": None,
        }
        out = _record(wh, name, s, at, rows, scope, row, started)
    return out


#: The plan's instant when :func:`_scored` builds (the expression reads the bound instant; only offsets
#: from it matter).
_REFERENCE = datetime(2000, 1, 1)
_COLUMNS = ("profile_id", "fit", "engagement", "points", "band", "earned")


def _instant(value: str) -> ir.Value:
    return ibis.literal(value, "string").cast("timestamp")


def _text(at: datetime) -> str:
    """An instant as the text :func:`_instant` reads back (UTC, naive, to the microsecond)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(sep=" ", timespec="microseconds")


def _scored(wh: Warehouse, key: tuple[str, str, bool, bool], name: str, at: str, *rest: str) -> ir.Table:
    """The builder of a run's rows (a prepared read: compiled once per definition and engine, then run
    with ``name``, the instant ``at``, the identity watermark and the profiles to score bound): each
    scored profile's values beside its stored row's (``prev_*``). ``key``: the fingerprint, the
    definition (JSON), whether the profiles are restricted, whether the identity state has a watermark."""
    _, definition, restricted, marked = key
    values = list(rest)
    ident = {"watermark": _instant(values.pop(0)) if marked else None}
    restrict = prepared.listed(values.pop(0), "profile_id") if restricted else None
    s = parse_score(json.loads(definition))
    expr = _compiler(wh, s, _REFERENCE, at=_instant(at), ident=ident)[1](restrict)
    prev = wh.table(RESULTS)
    prev = prev.filter(prev.score == name).select(tp_pp="profile_id", **{p: prev[p[5:]] for p in PREVIOUS})
    return expr.left_join(prev, expr.profile_id == prev.tp_pp).select(*_COLUMNS, *PREVIOUS)


def _score_rows(
    wh: Warehouse, name: str, definition: Any, stamp: str, plan: _Plan, at: datetime, scope: pa.Array | None
) -> pa.Table:
    """The rows :func:`_scored` selects (every profile, or those in ``scope``), through a prepared read
    when the instants can be bound: the identity state carries the events and no rule reads consent
    (whose state is built at a literal instant); else built and compiled for this run."""
    if scope is not None and not len(scope):
        return pa.table({c: pa.array([], pa.string()) for c in (*_COLUMNS, *PREVIOUS)})
    ident = carried(wh) if not plan.consents else None
    ids = None if scope is None else prepared.joined(scope.to_pylist())
    if ident is not None and (scope is None or ids is not None):
        mark = ident.get("watermark")
        key = (stamp.split("|")[0], json.dumps(definition, sort_keys=True), scope is not None, mark is not None)
        values = [name, _text(at)]
        if mark is not None:
            values.append(_text(datetime.fromisoformat(str(mark))))
        if ids is not None:
            values.append(ids)
        out: pa.Table = wh.prepared(_scored, *values, key=key)
        return out
    restrict = None if scope is None else ibis.memtable(pa.table({"profile_id": scope}))
    expr = _compile(wh, parse_score(definition), at, restrict)
    prev = wh.table(RESULTS)
    prev = prev.filter(prev.score == name).select(tp_pp="profile_id", **{p: prev[p[5:]] for p in PREVIOUS})
    return wh.to_arrow(expr.left_join(prev, expr.profile_id == prev.tp_pp).select(*_COLUMNS, *PREVIOUS))


def _record(
    wh: Warehouse,
    name: str,
    s: ScoreDefinition,
    at: datetime,
    rows: pa.Table,
    scope: pa.Array | None,
    state_row: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Write the points of the rows ``expr`` scores (all, or the profiles in ``scope``), their band
    entries and stage promotions, and the run's state.

    A second run at one instant (incremental runs after each batch of events, or a changed definition)
    replaces that instant's facts: the band and stage a profile had *before* the instant are what its
    entry and promotion are recorded against, so several runs at one instant leave what one run leaves.
    """
    names = [st.name for st in s.stages]
    pids = rows.column("profile_id")
    n = rows.num_rows
    # the facts this instant already holds (an earlier run at the same `now`): their `previous` is the
    # profile's state before the instant
    b = wh.table(BANDS)
    inst_b = wh.to_arrow(
        b.filter((b.score == name) & (b.entered_at == ibis.literal(at))).select("profile_id", "band", "previous")
    )
    g = wh.table(STAGES)
    inst_s = wh.to_arrow(
        g.filter((g.score == name) & (g.changed_at == ibis.literal(at)) & (g.kind == "promoted")).select(
            "profile_id", "stage", "previous"
        )
    )
    band_before, has_b, held_b = _before_instant(pids, rows.column("prev_band"), inst_b, "band")
    stage_before, has_s, held_s = _before_instant(pids, rows.column("prev_stage"), inst_s, "stage")
    stage_names = pa.array(names, pa.string())
    prev_idx = pc.fill_null(pc.index_in(stage_before.cast(pa.string()), value_set=stage_names), -1).cast(pa.int64())
    earned = rows.column("earned").cast(pa.int64())
    # forward only from the stage held before this instant (a stage reached earlier at this instant is
    # that instant's fact, replaced like a band entry)
    new_idx = pc.max_element_wise(prev_idx, earned) if names else earned
    stage = _stage_names(stage_names, new_idx)
    ts = pa.array([at] * n, pa.timestamp("us"))
    results = pa.table(
        {
            "score": pa.array([name] * n, pa.string()),
            "profile_id": pids.cast(pa.string()),
            "points": rows.column("points").cast(pa.float64()),
            "fit": rows.column("fit").cast(pa.float64()),
            "engagement": rows.column("engagement").cast(pa.float64()),
            "band": rows.column("band").cast(pa.string()),
            "stage": stage,
            "computed_at": ts,
        }
    )
    band = results.column("band")
    band_changed = pc.fill_null(pc.not_equal(band, band_before.cast(pa.string())), True)
    band_changed = pc.and_(band_changed, pc.is_valid(band))
    entries = pa.table(
        {
            "score": results.column("score"),
            "profile_id": results.column("profile_id"),
            "band": band,
            "previous": band_before.cast(pa.string()),
            "entered_at": ts,
        }
    ).filter(pc.and_(band_changed, pc.invert(pc.fill_null(pc.equal(held_b, band), False))))
    promoted = pc.greater(new_idx, prev_idx) if names else pa.array([False] * n)
    prev_names = _stage_names(stage_names, prev_idx)
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
    ).filter(pc.and_(promoted, pc.invert(pc.fill_null(pc.equal(held_s, stage), False))))
    undo_b = pids.filter(pc.and_(has_b, pc.invert(band_changed))) if n else pa.array([], pa.string())
    undo_s = pids.filter(pc.and_(has_s, pc.invert(promoted))) if n else pa.array([], pa.string())
    gone = pa.array([], pa.string())
    if scope is None:  # the stored rows of profiles that no longer exist (the population is `profiles`)
        gone = wh.to_arrow(_vanished(wh, name)).column("profile_id").combine_chunks()
    with wh.write() as tx:
        if scope is None:
            # every row is current at `at`; only the rows whose values changed are written (rewriting
            # every row of a keyed table in one transaction cost DuckDB minutes at 1M profiles)
            tx.update(RESULTS, {"computed_at": at}, key="score", value=name)
            if len(gone):
                tx.delete(RESULTS, "profile_id", gone.to_pylist())
            changed = _changed(rows, results)
            if changed.num_rows:
                tx.upsert(RESULTS, changed, key=["score", "profile_id"])
        else:
            gone = pc.filter(scope, pc.invert(pc.is_in(scope, value_set=pids))) if n else scope
            if len(gone):  # merged away or removed: every score's row of a profile that no longer exists
                tx.delete(RESULTS, "profile_id", gone.to_pylist())
            if n:
                tx.upsert(RESULTS, results, key=["score", "profile_id"])
        _undo(wh, tx, BANDS, "entered_at", name, at, undo_b)
        _undo(wh, tx, STAGES, "changed_at", name, at, undo_s)
        tx.upsert(BANDS, entries, key=["score", "profile_id", "entered_at"])
        tx.upsert(STAGES, stages, key=["score", "profile_id", "changed_at"])
        state_row = {**state_row, "seconds": round(time.perf_counter() - started, 3)}
        tx.upsert(
            STATE, pa.Table.from_pylist([state_row], schema=schema.SCORE_STATE.schema.to_pyarrow()), key=["score"]
        )
    if scope is None:  # a full run's writes (every row's computed_at): fold them now, not in the next run's commit
        wh.checkpoint()
    bands = pc.value_counts(band).to_pylist()
    stage_counts = pc.value_counts(stage).to_pylist() if names else []
    return {
        "score": name,
        "mode": state_row["mode"],
        "profiles": n,
        "candidates": state_row["candidates"],
        "bands": {str(x["values"]): x["counts"] for x in bands},
        "stages": {str(x["values"]): x["counts"] for x in stage_counts},
        "band_entries": entries.num_rows,
        "promotions": stages.num_rows,
        "computed_at": at,
        "seconds": state_row["seconds"],
    }


#: The stored row's values beside each scored row (``prev_<column>``): what a run compares its rows with.
PREVIOUS = ("prev_band", "prev_stage", "prev_points", "prev_fit", "prev_engagement", "prev_score")


def _stage_names(names: pa.Array, idx: pa.Array) -> pa.Array:
    """The stage name at each index of ``idx`` (null where it is -1 or there are no stages)."""
    if not len(names):
        return pa.nulls(len(idx), pa.string())
    at = pc.if_else(pc.less(idx, 0), pa.scalar(None, pa.int64()), idx)
    return pc.take(names, at)


def _changed(rows: pa.Table, results: pa.Table) -> pa.Table:
    """The rows of ``results`` whose values differ from the stored row (``rows``' ``prev_*`` columns),
    or that have none: what a full run writes beside setting ``computed_at`` on every row."""

    def differs(column: str) -> pa.Array:
        new, old = results.column(column), rows.column(f"prev_{column}").cast(results.schema.field(column).type)
        same = pc.or_(pc.fill_null(pc.equal(new, old), False), pc.and_(pc.is_null(new), pc.is_null(old)))
        return pc.invert(same)

    mask = pc.is_null(rows.column("prev_score"))
    for column in ("points", "fit", "engagement", "band", "stage"):
        mask = pc.or_(mask, differs(column))
    return results.filter(mask)


def _vanished(wh: Warehouse, name: str) -> ir.Table:
    """Score ``name``'s stored rows whose profile is no longer in ``profiles``."""
    r, p = wh.table(RESULTS), wh.table("profiles")
    r = r.filter(r.score == name)
    return r.anti_join(p, r.profile_id == p.profile_id).select("profile_id")


def _undo(wh: Warehouse, tx: Any, table: str, column: str, name: str, at: datetime, profiles: pa.Array) -> None:
    """Remove ``profiles``' facts of score ``name`` at instant ``at`` (a rerun at that instant found the
    profile back where it was before it): the rows at ``at`` are rewritten without them."""
    if not len(profiles):
        return
    t = wh.table(table)
    kept = wh.to_arrow(t.filter(t[column] == ibis.literal(at)))
    drop = pc.and_(pc.equal(kept.column("score"), name), pc.is_in(kept.column("profile_id"), value_set=profiles))
    tx.delete(table, column, [at])
    tx.append(table, kept.filter(pc.invert(drop)))


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


def _before_instant(
    pids: pa.ChunkedArray, stored: pa.ChunkedArray, facts: pa.Table, column: str
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per profile of ``pids``: the value (band or stage) held before this instant, whether this instant
    holds a fact already (an earlier run at the same ``now``), and the value that fact recorded.

    ``stored`` is the last run's value; ``facts`` (``profile_id, <column>, previous``) are the instant's."""
    n = len(pids)
    if not facts.num_rows or not n:
        return stored, pa.array([False] * n), pa.nulls(n, pa.string())
    at = pc.index_in(pids, value_set=facts.column("profile_id"))
    has = pc.is_valid(at)
    before = pc.if_else(has, pc.take(facts.column("previous"), at), stored)
    return before, has, pc.take(facts.column(column), at)


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
