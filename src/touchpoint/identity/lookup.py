"""Finding a profile from whatever identifier a person or a system has at hand.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> from touchpoint.identity import rebuild
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"email": "Ann@Example.com"}}])
>>> _ = rebuild(wh)
>>> find_profile(wh, " ANN@example.com")["matched_type"]
'email'
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.identity import store
from touchpoint.identity import tables as T
from touchpoint.identity.extract import normalize_phone
from touchpoint.warehouse import Warehouse


def check_identifier(identifier: str, field: str = "identifier") -> str:
    """Refuse a control character (NUL among them): no stored identifier holds one (the collector
    quarantines them), and the engine's SQL text cannot carry a NUL.

    >>> check_identifier("ann@example.com")
    'ann@example.com'
    >>> try:
    ...     check_identifier("a\\x00b")
    ... except InvalidInput as exc:
    ...     print(exc.message)
    identifier: 'a\\x00b' holds a control character, which no identifier has
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in identifier):
        shown = identifier if len(identifier) <= 100 else identifier[:100] + "..."
        raise InvalidInput(
            f"{field}: {shown!r} holds a control character, which no identifier has",
            hint="send the identifier exactly as stored, without control characters",
        )
    return identifier


def candidates(identifier: str, id_type: str | None, country_code: str | None = None) -> list[str]:
    """The stored forms ``identifier`` may take: as given, as a normalised email, as a phone number."""
    check_identifier(identifier)
    if id_type is not None:
        check_identifier(id_type, "type")
    forms = [identifier]
    text = identifier.strip()
    if text != identifier:
        forms.append(text)
    if "@" in text and id_type in (None, "email"):
        forms.append(text.lower())
    if id_type in (None, "phone") and sum(c.isdigit() for c in text) >= 6:
        phone = normalize_phone(text, country_code)
        if phone:
            forms.append(phone)
    return list(dict.fromkeys(forms))


def find_profile(
    wh: Warehouse, identifier: str, id_type: str | None = None, *, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"profile_id", "matched_type", "matched_value", "redirected_from"}`` for ``identifier``.

    ``identifier`` may also be a profile id, including one that was merged into another (the merge
    log redirects it). With several matches the most trusted identifier type wins. ``state``: the
    identity state (:func:`~touchpoint.identity.store.read_state`) when the caller has read it already.
    """
    if not identifier or not identifier.strip():
        raise InvalidInput("the identifier is empty", hint="give a user id, anonymous id, email, phone or profile id")
    check_identifier(identifier)
    store.require_resolved(wh)
    state = store.read_state(wh) if state is None else state
    cc = (state.get("rules") or {}).get("default_country_code")
    forms = candidates(identifier, id_type, cc)
    if identifier.startswith("prf_"):
        hit = wh.prepared(_holder, identifier).to_pylist()
        if hit:
            return {
                "profile_id": identifier,
                "matched_type": "profile_id",
                "matched_value": identifier,
                "redirected_from": None,
            }
        moved = _redirect(wh, identifier)
        if moved:
            return {
                "profile_id": moved,
                "matched_type": "profile_id",
                "matched_value": identifier,
                "redirected_from": identifier,
            }
    typed = [id_type] if id_type else []
    found = wh.prepared(_best_match, *forms, *typed, key=(len(forms), bool(typed))).to_pylist()
    if not found:
        what = f"{id_type} " if id_type else "identifier "
        raise NotFound(
            f"no profile has the {what}{identifier!r}",
            hint="check the value; events stored since the last build need `touchpoint profiles update`",
        )
    r = found[0]
    return {
        "profile_id": r["profile_id"],
        "matched_type": r["id_type"],
        "matched_value": r["id_value"],
        "redirected_from": None,
    }


def _holder(wh: Warehouse, profile_id: str) -> ir.Table:
    """The profile id if an identifier belongs to it (one row), else no row."""
    nodes = wh.table(T.NODES)
    return nodes.filter(nodes.profile_id == profile_id).select("profile_id").limit(1)


def _best_match(wh: Warehouse, shape: tuple[int, bool], *values: str) -> ir.Table:
    """The most trusted identifier among ``shape[0]`` forms (the values), of the type that follows them
    when ``shape[1]``."""
    forms, id_type = values[: shape[0]], (values[shape[0]] if shape[1] else None)
    nodes = wh.table(T.NODES)
    q = nodes.filter(nodes.id_value.isin(forms))
    if id_type is not None:
        q = q.filter(q.id_type == id_type)
    return q.order_by(["rank", "id_type"]).select("profile_id", "id_type", "id_value").limit(1)


def _redirect(wh: Warehouse, profile_id: str, depth: int = 0) -> str | None:
    """Follow the merge log from a profile id that no longer exists to the one that absorbed it."""
    if depth > 20:
        return None
    log = wh.table(T.MERGE_LOG)
    hits = (
        log.filter(
            log.kind.isin(["auto_merge", "manual_merge", "renamed"])
            & ("," + log.merged_profile_ids + ",").contains("," + profile_id + ",")
        )
        .order_by(log.logged_at.desc())
        .select("profile_id")
        .limit(1)
        .to_pyarrow()
        .to_pylist()
    )
    if not hits:
        return None
    target = hits[0]["profile_id"]
    nodes = wh.table(T.NODES)
    if nodes.filter(nodes.profile_id == target).count().to_pyarrow().as_py():
        return str(target)
    return _redirect(wh, target, depth + 1)
