"""Pacing: frequency caps, quiet hours and the global control group, checked by the sender.

The sender asks a :class:`Pacer` about each claimed row before sending it (after consent and the goal):

* **Global control.** A share of all profiles (``automations_global_control``, default 0: off) is never
  contacted by any automation. Membership is the experiments' hash bucket of ``automations:global_control``
  and the profile id, so it is sticky and independent of every automation's own holdout. The decision
  records such a profile's entry with ``arm = global_control`` and writes no outbox row; a row decided
  before the profile fell in the group (the share was raised) is ``suppressed`` at send time.
* **Quiet hours** (``automations_quiet_hours``, e.g. ``"21:00-08:00"``; off by default) in the recipient's
  time zone (:mod:`touchpoint.automations.zones`: the ``timezone`` trait, else ``context.timezone`` of
  their latest event, else ``default_timezone``). A message due inside the window is ``held`` until the
  window ends, plus a deterministic jitter of up to ``automations_quiet_hours_spread`` seconds taken from
  the outbox id (so a night's messages do not all leave at 08:00:00); ``held_until`` and ``pacing``
  record it on the row.
* **Frequency caps** (``automations_frequency_caps``, default ``["email:3/7d"]``): at most N messages per
  channel per contact in any rolling window. The count is of messages ``sent`` in the window (and those sent
  earlier in this run); a message over a cap is ``capped`` (final, with the cap in ``pacing``): it is not
  sent later, when its moment has passed.

Transactional messages (the purpose ``transactional``: receipts, a CRM hand-off) are exempt from caps and
quiet hours, and do not count towards a cap. Webhooks are not held by quiet hours (they go to machines),
but a cap may name them (``"webhook:10/1d"``).

>>> parse_cap("email:3/7d")
Cap(channel='email', limit=3, seconds=604800.0, text='email:3/7d')
>>> q = QuietHours(time(21), time(8), spread=600.0)
>>> key = "12644f6f6433a4268c6fb7b5"  # an outbox id: its jitter is 23 s
>>> q.release(datetime(2026, 3, 28, 23, 30), ZoneInfo("Europe/Berlin"), key)  # 00:30 local, the night DST begins
datetime.datetime(2026, 3, 29, 6, 0, 23)
>>> q.release(datetime(2026, 3, 29, 12, 0), ZoneInfo("Europe/Berlin"), key) is None  # 14:00 local
True
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa

from touchpoint.automations.zones import default_zone, recipient_zones
from touchpoint.experiments.assignment import bucket
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.prepared import joined, listed

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings

CONTROL_KEY = "automations:global_control"
CONTROL_ARM = "global_control"
TRANSACTIONAL = "transactional"
CAP = re.compile(r"^(email|webhook):([1-9][0-9]{0,5})/([1-9][0-9]{0,4})([mhd])$")
UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0}
QUIET = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")
QUIET_CHANNELS = ("email",)


# -- the global control group -----------------------------------------------------------------------------
def in_control(profile_id: str, share: float) -> bool:
    """Is the profile in the global control group of this ``share``? (sticky: a hash bucket)"""
    return share > 0 and bucket(CONTROL_KEY, profile_id) < share


def control_share(settings: Settings | None) -> float:
    return float(settings.automations_global_control) if settings is not None else 0.0


# -- caps ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cap:
    channel: str
    limit: int
    seconds: float
    text: str


def parse_cap(text: str) -> Cap:
    """``CHANNEL:N/PERIOD`` (period ``30m``, ``24h``, ``7d``), e.g. ``email:3/7d``."""
    m = CAP.match(text.strip())
    if m is None:
        raise ValueError(f"frequency cap {text!r} is not CHANNEL:N/PERIOD; use e.g. 'email:3/7d' or 'webhook:10/24h'")
    return Cap(m[1], int(m[2]), int(m[3]) * UNITS[m[4]], text.strip())


def caps(settings: Settings) -> list[Cap]:
    return [parse_cap(c) for c in settings.automations_frequency_caps]


# -- quiet hours -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily window of local wall-clock time, ``start`` up to (not including) ``end``; it may span midnight."""

    start: time
    end: time
    spread: float = 600.0  # seconds over which a held night's messages are released

    @classmethod
    def parse(cls, text: str, spread: float = 600.0) -> QuietHours:
        m = QUIET.match(text.strip())
        if m is None:
            raise ValueError(f"quiet hours {text!r} are not HH:MM-HH:MM; use e.g. '21:00-08:00'")
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
        if start == end:
            raise ValueError(f"quiet hours {text!r} start and end at the same time; leave the setting unset for none")
        return cls(start, end, spread)

    def inside(self, local: time) -> bool:
        """Is this wall-clock time quiet?"""
        local = local.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def jitter(self, key: str) -> float:
        """Seconds after the window's end a held message leaves: from its key, the same on every run."""
        if self.spread <= 0:
            return 0.0
        return float(int(key[:8], 16) % int(self.spread)) if _hex(key) else 0.0

    def release(self, at: datetime, tz: ZoneInfo, key: str) -> datetime | None:
        """When a message due at ``at`` (naive UTC) may leave: ``None`` now (outside quiet hours), else the
        window's end in ``tz`` (the first wall-clock instant at or after it that exists, across DST changes)
        plus the key's jitter, as naive UTC."""
        local = at.replace(tzinfo=UTC).astimezone(tz)
        if not self.inside(local.time()):
            return None
        day = local.date()
        if self.start > self.end and local.time() >= self.start:  # the evening part: the window ends tomorrow
            day += timedelta(days=1)
        now = at.replace(tzinfo=UTC)
        end = _wall(day, self.end, tz)
        if end < now:  # clocks went back: the wall time came twice, and ``at`` is past its first time
            end = _wall(day, self.end, tz, fold=1)
        out = end + timedelta(seconds=self.jitter(key))
        while self.inside(out.astimezone(tz).time()):  # a jitter longer than the day's open hours: next morning
            day += timedelta(days=1)
            out = _wall(day, self.end, tz)
        return out.astimezone(UTC).replace(tzinfo=None)

    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _hex(key: str) -> bool:
    return len(key) >= 8 and all(c in "0123456789abcdef" for c in key[:8])


def _wall(day: Any, at: time, tz: ZoneInfo, fold: int = 0) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz`` as an aware UTC datetime (``fold=1``: the second of a time that
    happens twice when clocks go back); a time in a spring-forward gap becomes the gap's end (02:30 on the
    day clocks jump from 02:00 to 03:00 is 03:00)."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=fold)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != naive:  # it does not exist: the gap's end
        before = (naive - timedelta(hours=3)).replace(tzinfo=tz).astimezone(UTC)
        lo, hi = before, utc + timedelta(hours=3)
        while hi - lo > timedelta(seconds=1):  # the first instant whose wall time is at or after `at`
            mid = lo + (hi - lo) / 2
            if mid.astimezone(tz).replace(tzinfo=None) >= naive:
                hi = mid
            else:
                lo = mid
        utc = hi.replace(microsecond=0)
        if utc.astimezone(tz).replace(tzinfo=None) < naive:
            utc += timedelta(seconds=1)
    return utc


def quiet_hours(settings: Settings) -> QuietHours | None:
    if not settings.automations_quiet_hours:
        return None
    return QuietHours.parse(settings.automations_quiet_hours, float(settings.automations_quiet_hours_spread))


# -- the sender's check ----------------------------------------------------------------------------------
class Pacer:
    """What pacing does to each row of one delivery run (one instance per run)."""

    def __init__(self, wh: Warehouse, settings: Settings, now: datetime) -> None:
        self.wh = wh
        self.now = now
        self.caps = caps(settings)
        self.quiet = quiet_hours(settings)
        self.default_tz = default_zone(settings.default_timezone)
        self.control = control_share(settings)
        self.sent: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        # messages this run sent (or handed over) that the outbox does not say yet: kept through a reload
        self.unrecorded: dict[tuple[str, str], int] = defaultdict(int)
        self.zones: dict[str, ZoneInfo] = {}

    @property
    def active(self) -> bool:
        return bool(self.caps or self.quiet or self.control)

    def prepare(self, rows: list[dict[str, Any]], contexts: dict[str, dict[str, Any]]) -> None:
        """Load what the checks of these rows need: recent sends per contact and channel, time zones."""
        paced = [r for r in rows if r["purpose"] != TRANSACTIONAL]
        ids = sorted({r["profile_id"] for r in paced})
        if not ids:
            return
        if self.caps:
            self._load_sent(ids)
        if self.quiet:
            new = [pid for pid in ids if pid not in self.zones]
            traits = {pid: contexts.get(pid, {}).get("traits", {}).get("timezone") for pid in new}
            self.zones.update(recipient_zones(self.wh, new, self.default_tz, traits))

    def _load_sent(self, ids: list[str]) -> None:
        window = max(c.seconds for c in self.caps)
        since = (self.now - timedelta(seconds=window)).isoformat()
        channels = tuple(sorted({c.channel for c in self.caps}))
        listed_ids = joined(ids)
        if listed_ids is not None:  # compiled once per process (the ids are one bound value)
            found = self.wh.prepared(_recent_sends, listed_ids, since, key=channels)
        else:  # an id holding the separator
            who = ibis.memtable(pa.table({"tp_pid": pa.array(ids, pa.string())}))
            found = self.wh.to_arrow(_recent_sends(self.wh, channels, who, since))
        for pid in ids:
            for channel in channels:
                self.sent.pop((pid, channel), None)
                if n := self.unrecorded.get((pid, channel)):  # in flight: not in the outbox as sent yet
                    self.sent[(pid, channel)].extend([self.now] * n)
        for r in found.to_pylist():
            self.sent[(r["profile_id"], r["channel"])].append(r["sent_at"])

    def check(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The row's new fields when pacing stops it now (``held``, ``capped`` or ``suppressed``), else None."""
        pid = row["profile_id"]
        if in_control(pid, self.control):
            return {"status": "suppressed", "pacing": "global control group: never contacted by an automation"}
        if row["purpose"] == TRANSACTIONAL:
            return None
        if self.quiet is not None and row["channel"] in QUIET_CHANNELS:
            tz = self.zones.get(pid, self.default_tz)
            until = self.quiet.release(self.now, tz, row["outbox_id"])
            if until is not None:
                return {
                    "status": "held",
                    "due_at": until,
                    "held_until": until,
                    "attempts": max(0, int(row["attempts"]) - 1),  # not an attempt
                    "pacing": f"quiet hours {self.quiet.text()} in {tz.key}: held until {until:%Y-%m-%d %H:%M:%S} UTC",
                }
        for cap in self.caps:
            if cap.channel != row["channel"]:
                continue
            since = self.now - timedelta(seconds=cap.seconds)
            n = sum(1 for t in self.sent.get((pid, cap.channel), ()) if t > since)
            if n >= cap.limit:
                return {"status": "capped", "pacing": f"frequency cap {cap.text}: {n} sent in the window"}
        return None

    def note_sent(self, row: dict[str, Any]) -> None:
        """Count a message this run sent towards the contact's caps."""
        if self.caps and row["purpose"] != TRANSACTIONAL:
            self.sent[(row["profile_id"], row["channel"])].append(self.now)
            self.unrecorded[(row["profile_id"], row["channel"])] += 1

    def unnote_sent(self, row: dict[str, Any]) -> None:
        """A message counted by :meth:`note_sent` was not sent after all."""
        key = (row["profile_id"], row["channel"])
        sent = self.sent.get(key)
        if self.caps and row["purpose"] != TRANSACTIONAL and sent and self.now in sent:
            sent.remove(self.now)
            self._forget(key)

    def recorded(self, row: dict[str, Any]) -> None:
        """A message counted by :meth:`note_sent` is now in the outbox as sent (a reload reads it there)."""
        if self.caps and row["purpose"] != TRANSACTIONAL:
            self._forget((row["profile_id"], row["channel"]))

    def _forget(self, key: tuple[str, str]) -> None:
        if self.unrecorded.get(key, 0) > 1:
            self.unrecorded[key] -= 1
        else:
            self.unrecorded.pop(key, None)


def _recent_sends(wh: Warehouse, channels: tuple[str, ...], ids: str | ir.Table, since: str) -> ir.Table:
    """``profile_id, channel, sent_at`` of the capped channels' messages sent after ``since`` to ``ids``."""
    who = listed(ids, "tp_pid") if isinstance(ids, str) else ids
    t = wh.table(schema.AUTOMATION_OUTBOX.name)
    t = t.filter(
        (t.status == "sent")
        & (t.sent_at > ibis.literal(since, "string").cast("timestamp"))
        & (t.purpose.fill_null("") != TRANSACTIONAL)
        & t.channel.isin(list(channels))
    )
    t = t.semi_join(who, t.profile_id == who.tp_pid)
    return t.select("profile_id", "channel", "sent_at")


def programme_goal(definitions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The goal every automation that has one shares (``None`` when they differ or none has one)."""
    goals = {json.dumps(d["goal"], sort_keys=True) for d in definitions if d.get("goal")}
    return json.loads(goals.pop()) if len(goals) == 1 else None
