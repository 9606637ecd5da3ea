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
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from touchpoint.identity.rules import JUNK_EMAILS, JUNK_VALUES, ExternalId, MergeRules


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
        cases.append(((~intl) & (national.length() + len(country_code)).between(8, 15), f"+{country_code}" + national))
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
    """The engine twin of :func:`~touchpoint.identity.rules.is_junk`.

    Cheap first: a value longer than every listed junk value, and not starting like a run of zeros
    or dashes, cannot be junk, so the string functions only run on short or suspicious values.
    """
    words = [*JUNK_VALUES, *extra]
    longest = max(len(w) for w in words) + 2  # room for surrounding spaces
    folded = value.strip().lower()
    # only zeros, dashes, dots, underscores or spaces ("0000", "--", "0.0"): translate deletes them all
    nothing_left = folded.translate("0-_. ", "").length() == 0
    suspicious = (value.length() <= longest) | value.substr(0, 1).isin(["0", "-", "_", ".", " "])
    return ibis.ifelse(suspicious, folded.isin(words) | nothing_left, False)


def blocked_reason(id_type: str, value: ir.StringValue, rules: MergeRules) -> ir.StringValue:
    """Why ``value`` may not link (NULL when it may)."""
    cases: list[tuple[Any, Any]] = [(_junk(value, rules.blocked_values), "blocked value")]
    if id_type == "email":
        cases.append((value.isin([*JUNK_EMAILS, *rules.blocked_emails]), "blocked email"))
    return ibis.cases(*cases, else_=ibis.null(str))


def _mentions(column: Any, word: str) -> ir.BooleanValue:
    """A cheap pre-filter: the raw JSON text contains ``word`` (skips parsing JSON that cannot match)."""
    return ibis.coalesce(column.cast("string").contains(word), False)


def column_ids(t: ir.Table, rules: MergeRules) -> list[tuple[str, ir.StringValue]]:
    """The identifiers held in plain columns, most trusted first: ``(type, value)`` (raw, may be junk)."""
    is_alias = (t.type == "alias") & (t.previous_id != ibis.coalesce(t.anonymous_id, ""))
    cols: list[tuple[str, ir.StringValue]] = [
        ("user_id", t.user_id),
        ("email", t.email),
        ("anonymous_id", t.anonymous_id),
        ("anonymous_id", ibis.ifelse(is_alias, t.previous_id, ibis.null(str))),
    ]
    order = {id(c): i for i, c in enumerate(cols)}
    return sorted(cols, key=lambda c: (rules.rank(c[0]), order[id(c)]))


def json_ids(t: ir.Table, rules: MergeRules) -> ir.Table:
    """Identifiers read from JSON (phone, configured external ids, Segment's ``context.externalIds``),
    one row each: ``message_id, timestamp, id_type, id_value, rank, blocked``. Only events whose JSON
    mentions the key are parsed."""
    keep = {"message_id": t.message_id, "timestamp": t.timestamp}
    parts: list[ir.Table] = []
    # JSON is only parsed inside CASE WHEN <its text mentions the key>: the engine may evaluate
    # filters in any order, but a CASE branch only runs for the rows that reach it
    mentions_phone = _mentions(t.traits, "phone") | _mentions(t.context, "phone")
    phone_events = t.filter(mentions_phone)
    raw = phone_events.select(
        **{k: phone_events[k] for k in keep},
        raw=ibis.ifelse(
            mentions_phone,
            ibis.coalesce(
                _json_text(phone_events.traits["phone"]), _json_text(phone_events.context["traits"]["phone"])
            ),
            ibis.null(str),
        ),
    )
    parts.append(
        raw.select(*keep, id_type=ibis.literal("phone"), id_value=phone_expr(raw.raw, rules.default_country_code))
    )
    for ext in rules.external_ids:
        pre = _external_mentioned(t, ext)
        sub = t.filter(pre)
        value = ibis.ifelse(pre, _external(sub, ext), ibis.null(str))
        parts.append(sub.select(**{k: sub[k] for k in keep}, id_type=ibis.literal(ext.type), id_value=value))
    if rules.segment_external_ids:
        seg = _segment_external(t, rules, keep)
        parts.append(seg.select(*keep, "id_type", "id_value"))
    rows = ibis.union(*parts, distinct=False)
    rows = rows.filter(rows.id_value.notnull())
    ranked = ibis.cases(
        *[(rows.id_type == name, ibis.literal(rules.rank(name), "int32")) for name in rules.types()],
        else_=ibis.literal(rules.rank("external"), "int32"),
    )
    blocked = ibis.cases((_junk(rows.id_value, rules.blocked_values), "blocked value"), else_=ibis.null(str))
    return rows.mutate(rank=ranked, blocked=blocked)


def _external_mentioned(t: ir.Table, ext: Any) -> ir.BooleanValue:
    """:func:`json_ids`'s pre-filter for a configured external id."""
    key = ext.path.rsplit(".", 1)[-1]
    root = t[ext.path.split(".", 1)[0]]
    return _mentions(root, key) | (_mentions(t.context, key) if ext.path.startswith("traits.") else False)


def json_mentioned(t: ir.Table, rules: MergeRules) -> ir.BooleanValue:
    """Whether a row's JSON mentions a key :func:`json_ids` reads (the union of its pre-filters): where no
    row does, :func:`json_ids` is empty, and the incremental update skips its query (whose planning alone,
    regular expressions and JSON paths, cost about 50 ms of CPU a run for a handful of events)."""
    pre = _mentions(t.traits, "phone") | _mentions(t.context, "phone")
    for ext in rules.external_ids:
        pre = pre | _external_mentioned(t, ext)
    if rules.segment_external_ids:
        pre = pre | _mentions(t.context, "externalIds")
    return pre


def _segment_external(t: ir.Table, rules: MergeRules, keep: dict[str, Any]) -> ir.Table:
    """Segment's ``context.externalIds`` (``[{"id", "type", ...}]``), one row per entry."""
    pre = _mentions(t.context, "externalIds")
    sub = t.filter(pre)
    arr = sub.select(
        **{k: sub[k] for k in keep},
        ext=ibis.ifelse(pre, sub.context["externalIds"].array, ibis.null("array<json>")),
    )
    arr = arr.filter(arr.ext.length() > 0).unnest("ext")
    id_type = arr.ext["type"].str.lower().re_replace(r"[^a-z0-9_]", "_")
    rows = arr.select(*keep, id_type=id_type, id_value=_json_text(arr.ext["id"]))
    return rows.filter(rows.id_type.notnull() & (rows.id_type != ""))


def identifiers(events: ir.Table, rules: MergeRules) -> tuple[ir.Table, list[str], ir.Table]:
    """The identifiers of ``events`` in the two shapes resolution uses.

    ``wide``: ``message_id, timestamp, id_0 ... id_k``: the plain-column identifiers
    side by side, blocked values NULL; ``types``: the type of each ``id_i``, most trusted first;
    ``extra``: the JSON identifiers in long form (:func:`json_ids`, blocked ones removed).
    Materialise both once; :func:`node_stats`, :func:`pair_stats` and :func:`centers` read them.
    """
    cols = column_ids(events, rules)
    wide = events.select(
        "message_id",
        "timestamp",
        **{
            f"id_{i}": ibis.ifelse(blocked_reason(id_type, value, rules).isnull(), value, ibis.null(str))
            for i, (id_type, value) in enumerate(cols)
        },
    )
    extra = json_ids(events, rules)
    extra = extra.filter(extra.blocked.isnull()).drop("blocked")
    return wide, [c[0] for c in cols], extra


def observations(events: ir.Table, rules: MergeRules) -> ir.Table:
    """One row per (event, identifier): ``message_id, timestamp, id_type, id_value, rank, blocked``
    (``blocked`` is the refusal reason for a junk value, else NULL). For reports; resolution uses
    the cheaper :func:`identifiers`."""
    t = events
    keep = {"message_id": t.message_id, "timestamp": t.timestamp}
    parts = [
        t.select(
            **keep,
            id_type=ibis.literal(id_type),
            id_value=value,
            rank=ibis.literal(rules.rank(id_type), "int32"),
            blocked=blocked_reason(id_type, value, rules),
        )
        for id_type, value in column_ids(t, rules)
    ]
    parts.append(json_ids(t, rules).select("message_id", "timestamp", "id_type", "id_value", "rank", "blocked"))
    obs = ibis.union(*parts, distinct=False)
    return obs.filter(obs.id_value.notnull())


def _ts(value: Any) -> Any:
    """Nullable timestamps everywhere, so unions of events and stored rows have one schema."""
    return value.cast(dt.Timestamp(nullable=True))


def _long(wide: ir.Table, types: list[str], rules: MergeRules) -> ir.Table:
    parts = [
        wide.filter(wide[f"id_{i}"].notnull()).select(
            message_id=wide.message_id.cast(dt.String(nullable=True)),
            timestamp=_ts(wide.timestamp),
            id_type=ibis.literal(id_type),
            id_value=wide[f"id_{i}"],
            rank=ibis.literal(rules.rank(id_type), "int32"),
        )
        for i, id_type in enumerate(types)
    ]
    return ibis.union(*parts, distinct=False)


def node_stats(wide: ir.Table, types: list[str], extra: ir.Table, rules: MergeRules) -> ir.Table:
    """Every usable identifier: ``id_type, id_value, rank, first_seen, last_seen, events``."""
    long = _long(wide, types, rules).drop("message_id")
    long = long.union(
        extra.select(timestamp=_ts(extra.timestamp), id_type=extra.id_type, id_value=extra.id_value, rank=extra.rank),
        distinct=False,
    )
    return long.group_by(["id_type", "id_value"]).agg(
        rank=long.rank.min(),
        first_seen=long.timestamp.min(),
        last_seen=long.timestamp.max(),
        events=long.count(),
    )


def _wide_center(wide: ir.Table, types: list[str]) -> tuple[ir.StringValue, ir.StringValue]:
    cols = [wide[f"id_{i}"] for i in range(len(types))]
    center_type = ibis.cases(
        *[(c.notnull(), ibis.literal(ty)) for ty, c in zip(types, cols, strict=True)], else_=ibis.null(str)
    )
    return center_type, ibis.coalesce(*cols)


def _json_side(wide: ir.Table, types: list[str], extra: ir.Table, rules: MergeRules) -> tuple[ir.Table, ir.Table]:
    """For events with JSON identifiers: every identifier in long form, and each event's center."""
    with_json = extra.select("message_id").distinct()
    long = _long(wide.semi_join(with_json, "message_id"), types, rules)
    ext = extra.select(
        message_id=extra.message_id.cast(dt.String(nullable=True)),
        timestamp=_ts(extra.timestamp),
        id_type=extra.id_type,
        id_value=extra.id_value,
        rank=extra.rank,
    )
    long = long.union(ext, distinct=False)
    key = long.rank.cast("string").lpad(5, "0") + "|" + long.id_type + "|" + long.id_value
    center = long.group_by("message_id").agg(
        center_type=long.id_type.argmin(key), center_value=long.id_value.argmin(key)
    )
    return long, center


def centers(wide: ir.Table, types: list[str], extra: ir.Table, rules: MergeRules) -> ir.Table:
    """``message_id, center_type, center_value``: each event's most trusted usable identifier (the
    profile it belongs to). Events whose identifiers are all blocked have NULLs."""
    with_json = extra.select("message_id").distinct()
    plain = wide.anti_join(with_json, "message_id")
    ct, cv = _wide_center(plain, types)
    plain_c = plain.select(message_id=plain.message_id.cast(dt.String(nullable=True)), center_type=ct, center_value=cv)
    _, json_c = _json_side(wide, types, extra, rules)
    return plain_c.union(json_c, distinct=False)


def pair_stats(wide: ir.Table, types: list[str], extra: ir.Table, rules: MergeRules) -> ir.Table:
    """Pairs of identifiers seen on one event, as a star from each event's center to its other
    identifiers: ``a_type, a_value, b_type, b_value, message_id, first_seen, last_seen, events``."""
    with_json = extra.select("message_id").distinct()
    plain = wide.anti_join(with_json, "message_id")
    center_type, center_value = _wide_center(plain, types)
    parts = []
    for i, id_type in enumerate(types):
        if i == 0:
            continue
        value = plain[f"id_{i}"]
        earlier = ibis.or_(*[plain[f"id_{j}"].notnull() for j in range(i)])
        parts.append(
            plain.filter(value.notnull() & earlier).select(
                message_id=plain.message_id.cast(dt.String(nullable=True)),
                timestamp=_ts(plain.timestamp),
                a_type=center_type,
                a_value=center_value,
                b_type=ibis.literal(id_type),
                b_value=value,
            )
        )
    long, center = _json_side(wide, types, extra, rules)
    j = long.join(center, "message_id")
    parts.append(
        j.select(
            "message_id",
            "timestamp",
            a_type=j.center_type,
            a_value=j.center_value,
            b_type=j.id_type,
            b_value=j.id_value,
        )
    )
    pairs = ibis.union(*parts, distinct=False)
    pairs = pairs.filter((pairs.a_type != pairs.b_type) | (pairs.a_value != pairs.b_value))
    return pairs.group_by(["a_type", "a_value", "b_type", "b_value"]).agg(
        message_id=pairs.message_id.argmin(pairs.timestamp),
        first_seen=pairs.timestamp.min(),
        last_seen=pairs.timestamp.max(),
        events=pairs.count(),
    )
