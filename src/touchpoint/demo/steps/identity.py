"""Identity resolution on the demo shop, checked against the simulator's ground truth.

The simulator records which anonymous ids belong to which customer (``identities.parquet``) and
each customer's email (``customers.parquet``). We resolve every event, build the profiles, and
report pairwise precision and recall of merges over those identifiers, how many
anonymous-then-identified customers ended in one profile, and that the junk id and the shared shop
tablet never merged two customers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from touchpoint import identity, profiles
from touchpoint.demo.truth import CUSTOMERS_FILE, IDENTITIES_FILE
from touchpoint.identity.quality import assignment, merge_quality
from touchpoint.profiles.lookup import stats
from touchpoint.warehouse import Warehouse


def _truth_groups(folder: Path, exclude: set[str]) -> tuple[list[set[tuple[str, str]]], dict[str, list[str]]]:
    """Each person's identifiers: user id, email, anonymous ids (visitors who never identified: alone)."""
    people: dict[str, set[tuple[str, str]]] = {}
    anon_of: dict[str, list[str]] = {}
    singles: list[set[tuple[str, str]]] = []
    for r in pq.read_table(folder / IDENTITIES_FILE).to_pylist():
        anon, uid = r["anonymous_id"], r["user_id"]
        if anon in exclude:
            continue
        if uid is None:
            singles.append({("anonymous_id", anon)})
            continue
        people.setdefault(uid, {("user_id", uid)}).add(("anonymous_id", anon))
        anon_of.setdefault(uid, []).append(anon)
    customers = folder / CUSTOMERS_FILE
    if customers.exists():
        for r in pq.read_table(customers, columns=["user_id", "email"]).to_pylist():
            people.setdefault(r["user_id"], {("user_id", r["user_id"])}).add(("email", r["email"].strip().lower()))
    return [*people.values(), *singles], anon_of


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Resolve identities and build profiles on the demo warehouse; compare with the ground truth."""
    out_dir = Path(out_dir)
    resolved = identity.rebuild(wh)
    as_of = (truth.get("period") or {}).get("end")
    built = profiles.build(wh, as_of=as_of)
    facts = truth.get("identity", {})
    junk = set(facts.get("junk_anonymous_ids") or [])
    shared = facts.get("shared_device_id")
    groups, anon_of = _truth_groups(out_dir, junk | ({shared} if shared else set()))
    found_map = assignment(wh)
    wanted = {item for g in groups for item in g}
    by_profile: dict[str, set[tuple[str, str]]] = {}
    for item, pid in found_map.items():
        if item in wanted:
            by_profile.setdefault(pid, set()).add(item)
    quality = merge_quality(groups, by_profile.values())

    # anonymous-then-identified customers: is every anonymous id in its customer's profile?
    whole = sum(
        1
        for uid, anons in anon_of.items()
        if all(found_map.get(("anonymous_id", a)) == found_map.get(("user_id", uid)) for a in anons)
    )
    # no profile may hold two customers' user ids (the junk id and the shop tablet must not merge them)
    users_per_profile: dict[str, int] = {}
    for (id_type, _), pid in found_map.items():
        if id_type == "user_id":
            users_per_profile[pid] = users_per_profile.get(pid, 0) + 1
    over_merged = sum(1 for n in users_per_profile.values() if n > 1)
    summary = {
        "events": resolved.events,
        "profiles": resolved.profiles,
        "identifiers": resolved.identifiers,
        "refused_links": resolved.refused_links,
        "resolve_seconds": resolved.seconds,
        "profiles_build_seconds": built["seconds"],
        "merge_precision": round(quality["precision"], 4),
        "merge_recall": round(quality["recall"], 4),
        "pairs": {k: quality[k] for k in ("true_pairs", "predicted_pairs", "correct_pairs")},
        "method": quality["method"] + "; identifiers: user ids, emails and anonymous ids from identities.parquet "
        "(the junk id and the shared tablet excluded: they belong to several people)",
        "customers_with_all_devices_in_one_profile": whole,
        "customers_checked": len(anon_of),
        "profiles_holding_two_customers": over_merged,
        "shared_device_profile_users": _shared_users(wh, shared),
        "truth": {k: facts.get(k) for k in ("customers", "anonymous_then_identified", "anonymous_visitors")},
        "stats": stats(wh),
    }
    (out_dir / "identity_report.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _shared_users(wh: Warehouse, shared: str | None) -> int | None:
    """How many user ids sit in the shared device's profile (1 when the limits held)."""
    if not shared:
        return None
    try:
        pid = identity.resolve(wh, shared, "anonymous_id")
    except KeyError:
        return 0
    nodes = wh.table(identity.tables.NODES)
    q = nodes.filter((nodes.profile_id == pid) & (nodes.id_type == "user_id")).count()
    return int(q.to_pyarrow().as_py())


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    return (
        f"{s['profiles']:,} profiles from {s['identifiers']:,} identifiers; merges against the truth: "
        f"precision {s['merge_precision']:.3f}, recall {s['merge_recall']:.3f}"
    )
