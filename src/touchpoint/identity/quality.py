"""Looking at a resolution as a whole: who is in which profile, which links were refused, and how
well the partition matches a known truth (pairwise precision and recall of merges).

>>> truth = [{"a", "b", "c"}, {"d"}]
>>> found = [{"a", "b"}, {"c", "d"}]
>>> m = merge_quality(truth, found)
>>> (m["true_pairs"], m["predicted_pairs"], m["correct_pairs"], m["precision"], m["recall"])
(3, 2, 1, 0.5, 0.3333333333333333)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

from touchpoint.identity import tables
from touchpoint.warehouse import Warehouse


def assignment(wh: Warehouse) -> dict[tuple[str, str], str]:
    """Every identifier ``(type, value)`` and its profile id (pulled into Python: for tests and reports)."""
    rows = wh.to_arrow(wh.table(tables.NODES).select("id_type", "id_value", "profile_id")).to_pylist()
    return {(r["id_type"], r["id_value"]): r["profile_id"] for r in rows}


def clusters(wh: Warehouse) -> set[frozenset[tuple[str, str]]]:
    """The partition of identifiers into profiles, as a set of frozensets."""
    groups: dict[str, set[tuple[str, str]]] = {}
    for key, pid in assignment(wh).items():
        groups.setdefault(pid, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def refused_pairs(wh: Warehouse) -> dict[tuple[tuple[str, str], tuple[str, str]], str]:
    """Refused links as ``{((type, value), (type, value)): reason}`` (each pair sorted)."""
    names = {
        r["node_id"]: (r["id_type"], r["id_value"])
        for r in wh.to_arrow(wh.table(tables.NODES).select("node_id", "id_type", "id_value")).to_pylist()
    }
    lk = wh.table(tables.LINKS)
    rows = wh.to_arrow(lk.filter(lk.status == "refused").select("src", "dst", "reason")).to_pylist()
    out = {}
    for r in rows:
        a, b = sorted([names[r["src"]], names[r["dst"]]])
        out[(a, b)] = r["reason"]
    return out


def _pairs(groups: Iterable[Iterable[Hashable]]) -> int:
    return sum(len(g) * (len(g) - 1) // 2 for g in (list(x) for x in groups))


def merge_quality(truth: Iterable[Iterable[Hashable]], found: Iterable[Iterable[Hashable]]) -> dict[str, Any]:
    """Pairwise precision and recall of merges: a pair of items is "merged" when they share a group.

    Precision: of the pairs put together, how many belong together. Recall: of the pairs that
    belong together, how many were put together. Items missing from one side count as singletons.
    Counted in O(items) through the contingency table, not by listing pairs.
    """
    truth_of: dict[Hashable, int] = {}
    for i, group in enumerate(truth):
        for item in group:
            truth_of[item] = i
    found_of: dict[Hashable, int] = {}
    for j, group in enumerate(found):
        for item in group:
            found_of[item] = j
    both = Counter((truth_of[x], found_of[x]) for x in truth_of.keys() & found_of.keys())
    correct = sum(n * (n - 1) // 2 for n in both.values())
    true_sizes = Counter(truth_of.values())
    found_sizes = Counter(found_of.values())
    true_pairs = sum(n * (n - 1) // 2 for n in true_sizes.values())
    predicted = sum(n * (n - 1) // 2 for n in found_sizes.values())
    return {
        "true_pairs": true_pairs,
        "predicted_pairs": predicted,
        "correct_pairs": correct,
        "precision": correct / predicted if predicted else 1.0,
        "recall": correct / true_pairs if true_pairs else 1.0,
        "method": "pairwise: a pair of identifiers counts as merged when they share a profile",
    }
