"""What the CLI, the HTTP API, jobs and the demo share: resolve identities, then refresh the profiles.

Every change to identities (a rebuild, an incremental update, a manual split or merge) is followed by
rebuilding the ``profiles`` and ``profile_traits`` tables, so profiles never lag behind identities.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}])
>>> out = rebuild(wh)
>>> out["identity"]["profiles"], out["profiles"]["profiles"]
(1, 1)
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint import identity
from touchpoint.errors import InvalidInput
from touchpoint.profiles.build import PROFILES, build
from touchpoint.warehouse import Warehouse


def rules_from_file(path: str | Path | None) -> identity.MergeRules | None:
    """Merge rules from a JSON file (``None`` when no path is given: the saved or default rules)."""
    if path is None:
        return None
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"no merge rules file at {p}", hint="check the --rules path") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{p} is not valid JSON: {exc}", hint="fix the file") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{p} must hold a JSON object of merge rules")
    return identity.MergeRules.from_dict(data)


def rebuild(
    wh: Warehouse, rules: identity.MergeRules | None = None, *, as_of: datetime | str | None = None
) -> dict[str, Any]:
    """Resolve every event from scratch (manual splits and merges are kept), then rebuild the profiles.

    Returns ``{"identity": <resolution summary>, "profiles": <build summary>}``.
    """
    result = identity.rebuild(wh, rules)
    return {"identity": result.to_dict(), "profiles": build(wh, as_of=as_of)}


def update(
    wh: Warehouse, rules: identity.MergeRules | None = None, *, as_of: datetime | str | None = None
) -> dict[str, Any]:
    """Resolve only the events stored since the last run, then refresh the profiles they changed.

    Only those profiles are recomputed from their events when the profiles were built after the last
    change to identities (else, e.g. after a stop between the two steps, every profile is).
    """
    with wh.exclusive(identity.store.SECTION):
        current = _profiles_current(wh)
        result = identity.update(wh, rules)
        if not current or result.changed_profiles is None:
            return {"identity": result.to_dict(), "profiles": build(wh, as_of=as_of)}
        profiles = build(
            wh,
            as_of=as_of,
            only=result.changed_profiles,
            touched=result.touched_profiles,
            new_profiles=result.new_profiles,
            new_events=result.new_events,
        )
        return {"identity": result.to_dict(), "profiles": profiles}


def _profiles_current(wh: Warehouse) -> bool:
    """Whether ``profiles`` were built after identities last changed (so they lag by no update)."""
    changed = identity.store.read_state(wh).get("updated_at")
    p = wh.table(PROFILES)
    built = wh.to_arrow(p.built_at.max()).as_py()
    return changed is not None and built is not None and built >= datetime.fromisoformat(changed)


def split(
    wh: Warehouse, profile: str, identifier: str, id_type: str | None = None, *, note: str | None = None
) -> dict[str, Any]:
    """Undo a bad merge: cut ``identifier`` out of ``profile``, recompute, refresh the profiles."""
    out = identity.split(wh, profile, identifier, id_type, note=note)
    build(wh)
    return out


def merge(wh: Warehouse, first: str, second: str, *, note: str | None = None) -> dict[str, Any]:
    """Merge two profiles (lifting any split between them, else forcing a link), refresh the profiles."""
    out = identity.merge(wh, first, second, note=note)
    build(wh)
    return out
