"""Paths: the most frequent sequences of steps after (or before) an event, ready for a Sankey chart.

Each event gets a label (the track event's name, or ``page:<path>``/``screen:<name>``; repeated
consecutive labels collapse into one). For every person, the anchor is their first event matching
``anchor`` in the period; the path is the next (``direction="from"``) or previous (``"to"``)
``depth`` labels within the anchor's session. Paths are counted per person.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> paths(wh, "Order Completed", direction="to")["paths"]
[]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput
from touchpoint.journeys.funnels import Step

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

SEP = " > "
END = "(end)"
START = "(start)"


def label_expr(t: ir.Table) -> ir.StringValue:
    """A readable label per event: the track name, ``page:/path`` or ``screen:Name``."""
    return ibis.cases(
        (t.type == "track", ibis.coalesce(t.event, ibis.literal("track"))),
        (t.type == "page", ibis.literal("page:").concat(ibis.coalesce(t.path, t.name, ibis.literal("?")))),
        (t.type == "screen", ibis.literal("screen:").concat(ibis.coalesce(t.name, ibis.literal("?")))),
        else_=t.type,
    )


def path_steps_expr(
    sessionized: ir.Table, anchor: str | Step, *, direction: Literal["from", "to"] = "from", depth: int = 4
) -> ir.Table:
    """One row per (person, position): ``pos`` 1..depth away from the anchor and the ``label`` there.

    ``sessionized`` comes from :func:`touchpoint.journeys.sessions.sessionize`.
    """
    if direction not in ("from", "to"):
        raise InvalidInput(f"direction {direction!r} is not known", hint="use 'from' or 'to'")
    if not isinstance(depth, int) or not 1 <= depth <= 20:
        raise InvalidInput(f"path depth {depth!r} is out of range", hint="give 1 to 20 steps")
    step = anchor if isinstance(anchor, Step) else Step.parse(anchor)
    s = sessionized.mutate(label=label_expr(sessionized), tp_anchor=step.predicate(sessionized))
    w = ibis.window(group_by=s.session_id, order_by=[s.timestamp, s.message_id])
    s = s.mutate(tp_prev=s.label.lag().over(w))
    # collapse repeats, but never drop an anchor event
    s = s.filter(s.tp_anchor | s.tp_prev.isnull() | (s.tp_prev != s.label))
    s = s.mutate(tp_rn=ibis.row_number().over(ibis.window(group_by=s.session_id, order_by=[s.timestamp, s.message_id])))
    anchors = s.filter(s.tp_anchor)
    aw = ibis.window(group_by=anchors.person, order_by=[anchors.timestamp, anchors.message_id])
    anchors = anchors.mutate(tp_k=ibis.row_number().over(aw))
    anchors = anchors.filter(anchors.tp_k == 0).select(a_session=anchors.session_id, a_rn=anchors.tp_rn)
    j = s.join(anchors, s.session_id == anchors.a_session)
    pos = (j.tp_rn - j.a_rn) if direction == "from" else (j.a_rn - j.tp_rn)
    j = j.mutate(pos=pos.cast("int64"))
    return j.filter((j.pos >= 1) & (j.pos <= depth)).select("person", "pos", "label")


def paths(
    wh: Warehouse,
    anchor: str,
    *,
    direction: Literal["from", "to"] = "from",
    depth: int = 4,
    top: int = 20,
    start: datetime | None = None,
    end: datetime | None = None,
    timeout_minutes: float = 30.0,
    identity: str = "auto",
    types: Sequence[str] | None = ("page", "screen", "track"),
) -> dict[str, Any]:
    """Most frequent paths from/to ``anchor`` and the Sankey nodes and links that draw them.

    Links carry ``source``/``target`` node indices and ``value`` (people); node names are
    ``"<pos>. <label>"`` so the same page at two depths stays two nodes.
    """
    from touchpoint.journeys.people import person_events
    from touchpoint.journeys.sessions import sessionize

    ev = person_events(wh, identity=identity)
    if start is not None:
        ev = ev.filter(ev.timestamp >= start)
    if end is not None:
        ev = ev.filter(ev.timestamp < end)
    steps = path_steps_expr(
        sessionize(ev, timeout_minutes=timeout_minutes, types=types), anchor, direction=direction, depth=depth
    )
    rows = wh.to_arrow(steps.order_by(["person", "pos"])).to_pydict()
    per_person: dict[str, list[str]] = {}
    for person, label in zip(rows["person"], rows["label"], strict=True):
        per_person.setdefault(person, []).append(label)
    anchored = _anchored_people(wh, ev, anchor)
    counts: dict[tuple[str, ...], int] = {}
    for seq in per_person.values():
        key = tuple(seq)
        counts[key] = counts.get(key, 0) + 1
    no_steps = anchored - len(per_person)
    if no_steps > 0:
        counts[()] = counts.get((), 0) + no_steps
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(counts.values())
    top_paths = [
        {
            "path": _render(anchor, seq, direction),
            "steps": list(seq),
            "people": n,
            "share": n / total if total else None,
        }
        for seq, n in ordered[:top]
    ]
    return {
        "anchor": anchor,
        "direction": direction,
        "depth": depth,
        "people": total,
        "paths": top_paths,
        "sankey": sankey(anchor, counts, direction),
    }


def _anchored_people(wh: Warehouse, ev: ir.Table, anchor: str) -> int:
    step = Step.parse(anchor)
    hit = ev.filter(step.predicate(ev))
    return int(wh.to_arrow(hit.person.nunique()).as_py() or 0)


def _render(anchor: str, seq: Sequence[str], direction: str) -> str:
    if direction == "from":
        return SEP.join([anchor, *seq, END] if len(seq) else [anchor, END])
    return SEP.join([START, *reversed(seq), anchor])


def sankey(anchor: str, counts: dict[tuple[str, ...], int], direction: str = "from") -> dict[str, Any]:
    """Sankey nodes and links from path counts (every path starts at the anchor and ends at END).

    >>> sk = sankey("A", {("B",): 2, (): 1})
    >>> [(sk["nodes"][lk["source"]], sk["nodes"][lk["target"]], lk["value"]) for lk in sk["links"]]
    [('0. A', '1. B', 2), ('0. A', '1. (end)', 1), ('1. B', '2. (end)', 2)]
    """
    nodes: dict[str, int] = {}
    links: dict[tuple[int, int], int] = {}

    def node(name: str) -> int:
        return nodes.setdefault(name, len(nodes))

    for seq, n in counts.items():
        chain = [anchor, *seq, END if direction == "from" else START]
        names = [f"{i}. {label}" for i, label in enumerate(chain)]
        for a, b in itertools.pairwise(names):
            key = (node(a), node(b))
            links[key] = links.get(key, 0) + n
    ordered = sorted(links.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    return {
        "nodes": list(nodes),
        "links": [{"source": s, "target": t, "value": v} for (s, t), v in ordered],
    }


OTHER = "(other)"


def fold(sk: dict[str, Any], keep: int = 6) -> dict[str, Any]:
    """A readable Sankey: in each step, the ``keep`` busiest nodes stay and the rest become ``(other)``.

    People are kept: every link's value lands on the folded nodes, so each step still adds up.

    >>> sk = sankey("A", {("B",): 5, ("C",): 2, ("D",): 1})
    >>> small = fold(sk, keep=1)
    >>> small["nodes"]
    ['0. A', '1. B', '1. (other)', '2. (end)']
    >>> [(small["nodes"][lk["source"]], small["nodes"][lk["target"]], lk["value"]) for lk in small["links"]]
    [('0. A', '1. B', 5), ('0. A', '1. (other)', 3), ('1. B', '2. (end)', 5), ('1. (other)', '2. (end)', 3)]
    """
    if keep < 1:
        raise InvalidInput(f"keep {keep!r} must be at least 1", hint="keep the busiest node of each step at least")
    names: list[str] = sk["nodes"]
    into: dict[int, int] = {}
    out_of: dict[int, int] = {}
    for lk in sk["links"]:
        out_of[lk["source"]] = out_of.get(lk["source"], 0) + lk["value"]
        into[lk["target"]] = into.get(lk["target"], 0) + lk["value"]
    size = {i: max(into.get(i, 0), out_of.get(i, 0)) for i in range(len(names))}
    by_step: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_step.setdefault(name.split(". ", 1)[0], []).append(i)
    renamed: dict[int, str] = {}
    order: list[tuple[int, bool, int, int]] = []  # step, folded, -people: busiest first, (other) last
    for step, members in by_step.items():
        ranked = sorted(members, key=lambda i: (-size[i], names[i]))
        whole = len(ranked) <= keep + 1  # folding one node into "(other)" would hide its name for nothing
        for rank, i in enumerate(ranked):
            folded = not whole and rank >= keep
            renamed[i] = f"{step}. {OTHER}" if folded else names[i]
            order.append((int(step) if step.isdigit() else 0, folded, -size[i], i))
    nodes: dict[str, int] = {}
    links: dict[tuple[int, int], int] = {}
    for *_, i in sorted(order):
        nodes.setdefault(renamed[i], len(nodes))
    for lk in sk["links"]:
        key = (nodes[renamed[lk["source"]]], nodes[renamed[lk["target"]]])
        links[key] = links.get(key, 0) + lk["value"]
    ordered = sorted(links.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    return {"nodes": list(nodes), "links": [{"source": s, "target": t, "value": v} for (s, t), v in ordered]}
