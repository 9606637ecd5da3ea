"""Graph algorithms written as Ibis expressions, so they run inside the warehouse engine.

* :func:`connected_components`: min-label propagation with pointer jumping (each round a node
  takes the smallest label among itself and its neighbours, then the label of its label). Labels
  only decrease, so the sum of labels stops falling exactly when the labelling is stable.
* :func:`split_by_seeds`: multi-source breadth-first search inside each cluster: every node joins
  the seed it is fewest links away from (ties go to the earlier seed). It is how a cluster that
  would hold too many identifiers of one type is cut along its weakest links.

Each round is materialised as a temporary table (:class:`Scratch`), so the expression never grows
with the number of rounds and the engine plans one join and one aggregation per round. Nothing
here is specific to DuckDB: joins, unions, ``min``, ``row_number`` and ``create_table``.

>>> from touchpoint.warehouse import Warehouse
>>> import ibis, pyarrow as pa
>>> wh = Warehouse.open("duckdb://:memory:")
>>> edges = ibis.memtable(pa.table({"src": [1, 2, 5], "dst": [2, 3, 6]}))
>>> nodes = ibis.memtable(pa.table({"node_id": [1, 2, 3, 4, 5, 6]}))
>>> with Scratch(wh) as s:
...     labels = connected_components(s, nodes, edges)
...     sorted(wh.to_arrow(labels).to_pylist(), key=lambda r: r["node_id"])  # doctest: +NORMALIZE_WHITESPACE
[{'node_id': 1, 'label': 1}, {'node_id': 2, 'label': 1}, {'node_id': 3, 'label': 1},
 {'node_id': 4, 'label': 4}, {'node_id': 5, 'label': 5}, {'node_id': 6, 'label': 5}]
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import NotConverged
from touchpoint.warehouse import Warehouse

MAX_ROUNDS = 200
#: SQL compiled by :meth:`Scratch.save_query`, its table's schema (as the catalog read it) and its expression's,
#: by engine, builder, key and input schemas.
_COMPILED: dict[tuple[Any, ...], tuple[str, ibis.Schema | None, ibis.Schema]] = {}


def _open_slots(wh: Warehouse) -> set[int]:
    """The slots of the :class:`Scratch` blocks open in this thread on ``wh`` (temporary tables belong to a
    thread's connection)."""
    slots: set[int] | None = getattr(wh._local, "scratch_slots", None)
    if slots is None:
        slots = wh._local.scratch_slots = set()
    return slots


#: A run of this process's own in :meth:`Scratch.save_query`'s value markers (no value holds it).
_MARK = uuid.uuid4().hex


def _marker(key: str) -> str:
    return f"tp-value-{key}-{_MARK}"


def _holder(key: str) -> str:
    return f"__tp_input_{key}__"


_SEED_BITS = 2**32
#: The schemas of :meth:`Scratch.save_empty`'s tables, by builder, key and input schemas.
_SCHEMAS: dict[tuple[Any, ...], ibis.Schema] = {}


def _input_schemas(inputs: dict[str, ir.Table]) -> tuple[Any, ...]:
    return tuple((k, tuple(t.schema().items())) for k, t in sorted(inputs.items()))


class Scratch:
    """Temporary tables for one computation; dropped when the ``with`` block ends."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.con = wh.ibis
        # the same names in every run of a thread (the thread's id and the first slot no open block of the
        # thread holds), so expressions over them are the same every run and an engine may reuse their SQL
        self._slots = _open_slots(wh)
        self.slot = next(i for i in itertools.count() if i not in self._slots)
        self._slots.add(self.slot)
        self.prefix = f"_tp_id_{threading.get_ident()}_{self.slot}"
        self.names: list[str] = []

    def save(self, expr: ir.Table, name: str) -> ir.Table:
        """Materialise ``expr`` as a temporary table and return it."""
        full = f"{self.prefix}_{name}"
        if full not in self.names:
            self.names.append(full)
        return self.wh.save_temp_table(full, expr)

    def save_query(
        self,
        name: str,
        key: tuple[Any, ...],
        build: Callable[..., ir.Table],
        *,
        values: dict[str, str] | None = None,
        **inputs: ir.Table,
    ) -> ir.Table:
        """Materialise ``build(**inputs, **values)`` like :meth:`save`, compiling it once per process.

        ``inputs`` are named tables (saved ones, or the warehouse's); ``name`` and ``key`` name everything
        else the expression depends on (``build``'s place in the code, the merge rules' fingerprint).
        The expression is built over placeholder tables of the inputs' schemas and compiled to SQL for
        this engine the first time; later calls put the inputs' names in the cached text and run it, so
        Ibis neither builds nor compiles it again (building and compiling were most of an incremental
        update's cost: docs/decisions.md). Portable: :meth:`Warehouse.create_temp_table` over the SQL
        Ibis compiled for the engine.

        ``values`` are strings that change from run to run (an instant in ISO form: the builder casts it):
        the builder gets a marker for each, and the SQL a string literal of the value in its place (a value
        holding a quote or a backslash is refused: literals are not quoted alike in every dialect).
        """
        values = values or {}
        for k, v in values.items():
            if "'" in v or "\\" in v:
                raise ValueError(f"save_query binds plain values only; {k}={v!r} holds a quote or a backslash")
        cache_key = (
            self.con.name,
            build.__module__,
            build.__qualname__,
            name,
            key,
            _input_schemas(inputs),
            tuple(sorted(values)),
        )
        compiled = _COMPILED.get(cache_key)
        if compiled is None:
            holders = {k: ibis.table(t.schema(), name=_holder(k)) for k, t in inputs.items()}
            expr = build(**holders, **{k: _marker(k) for k in values})
            text = str(self.con.compile(expr))
            missing = [k for k in values if f"'{_marker(k)}'" not in text]
            if missing:
                raise ValueError(f"{build.__qualname__} does not use the values {missing} as whole string literals")
            compiled = (text, None, expr.schema())
        sql = compiled[0]
        for k, t in inputs.items():
            sql = sql.replace(self.wh.identifier(_holder(k)), self.wh.identifier(t.op().name))
        for k, v in values.items():
            sql = sql.replace(f"'{_marker(k)}'", f"'{v}'")
        full = f"{self.prefix}_{name}"
        if full not in self.names:
            self.names.append(full)
        self.wh.replace_temp_table(full, sql)  # a table of an earlier block whose drop failed is replaced
        table = self.wh.temp_table(full, compiled[1], built=compiled[2])
        if compiled[1] is None:  # what the catalog says of the table: an engine may build it from that next time
            _COMPILED[cache_key] = (compiled[0], table.schema(), compiled[2])
        return table

    def save_empty(
        self, name: str, key: tuple[Any, ...], build: Callable[..., ir.Table], **inputs: ir.Table
    ) -> ir.Table:
        """What :meth:`save_query` would save when ``build`` selects no row: an empty table of its schema
        (found once per process, over placeholders, like the SQL), without building, compiling or running
        the query."""
        cache_key = ("schema", build.__module__, build.__qualname__, name, key, _input_schemas(inputs))
        found = _SCHEMAS.get(cache_key)
        if found is None:
            holders = {k: ibis.table(t.schema(), name=_holder(k)) for k, t in inputs.items()}
            found = _SCHEMAS[cache_key] = build(**holders).schema()
        full = f"{self.prefix}_{name}"
        if full not in self.names:
            self.names.append(full)
        return self.wh.create_empty_temp_table(full, found)

    def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):  # a temp table dies with the connection anyway
                self.wh.drop_temp_table(name)
        self.names.clear()
        self._slots.discard(self.slot)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def both_ways(edges: ir.Table) -> ir.Table:
    """Directed ``src -> dst`` pairs in both directions (``src``, ``dst`` columns only)."""
    fwd = edges.select(src=edges.src, dst=edges.dst)
    back = edges.select(src=edges.dst, dst=edges.src)
    return fwd.union(back, distinct=False)


def connected_components(scratch: Scratch, nodes: ir.Table, edges: ir.Table) -> ir.Table:
    """``(node_id, label)`` for every node of ``nodes``; ``label`` is the smallest node id of its component.

    ``edges`` has ``src`` and ``dst`` node ids (undirected). Nodes without edges keep their own id.
    """
    tag = uuid.uuid4().hex[:6]
    e = scratch.save(both_ways(edges), f"cc_edges_{tag}")
    linked = e.select(node_id=e.src).distinct()
    labels = scratch.save(linked.mutate(label=linked.node_id), f"cc_labels_{tag}")
    total = _label_sum(labels)
    for _ in range(MAX_ROUNDS):
        hop = e.join(labels, e.dst == labels.node_id).select(node_id=e.src, label=labels.label)
        best = labels.union(hop, distinct=False).group_by("node_id").agg(label=ibis._.label.min())
        parent = best.view()
        jumped = best.join(parent, best.label == parent.node_id).select(
            node_id=best.node_id, label=ibis.least(best.label, parent.label)
        )
        labels = scratch.save(jumped, f"cc_labels_{tag}")
        new_total = _label_sum(labels)
        if new_total == total:
            break
        total = new_total
    else:
        raise NotConverged(
            f"connected components did not converge in {MAX_ROUNDS} rounds",
            hint="the identity graph has an unusually long chain; report it with `touchpoint profiles stats`",
        )
    rest = nodes.select("node_id").anti_join(labels, "node_id")
    return rest.mutate(label=rest.node_id).union(labels.select("node_id", "label"), distinct=False)


def _label_sum(labels: ir.Table) -> int:
    value = labels.label.sum().to_pyarrow().as_py()
    return 0 if value is None else int(value)


def split_by_seeds(scratch: Scratch, members: ir.Table, edges: ir.Table, seeds: ir.Table) -> ir.Table:
    """Assign each member to its nearest seed within its cluster.

    ``members``: ``(node_id, cluster)``; ``edges``: ``(src, dst)`` between members (only edges whose
    ends share a cluster are followed); ``seeds``: ``(node_id, cluster, seed_rank, label)`` where a
    smaller ``seed_rank`` wins ties and ``label`` names the new cluster (several seeds may share one).
    Returns ``(node_id, label, dist)``; members no seed reaches keep ``label = cluster`` and NULL dist.
    """
    m = members.select("node_id", "cluster")
    both = both_ways(edges)
    a, b = m.view(), m.view()
    inner = both.join(a, both.src == a.node_id).join(b, both.dst == b.node_id)
    tag = uuid.uuid4().hex[:6]
    e = scratch.save(inner.filter(a.cluster == b.cluster).select(src=both.src, dst=both.dst), f"bfs_edges_{tag}")
    # state: per reached node, key = dist * 2^32 + seed_rank (smaller is better)
    state = scratch.save(seeds.select(node_id=seeds.node_id, key=seeds.seed_rank.cast("int64")), f"bfs_state_{tag}")
    signature = _signature(state)
    for _ in range(MAX_ROUNDS):
        hop = e.join(state, e.src == state.node_id).select(node_id=e.dst, key=state.key + _SEED_BITS)
        best = state.union(hop, distinct=False).group_by("node_id").agg(key=ibis._.key.min())
        state = scratch.save(best, f"bfs_state_{tag}")
        new_signature = _signature(state)
        if new_signature == signature:
            break
        signature = new_signature
    else:
        raise NotConverged(f"seeded split did not converge in {MAX_ROUNDS} rounds")
    # decode: which seed (by cluster and seed_rank) each reached node joined
    mm = m.view()
    reached = state.join(mm, state.node_id == mm.node_id).select(
        node_id=state.node_id,
        cluster=mm.cluster,
        seed_rank=(state.key % _SEED_BITS).cast("int64"),
        dist=(state.key // _SEED_BITS).cast("int64"),
    )
    reached = scratch.save(reached, f"bfs_reached_{tag}")
    s = scratch.save(seeds.select("cluster", "seed_rank", "label").distinct(), f"bfs_seeds_{tag}")
    assigned = reached.join(s, [reached.cluster == s.cluster, reached.seed_rank == s.seed_rank]).select(
        reached.node_id, s.label, reached.dist
    )
    rest = m.anti_join(assigned, "node_id")
    return assigned.union(
        rest.select(node_id=rest.node_id, label=rest.cluster, dist=ibis.null("int64")), distinct=False
    )


def _signature(state: ir.Table) -> tuple[int, int]:
    row = state.aggregate(n=state.count(), total=state.key.sum()).to_pyarrow().to_pylist()[0]
    total = row["total"]
    return int(row["n"]), 0 if total is None else int(total)
