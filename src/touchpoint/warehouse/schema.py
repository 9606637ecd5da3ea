"""The warehouse's tables, described once in engine-neutral Ibis types.

Every other table touchpoint has is derived from ``events`` (and ``spend``) and can be rebuilt.
Timestamps are stored as naive UTC (``timestamp`` without zone) so the same columns mean the
same thing on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt


@dataclass(frozen=True)
class TableSpec:
    """A table: its Ibis schema, its key (used to deduplicate) and what it is for."""

    name: str
    schema: ibis.Schema
    key: tuple[str, ...] = ()
    doc: str = ""
    not_null: tuple[str, ...] = field(default=())


STRING = dt.String()
JSON = dt.JSON()
TS = dt.Timestamp()  # naive, always UTC

EVENTS = TableSpec(
    name="events",
    doc="The immutable event log in the Segment tracking spec; one row per messageId.",
    key=("message_id",),
    not_null=("message_id", "type", "received_at", "timestamp"),
    schema=ibis.schema(
        [
            ("message_id", STRING),
            ("type", STRING),  # identify, track, page, screen, group, alias
            ("event", STRING),  # track: the event name
            ("name", STRING),  # page/screen: the page name
            ("user_id", STRING),
            ("anonymous_id", STRING),
            ("group_id", STRING),
            ("previous_id", STRING),
            ("timestamp", TS),  # when it happened, corrected for client clock skew
            ("original_timestamp", TS),  # the client's own timestamp, as sent
            ("sent_at", TS),
            ("received_at", TS),
            ("source", STRING),
            ("properties", JSON),
            ("traits", JSON),
            ("context", JSON),
            ("integrations", JSON),
            # Typed columns that analytics need, extracted at ingestion (raw JSON above is kept as sent).
            ("email", STRING),  # trimmed, lower-cased; from traits, context.traits or properties
            ("revenue", dt.Float64()),
            ("currency", STRING),
            ("order_id", STRING),
            ("url", STRING),
            ("path", STRING),
            ("referrer", STRING),
            ("utm_source", STRING),
            ("utm_medium", STRING),
            ("utm_campaign", STRING),
            ("utm_term", STRING),
            ("utm_content", STRING),
        ]
    ),
)

QUARANTINE = TableSpec(
    name="quarantine",
    doc="Input that could not be stored as a valid event, kept with its reason so it can be replayed.",
    key=("id",),
    not_null=("id", "received_at", "reason", "payload"),
    schema=ibis.schema(
        [
            ("id", STRING),
            ("received_at", TS),
            ("source", STRING),
            ("reason", STRING),  # plain words: what was wrong and what to do
            ("field", STRING),  # the offending field, when one is to blame
            ("origin", STRING),  # how it arrived: http:<endpoint>, file:<name>:<line>, replay
            ("payload", STRING),  # the raw input exactly as received (text)
            ("message_id", STRING),
            ("status", STRING),  # quarantined | replayed
            ("replayed_at", TS),
        ]
    ),
)

SOURCES = TableSpec(
    name="sources",
    doc="Event sources; each has one write key, stored only as its SHA-256 hash.",
    key=("name",),
    not_null=("name", "write_key_hash", "created_at"),
    schema=ibis.schema([("name", STRING), ("write_key_hash", STRING), ("key_prefix", STRING), ("created_at", TS)]),
)

API_KEYS = TableSpec(
    name="api_keys",
    doc="Keys for the read and admin HTTP endpoints, stored only as SHA-256 hashes.",
    key=("name",),
    not_null=("name", "key_hash", "scope", "created_at"),
    schema=ibis.schema(
        [
            ("name", STRING),
            ("key_hash", STRING),
            ("key_prefix", STRING),
            ("scope", STRING),
            ("created_at", TS),
        ]
    ),
)

SPEND = TableSpec(
    name="spend",
    doc="Marketing spend per day, channel and campaign (campaign '' when not broken down).",
    key=("date", "channel", "campaign"),
    not_null=("date", "channel", "campaign", "amount"),
    schema=ibis.schema(
        [
            ("date", dt.Date()),
            ("channel", STRING),
            ("campaign", STRING),
            ("amount", dt.Float64()),
            ("currency", STRING),
            ("impressions", dt.Int64()),
            ("clicks", dt.Int64()),
            ("source", STRING),
            ("imported_at", TS),
        ]
    ),
)

MIGRATIONS_TABLE = TableSpec(
    name="schema_migrations",
    doc="Which schema migrations have been applied, and when.",
    key=("version",),
    schema=ibis.schema([("version", dt.Int64()), ("name", STRING), ("applied_at", TS)]),
)

CORE_TABLES: tuple[TableSpec, ...] = (EVENTS, QUARANTINE, SOURCES, API_KEYS, SPEND)
