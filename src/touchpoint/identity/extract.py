"""Identifiers carried by events, as Ibis expressions: one row per (event, identifier).

Every event yields its ``user_id``, its ``anonymous_id`` (and an alias call's ``previous_id``,
typed as an anonymous id), its normalised ``email``, its phone (``traits.phone`` or
``context.traits.phone``, in E.164 where parseable) and the external ids the rules name. Values on
the block list are kept, flagged with the reason, so the refusal is visible; they never link.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "identify", "userId": "u1", "anonymousId": "anonymous",
...                          "traits": {"email": "A@B.com", "phone": "+44 20 7946 0958"}}])
>>> rows = wh.to_arrow(observations(wh.table("events"), MergeRules()).order_by("rank"))
>>> [(r["id_type"], r["id_value"], r["blocked"]) for r in rows.to_pylist()]  # doctest: +NORMALIZE_WHITESPACE
[('user_id', 'u1', None), ('email', 'a@b.com', None), ('phone', '+442079460958', None),
 ('anonymous_id', 'anonymous', 'blocked value')]
"""

from __future__ import annotations

import re
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.identity.rules import JUNK_PATTERN, JUNK_VALUES, ExternalId, MergeRules

OBSERVATION_COLUMNS = ("message_id", "id_type", "id_value", "rank", "timestamp", "received_at", "blocked")


def phone_expr(raw: ir.StringValue, country_code: str | None = None) -> ir.StringValue:
    """E.164 (``+4420...``) when the number carries its country code (``+``/``00``) or one is configured;
    otherwise its digits; NULL when it has fewer than 6 digits."""
    text = raw.replace("(0)", "").strip()
    digits = text.re_replace(r"[^0-9]", "")
    double_zero = text.startswith("00")
    intl = text.startswith("+") | double_zero
    intl_digits = ibis.ifelse(double_zero, digits.substr(2), digits)
    n = digits.length()
    cases: list[tuple[Any, Any]] = [
        (n < 6, ibis.null(str)),
        (intl & intl_digits.length().between(8, 15), "+" + intl_digits),
    ]
    if country_code:
        national = ibis.ifelse(digits.startswith("0"), digits.substr(1), digits)
        cases.append(
            ((~intl) & (national.length() + len(country_code)).between(8, 15), f"+{country_code}" + national)
        )
    return ibis.cases(*cases, else_=intl_digits)


def normalize_phone(raw: str, country_code: str | None = None) -> str | None:
    """The Python twin of :func:`phone_expr`, for looking a profile up by phone.

    >>> normalize_phone("+44 (0)20 7946-0958"), normalize_phone("020 7946 0958", "44"), normalize_phone("12")
    ('+442079460958', '+442079460958', None)
    """
    text = raw.replace("(0)", "").strip()
    digits = re.sub(r"[^0-9]", "", text)
    intl = text.startswith(("+", "00"))
    intl_digits = digits[2:] if text.startswith("00") else digits
    if len(digits) < 6:
        return None
    if intl and 8 <= len(intl_digits) <= 15:
        return "+" + intl_digits
    if country_code and not intl:
        national = digits[1:] if digits.startswith("0") else digits
        if 8 <= len(national) + len(country_code) <= 15:
            return f"+{country_code}{national}"
    return intl_digits


def _json_text(value: Any) -> ir.StringValue:
    """A JSON scalar as text: strings as they are, whole numbers as digits, anything else NULL."""
    return ibis.coalesce(value.str, value.int.cast("string"))


def _path(t: ir.Table, path: str) -> Any:
    root, *keys = path.split(".")
    value: Any = t[root]
    for key in keys:
        value = value[key]
    return value


def _external(t: ir.Table, ext: ExternalId) -> ir.StringValue:
    value = _json_text(_path(t, ext.path))
    if ext.path.startswith("traits."):
        value = ibis.coalesce(value, _json_text(_path(t, "context." + ext.path)))
    return value


def _junk(value: ir.StringValue, extra: tuple[str, ...]) -> ir.BooleanValue:
    folded = value.strip().lower()
    return folded.isin(list(JUNK_VALUES) + list(extra)) | folded.re_search(JUNK_PATTERN)


def observations(events: ir.Table, rules: MergeRules) -> ir.Table:
    """One row per (event, identifier): ``message_id, id_type, id_value, rank, timestamp,
    received_at, blocked`` (``blocked`` is the refusal reason for a junk value, else NULL)."""
    t = events
    base = {"message_id": t.message_id, "timestamp": t.timestamp, "received_at": t.received_at}
    parts: list[ir.Table] = []

    def add(id_type: str, value: ir.StringValue, source: ir.Table = t, extra: tuple[str, ...] = ()) -> None:
        cols = {k: source[k] for k in base}
        part = source.select(
            **cols,
            id_type=ibis.literal(id_type),
            id_value=value,
            rank=ibis.literal(rules.rank(id_type), "int32"),
        ).filter(lambda p: p.id_value.notnull())
        parts.append(part)

    add("user_id", t.user_id)
    add("anonymous_id", t.anonymous_id)
    is_alias = (t.type == "alias") & (t.previous_id != ibis.coalesce(t.anonymous_id, ""))
    add("anonymous_id", ibis.ifelse(is_alias, t.previous_id, ibis.null(str)))
    add("email", t.email)
    phone_raw = ibis.coalesce(_json_text(t.traits["phone"]), _json_text(t.context["traits"]["phone"]))
    add("phone", phone_expr(phone_raw, rules.default_country_code))
    for ext in rules.external_ids:
        add(ext.type, _external(t, ext))
    obs = ibis.union(*parts, distinct=False)

    if rules.segment_external_ids:
        # Segment's context.externalIds: [{"id": ..., "type": ..., "collection": ..., "encoding": ...}]
        arr = t.filter(t.context["externalIds"].array.length() > 0).select(
            **{k: t[k] for k in base}, ext=t.context["externalIds"].array
        )
        arr = arr.unnest("ext")
        id_type = arr.ext["type"].str.lower().re_replace(r"[^a-z0-9_]", "_")
        ranked = ibis.cases(
            *[(id_type == name, ibis.literal(rules.rank(name), "int32")) for name in rules.types()],
            else_=ibis.literal(rules.rank("external"), "int32"),
        )
        ext_rows = arr.select(
            **{k: arr[k] for k in base},
            id_type=id_type,
            id_value=_json_text(arr.ext["id"]),
            rank=ranked,
        ).filter(lambda p: p.id_value.notnull() & p.id_type.notnull() & (p.id_type != ""))
        obs = obs.union(ext_rows, distinct=False)

    blocked = ibis.cases(
        (_junk(obs.id_value, rules.blocked_values), "blocked value"),
        ((obs.id_type == "email") & obs.id_value.isin(list(rules.blocked_emails) or [""]), "blocked email"),
        else_=ibis.null(str),
    )
    return obs.mutate(blocked=blocked).select(*OBSERVATION_COLUMNS)
