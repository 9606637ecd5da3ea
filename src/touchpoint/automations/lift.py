"""What an automation earned: the goal rate of treated versus held-out entrants, by the experiments engine.

Each profile counts once, in the arm of its first entry (arms are sticky, so every entry of a profile is
in the same arm). Its outcome is 1 when it reached the goal event within ``within_days`` of entering (up
to now), else 0. Both arms are entered at the same times by construction (the hash decides the arm, not
the time), so entrants whose window is still open dilute both arms alike; ``matured`` says how many
windows have closed. The comparison runs through :func:`touchpoint.experiments.analysis.analyze` with the
designed split as the sample-ratio check's expectation; the default engine is ``sequential``, whose
interval stays valid however often the lift is looked at.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import numpy as np

from touchpoint.automations import store
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse, schema


def lift(
    wh: Warehouse,
    name: str,
    *,
    now: datetime | None = None,
    engine: str = "sequential",
    alpha: float = 0.05,
    relative: bool = True,
) -> dict[str, Any]:
    """Treated versus held out on the automation's goal: lift with interval, SRM check, verdict."""
    auto = store.load(wh, name)
    if auto.goal is None:
        raise InvalidInput(
            f"automation {name!r} has no goal to measure",
            hint='add "goal": {"event": "Order Completed", "within_days": 14} and save it with --replace',
        )
    if auto.holdout == 0:
        raise InvalidInput(f"automation {name!r} has no holdout (allow_no_holdout)", hint="give it a holdout share")
    at = now or store.now()
    en = wh.table(schema.AUTOMATION_ENTRIES.name)
    en = en.filter((en.automation == name) & (en.entered_at <= ibis.literal(at, "timestamp")))
    first = en.group_by("profile_id").agg(tp_in=en.entered_at.min(), arm=en.arm.argmin(en.entered_at))
    rows = _reached(wh, first, auto.goal.event, auto.goal.within_days, at)
    out: dict[str, Any] = {
        "automation": name,
        "goal": {"event": auto.goal.event, "within_days": auto.goal.within_days},
        "holdout_share": auto.holdout,
    }
    return _compare(
        out,
        rows,
        control="holdout",
        treated="treated",
        share=auto.holdout,
        goal=(auto.goal.event, auto.goal.within_days),
        at=at,
        key=f"automation:{name}",
        engine=engine,
        alpha=alpha,
        relative=relative,
    )


def programme_lift(
    wh: Warehouse,
    share: float,
    *,
    goal: str | None = None,
    within_days: int | None = None,
    now: datetime | None = None,
    engine: str = "sequential",
    alpha: float = 0.05,
    relative: bool = True,
) -> dict[str, Any]:
    """The whole programme's lift: everyone who entered any automation, the global control group (never
    contacted, ``share`` of all profiles) versus the rest, on a goal event within N days of the first entry.

    The rest includes the automations' own held-out entrants: it measures the programme as it runs. The
    goal defaults to the one goal every automation with a goal shares."""
    from touchpoint.automations import pacing

    if share <= 0:
        raise InvalidInput(
            "there is no global control group to measure the programme against",
            hint="set automations_global_control (e.g. 0.05); profiles entering from then on are measured",
        )
    if goal is None or within_days is None:
        shared = pacing.programme_goal([a["definition"] for a in store.list_all(wh)])
        if shared is None and goal is None:
            raise InvalidInput(
                "the automations do not share one goal, so the programme's goal must be named",
                hint='pass --goal "Order Completed" --within-days 30',
            )
        goal = goal or str(shared["event"])  # type: ignore[index]
        within_days = within_days or (int(shared["within_days"]) if shared else 30)
    if not 1 <= within_days <= 366:
        raise InvalidInput(f"within_days {within_days} is out of range", hint="a whole number from 1 to 366")
    at = now or store.now()
    en = wh.table(schema.AUTOMATION_ENTRIES.name)
    en = en.filter(en.entered_at <= ibis.literal(at, "timestamp"))
    arm = ibis.ifelse(en.arm == pacing.CONTROL_ARM, pacing.CONTROL_ARM, "programme")
    en = en.mutate(tp_arm=arm)
    first = en.group_by("profile_id").agg(tp_in=en.entered_at.min(), arm=en.tp_arm.argmin(en.entered_at))
    rows = _reached(wh, first, goal, within_days, at)
    out: dict[str, Any] = {
        "programme": True,
        "goal": {"event": goal, "within_days": within_days},
        "control_share": share,
    }
    return _compare(
        out,
        rows,
        control=pacing.CONTROL_ARM,
        treated="programme",
        share=share,
        goal=(goal, within_days),
        at=at,
        key=pacing.CONTROL_KEY,
        engine=engine,
        alpha=alpha,
        relative=relative,
    )


def _reached(wh: Warehouse, first: Any, event: str, within_days: int, at: datetime) -> list[dict[str, Any]]:
    """Per entrant (``first``: profile_id, tp_in, arm): whether the goal event came within the window."""
    from touchpoint.identity.people import customer_events

    e = wh.table("events")
    e = e.filter((e.type == "track") & (e.event == event))
    goal = customer_events(wh, e, name="tp_gp").select("tp_gp", tp_ts="timestamp")
    end = first.tp_in + ibis.interval(days=within_days)
    j = first.left_join(
        goal,
        (first.profile_id == goal.tp_gp)
        & (goal.tp_ts > first.tp_in)
        & (goal.tp_ts <= end)
        & (goal.tp_ts <= ibis.literal(at, "timestamp")),
    )
    per = j.group_by(["profile_id", "arm"]).agg(reached=j.tp_gp.count(), tp_in=j.tp_in.min())
    return wh.to_arrow(per).to_pylist()


def _compare(
    out: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    control: str,
    treated: str,
    share: float,
    goal: tuple[str, int],
    at: datetime,
    key: str,
    engine: str,
    alpha: float,
    relative: bool,
) -> dict[str, Any]:
    from touchpoint.experiments.analysis import AnalysisOptions, analyze
    from touchpoint.experiments.statistics import MetricStats, stats_from_units

    window = timedelta(days=goal[1])
    y = {arm: np.array([1.0 if r["reached"] else 0.0 for r in rows if r["arm"] == arm]) for arm in (control, treated)}
    units = {arm: float(len(v)) for arm, v in y.items()}
    out.update(
        entrants=units,
        matured=sum(1 for r in rows if r["arm"] in y and r["tp_in"] + window <= at),
        goal_rate={arm: (float(v.mean()) if v.size else None) for arm, v in y.items()},
    )
    if min(units.values()) < 2:
        out.update(
            status="insufficient_data", verdict="each arm needs at least 2 entrants before a lift can be estimated"
        )
        return out
    metric = f"{goal[0]} within {goal[1]} days"
    stats = [MetricStats(metric, "binomial", [stats_from_units(arm, v) for arm, v in y.items()])]
    result = analyze(
        stats,
        control=control,
        weights={control: share, treated: 1 - share},
        units=units,
        options=AnalysisOptions(engine=engine, alpha=alpha, relative=relative),
        key=key,
    )
    c = result.metrics[0].comparisons[0]
    out.update(
        status=result.status,
        verdict=result.verdict,
        lift={
            "relative": relative,
            "estimate": c.estimate,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": c.p_value,
            "engine": engine,
            "alpha": alpha,
            "error": c.error,
        },
        srm=result.srm.to_dict(),
        notes=result.notes,
    )
    return out


def split(
    wh: Warehouse,
    name: str,
    *,
    step: int | None = None,
    now: datetime | None = None,
    engine: str = "sequential",
    alpha: float = 0.05,
    relative: bool = True,
) -> dict[str, Any]:
    """A split step's arms compared on the automation's goal, like :func:`lift` compares treated and held out.

    Each profile counts once, in the arm its first entry was put in at that split (sticky: every entry of a
    profile takes the same arm), from the instant it reached the split; its outcome is the goal within
    ``within_days`` of that instant. The first arm is the control; the sample-ratio check expects the arms'
    weights.
    """
    import json

    import pyarrow as pa

    from touchpoint.automations import flows
    from touchpoint.experiments.analysis import AnalysisOptions, analyze
    from touchpoint.experiments.statistics import MetricStats, stats_from_units
    from touchpoint.identity.people import customer_events

    auto = store.load(wh, name)
    splits = [s for s in auto.walk() if s.kind == "split"]
    if not splits:
        raise InvalidInput(f"automation {name!r} has no split step", hint="add a split step to compare arms")
    if step is None and len(splits) > 1:
        raise InvalidInput(
            f"automation {name!r} has {len(splits)} split steps", hint=f"choose one: --step {splits[0].index}"
        )
    chosen = splits[0] if step is None else next((s for s in splits if s.index == step), None)
    if chosen is None:
        raise InvalidInput(f"step {step} of {name!r} is not a split", hint=f"splits: {[s.index for s in splits]}")
    if auto.goal is None:
        raise InvalidInput(
            f"automation {name!r} has no goal to compare its arms on",
            hint='add "goal": {"event": "Order Completed", "within_days": 14} and save it with --replace',
        )
    at = now or store.now()
    f = wh.table(flows.TABLE)
    first: dict[str, tuple[datetime, str]] = {}
    for r in wh.to_arrow(f.filter(f.automation == name).select("profile_id", "path")).to_pylist():
        for p in json.loads(r["path"]):
            if p["step"] == chosen.index and p["kind"] == "split":
                when = datetime.fromisoformat(p["at"])
                if r["profile_id"] not in first or when < first[r["profile_id"]][0]:
                    first[r["profile_id"]] = (when, p["taken"])
    arms: list[str] = list(chosen.options["arms"])
    weights = dict(zip(arms, chosen.options["weights"], strict=True))
    reached: set[str] = set()
    if first:
        people = ibis.memtable(
            pa.table(
                {
                    "tp_pid": pa.array(list(first), pa.string()),
                    "tp_in": pa.array([w for w, _ in first.values()], pa.timestamp("us")),
                }
            )
        )
        e = wh.table("events")
        e = e.filter((e.type == "track") & (e.event == auto.goal.event))
        goal = customer_events(wh, e, name="tp_gp").select("tp_gp", tp_ts="timestamp")
        j = people.inner_join(
            goal,
            (people.tp_pid == goal.tp_gp)
            & (goal.tp_ts > people.tp_in)
            & (goal.tp_ts <= people.tp_in + ibis.interval(days=auto.goal.within_days))
            & (goal.tp_ts <= ibis.literal(at, "timestamp")),
        )
        reached = set(wh.to_arrow(j.select("tp_pid").distinct()).column("tp_pid").to_pylist())
    y = {arm: np.array([1.0 if p in reached else 0.0 for p, (_, a) in first.items() if a == arm]) for arm in arms}
    units = {arm: float(len(v)) for arm, v in y.items()}
    out: dict[str, Any] = {
        "automation": name,
        "step": chosen.index,
        "goal": {"event": auto.goal.event, "within_days": auto.goal.within_days},
        "arms": arms,
        "weights": weights,
        "entrants": units,
        "goal_rate": {arm: (float(v.mean()) if v.size else None) for arm, v in y.items()},
    }
    if min(units.values()) < 2:
        out.update(status="insufficient_data", verdict="each arm needs at least 2 entrants before arms can be compared")
        return out
    metric = f"{auto.goal.event} within {auto.goal.within_days} days"
    stats = [MetricStats(metric, "binomial", [stats_from_units(arm, y[arm]) for arm in arms])]
    result = analyze(
        stats,
        control=arms[0],
        weights={a: w / sum(weights.values()) for a, w in weights.items()},
        units=units,
        options=AnalysisOptions(engine=engine, alpha=alpha, relative=relative),
        key=f"automation:{name}:split:{chosen.index}",
    )
    out.update(
        status=result.status,
        verdict=result.verdict,
        control=arms[0],
        comparisons=[
            {
                "arm": c.variant,
                "estimate": c.estimate,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "p_value": c.p_value,
                "error": c.error,
            }
            for c in result.metrics[0].comparisons
        ],
        lift_engine={"engine": engine, "alpha": alpha, "relative": relative},
        srm=result.srm.to_dict(),
        notes=result.notes,
    )
    return out
