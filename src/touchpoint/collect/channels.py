"""Marketing channels from UTM parameters, the referrer and ad click ids.

A channel rule set is an ordered list of :class:`ChannelRule`; the first rule that matches a
session's landing event names its channel. A rule matches when *any* of its conditions holds,
and a condition holds when *every* field it names matches its regular expression (searched,
case-insensitive: values are lower-cased before matching, so write patterns in lower case).

Fields a condition can test:

``utm_source``, ``utm_medium``, ``utm_campaign``, ``utm_term``, ``utm_content``
    as stored on the event (``context.campaign`` or the URL's ``utm_*`` parameters);
``referrer_host``
    the referrer's host name, or nothing when there is no referrer or it is the site itself;
``click_id``
    the name of the first ad click id found in the URL's query string (``gclid``, ``fbclid`` ...);
``url``, ``path``
    the page as stored.

A field that is missing never matches, except with the special pattern ``"^$"`` which matches
a missing or empty value. A rule with no conditions matches everything (a catch-all).

The same rules compile to an Ibis expression (:func:`channel_expr`, runs in the warehouse) and
to a Python function (:func:`classify`), and both give the same answer.

>>> classify({"utm_source": "google", "utm_medium": "cpc"})
'paid_search'
>>> classify({"referrer_host": "www.bing.com"})
'organic_search'
>>> classify({})
'direct'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput, NotFound

FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer_host",
    "click_id",
    "url",
    "path",
)
CLICK_IDS = ("gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "ttclid", "twclid", "li_fat_id")
_CLICK_ID_RE = r"[?&](" + "|".join(CLICK_IDS) + r")="
_HOST_RE = r"^[a-z][a-z0-9+.\-]*://([^/:?#@]+)"

SEARCH = r"(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|search\.brave)\."
SEARCH_SOURCE = r"^(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|brave)$"
SOCIAL = (
    r"(^|\.)(facebook|fb|instagram|linkedin|lnkd|twitter|x|t|pinterest|reddit|tiktok|youtube|snapchat"
    r"|threads|mastodon|bsky|whatsapp|vk|xing)\.(com|co|net|in|social|app|me|ru)$"
)
SOCIAL_SOURCE = (
    r"^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat"
    r"|threads|mastodon|bluesky|whatsapp)$"
)
PAID_MEDIUM = r"^(cpc|ppc|cpm|cpv|cpa|paid.*|.*_paid|retargeting|sem|ad|ads)$"


@dataclass(frozen=True)
class ChannelRule:
    """One channel and the conditions (any of them) under which a session belongs to it.

    >>> rule = ChannelRule("email", [{"utm_medium": "^e-?mail$"}])
    >>> rule.matches({"utm_medium": "Email"})
    True
    """

    channel: str
    any: Sequence[Mapping[str, str]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.channel, str) or not self.channel.strip():
            raise InvalidInput(
                f"channel rule has no channel name ({self.channel!r})",
                hint="give every rule a 'channel' such as 'paid_search'",
            )
        conditions = tuple(dict(c) for c in self.any)
        for cond in conditions:
            for name, pattern in cond.items():
                if name not in FIELDS:
                    raise InvalidInput(
                        f"channel rule {self.channel!r} tests unknown field {name!r}",
                        hint=f"use one of: {', '.join(FIELDS)}",
                    )
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    raise InvalidInput(
                        f"channel rule {self.channel!r}: pattern {pattern!r} for {name} is not a regular "
                        f"expression ({exc})",
                        hint="fix the pattern; values are lower-cased before matching",
                    ) from None
        object.__setattr__(self, "any", conditions)

    def matches(self, values: Mapping[str, Any]) -> bool:
        if not self.any:
            return True
        return any(all(_match(values.get(k), p) for k, p in cond.items()) for cond in self.any)

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "any": [dict(c) for c in self.any]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelRule:
        if not isinstance(data, Mapping) or "channel" not in data:
            raise InvalidInput(
                f"channel rule {data!r} has no 'channel'",
                hint='write rules as {"channel": "email", "any": [{"utm_medium": "^email$"}]}',
            )
        conditions = data.get("any", [])
        if isinstance(conditions, Mapping):
            conditions = [conditions]
        return cls(str(data["channel"]), tuple(conditions))


def _match(value: Any, pattern: str) -> bool:
    if pattern == "^$":
        return value is None or value == ""
    if value is None or value == "":
        return False
    return re.search(pattern, str(value).lower()) is not None


DEFAULT_RULES: tuple[ChannelRule, ...] = (
    ChannelRule("video", [{"utm_medium": r"^(video|paid[-_ ]?video|cpv|olv|ctv)$"}]),
    ChannelRule(
        "paid_social",
        [
            {"utm_source": SOCIAL_SOURCE, "utm_medium": PAID_MEDIUM},
            {"utm_medium": r"^(paid[-_ ]?social|social[-_ ]?paid|social[-_ ]?ads?)$"},
            {"click_id": "^(ttclid|twclid|li_fat_id)$", "utm_medium": PAID_MEDIUM},
        ],
    ),
    ChannelRule(
        "paid_search",
        [
            {"click_id": "^(gclid|gbraid|wbraid|msclkid)$"},
            {"utm_medium": r"^(cpc|ppc|sem|paid[-_ ]?search|search[-_ ]?ads?)$"},
        ],
    ),
    ChannelRule(
        "display",
        [
            {"utm_medium": r"^(display|banner|cpm|expandable|interstitial|programmatic|native)$"},
            {"click_id": "^dclid$"},
        ],
    ),
    ChannelRule(
        "email",
        [{"utm_medium": r"^(e[-_ ]?mail|newsletter)$"}, {"utm_source": r"^(e[-_ ]?mail|newsletter)$"}],
    ),
    ChannelRule("affiliate", [{"utm_medium": r"^(affiliate|affiliates|partner)$"}]),
    ChannelRule(
        "organic_search",
        [
            {"utm_medium": "^organic$"},
            {"utm_source": SEARCH_SOURCE, "utm_medium": "^$"},
            {"referrer_host": SEARCH, "utm_medium": "^$"},
        ],
    ),
    ChannelRule(
        "organic_social",
        [
            {"utm_medium": r"^(social|social[-_ ]?network|social[-_ ]?media|sm|organic[-_ ]?social)$"},
            {"utm_source": SOCIAL_SOURCE},
            {"referrer_host": SOCIAL},
            {"click_id": "^fbclid$"},
        ],
    ),
    ChannelRule("referral", [{"utm_medium": "^referral$"}, {"referrer_host": "."}]),
    ChannelRule("direct", [{"utm_source": "^$", "utm_medium": "^$", "referrer_host": "^$"}]),
    ChannelRule("other", []),
)
"""The default rule set, close to Google Analytics 4's default channel group."""


def rules_from(config: Iterable[Mapping[str, Any] | ChannelRule] | None) -> tuple[ChannelRule, ...]:
    """Rules from configuration (a list of ``{"channel": ..., "any": [...]}``), or the defaults.

    >>> rules_from([{"channel": "tv", "any": [{"utm_source": "^tv$"}]}])[0].channel
    'tv'
    """
    if config is None:
        return DEFAULT_RULES
    rules = tuple(r if isinstance(r, ChannelRule) else ChannelRule.from_dict(r) for r in config)
    if not rules:
        raise InvalidInput("the channel rule list is empty", hint="omit it to use the default rules")
    return rules


def load_rules(path: str | Path) -> tuple[ChannelRule, ...]:
    """Channel rules from a JSON or TOML file: a list of rules, or ``{"rules": [...]}`` /
    ``[[rules]]`` tables, each ``{"channel": ..., "any": [{field: pattern, ...}, ...]}``."""
    import json
    import tomllib

    p = Path(path)
    if not p.exists():
        raise NotFound(f"channel rules file {str(p)!r} does not exist", hint="check the path")
    try:
        text = p.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"channel rules file {str(p)!r} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}",
            hint="write a list of {channel, any} rules as JSON, or [[rules]] tables in TOML",
        ) from None
    if isinstance(data, Mapping):
        data = data.get("rules", data.get("channel_rules"))
    if not isinstance(data, list):
        raise InvalidInput(
            f"channel rules file {str(p)!r} has no list of rules", hint="put the rules under a 'rules' key"
        )
    return rules_from(data)


def classify(values: Mapping[str, Any], rules: Sequence[ChannelRule] | None = None) -> str:
    """The channel of one landing event given its field values (missing keys count as empty)."""
    for rule in rules or DEFAULT_RULES:
        if rule.matches(values):
            return rule.channel
    return "other"


def landing_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """``referrer_host`` and ``click_id`` derived from ``referrer`` and ``url`` the way the warehouse does."""
    out = dict(values)
    url = (values.get("url") or "").lower()
    ref = (values.get("referrer") or "").lower()
    host = re.search(_HOST_RE, ref)
    own = re.search(_HOST_RE, url)
    ref_host = host.group(1) if host else None
    if ref_host and own and own.group(1) == ref_host:
        ref_host = None
    click = re.search(_CLICK_ID_RE, url)
    out["referrer_host"] = ref_host
    out["click_id"] = click.group(1) if click else None
    return out


# -- Ibis -------------------------------------------------------------------------------------------
def _nonempty(expr: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(expr == "", ibis.null("string"), expr)


def field_exprs(t: ir.Table) -> dict[str, ir.StringValue]:
    """The rule fields as lower-cased Ibis string expressions over an ``events``-shaped table."""
    url = t.url.lower()
    ref = t.referrer.lower()
    ref_host = _nonempty(ref.re_extract(_HOST_RE, 1))
    own_host = _nonempty(url.re_extract(_HOST_RE, 1))
    ref_host = ibis.ifelse(own_host.notnull() & (ref_host == own_host), ibis.null("string"), ref_host)
    out: dict[str, ir.StringValue] = {k: _nonempty(t[k].lower()) for k in FIELDS[:5]}
    out["referrer_host"] = ref_host
    out["click_id"] = _nonempty(url.re_extract(_CLICK_ID_RE, 1))
    out["url"] = _nonempty(url)
    out["path"] = _nonempty(t.path.lower())
    return out


def _condition(fields: Mapping[str, ir.StringValue], cond: Mapping[str, str]) -> ir.BooleanValue:
    parts = []
    for name, pattern in cond.items():
        value = fields[name]
        if pattern == "^$":
            parts.append(value.isnull())
        else:
            parts.append(value.notnull() & value.re_search(pattern).fill_null(False))
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def channel_expr(t: ir.Table, rules: Sequence[ChannelRule] | None = None) -> ir.StringValue:
    """An Ibis expression naming the channel of each row of an ``events``-shaped table.

    >>> from touchpoint.journeys.frames import events_table
    >>> t = events_table([{"url": "https://shop.example/?gclid=1"}])
    >>> t.select(ch=channel_expr(t)).to_pyarrow().column("ch").to_pylist()
    ['paid_search']
    """
    fields = field_exprs(t)
    case = ibis.cases(
        *[
            (
                _any([_condition(fields, c) for c in rule.any]) if rule.any else ibis.literal(True),
                rule.channel,
            )
            for rule in (rules or DEFAULT_RULES)
        ],
        else_="other",
    )
    return case


def with_channel(t: ir.Table, rules: Sequence[ChannelRule] | None = None, name: str = "channel") -> ir.Table:
    """``t`` with a ``name`` column holding the channel; the rule fields are computed once per row.

    Equivalent to ``t.mutate(channel=channel_expr(t, rules))`` but the lower-casing and the
    referrer-host and click-id extraction run once, not once per rule that tests them.
    """
    fields = field_exprs(t)
    staged = t.mutate(**{f"tp_f_{k}": v for k, v in fields.items()})
    cols = {k: staged[f"tp_f_{k}"] for k in fields}
    case = ibis.cases(
        *[
            (_any([_condition(cols, c) for c in rule.any]) if rule.any else ibis.literal(True), rule.channel)
            for rule in (rules or DEFAULT_RULES)
        ],
        else_="other",
    )
    # select rather than drop: Ibis renders drop() as EXCLUDE in set order, which varies per process
    return staged.mutate(**{name: case}).select(*[c for c in t.columns if c != name], name)


def _any(parts: list[ir.BooleanValue]) -> ir.BooleanValue:
    out = parts[0]
    for p in parts[1:]:
        out = out | p
    return out
