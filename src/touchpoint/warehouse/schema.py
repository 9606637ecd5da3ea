"""The warehouse's tables, described once in engine-neutral Ibis types; migrations create them all.

``CORE_TABLES`` hold what was collected (events, spend) and configuration. ``DERIVED_TABLES`` are
computed from them and can be rebuilt (identities, profiles, sessions, predictions), apart from a
few decisions people make (identity overrides, experiment definitions). No table is created on
first use: a domain that needs a new table declares it here and appends a migration.
Timestamps are stored as naive UTC (``timestamp`` without zone) so the same columns mean the
same thing on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt


@dataclass(frozen=True)
class Personal:
    """How a table's rows are tied to a person (the registry the privacy package reads; docs/privacy.md).

    A row belongs to a person when one of its ``profile`` columns holds one of the person's profile
    ids, one of its ``identifiers`` columns holds one of their identifier values (user id, anonymous
    id, email, phone, external id; a ``customer_id`` holds a profile id or such a value), one of its
    ``kinds`` pairs ``(type column, value column)`` holds one of their ``(type, value)`` identifiers,
    one of its ``messages`` columns names one of their events, or one of its ``nodes`` columns one of
    their identity nodes. ``payloads`` are text or JSON columns that may carry identifiers: exported
    and erased with their row; when a table has no other column to match on, they are searched for
    the person's identifier values. ``none=True`` says the table identifies nobody (definitions,
    aggregates, configuration); ``note`` says why or what else to know.

    >>> Personal(profile=("profile_id",)).is_personal, NOT_PERSONAL.is_personal
    (True, False)
    """

    profile: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()
    messages: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    payloads: tuple[str, ...] = ()
    none: bool = False
    note: str = ""

    @property
    def is_personal(self) -> bool:
        return not self.none

    def columns(self) -> tuple[str, ...]:
        """Every column named here (a test checks that each exists in its table)."""
        pairs = tuple(c for pair in self.kinds for c in pair)
        return (*self.profile, *self.identifiers, *pairs, *self.messages, *self.nodes, *self.payloads)


NOT_PERSONAL = Personal(none=True)


@dataclass(frozen=True)
class TableSpec:
    """A table: its Ibis schema, its key (used to deduplicate), what it is for and how it holds people.

    ``personal`` is None only for a table nobody has classified yet: a test fails until it is.
    """

    name: str
    schema: ibis.Schema
    key: tuple[str, ...] = ()
    doc: str = ""
    not_null: tuple[str, ...] = field(default=())
    personal: Personal | None = None


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
    personal=Personal(
        identifiers=("user_id", "anonymous_id", "email", "previous_id"),
        payloads=("properties", "traits", "context", "integrations"),
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
    personal=Personal(
        messages=("message_id",),
        payloads=("payload",),
        note="input that failed validation: matched by the identifiers its raw payload carries",
    ),
)

SOURCES = TableSpec(
    name="sources",
    doc="Event sources; each has one write key, stored only as its SHA-256 hash.",
    key=("name",),
    not_null=("name", "write_key_hash", "created_at"),
    schema=ibis.schema([("name", STRING), ("write_key_hash", STRING), ("key_prefix", STRING), ("created_at", TS)]),
    personal=Personal(none=True, note="configuration: source names and key hashes"),
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
    personal=Personal(none=True, note="configuration: key names and hashes"),
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
    personal=Personal(none=True, note="aggregate spend per day and channel"),
)

MIGRATIONS_TABLE = TableSpec(
    name="schema_migrations",
    doc="Which schema migrations have been applied, and when.",
    key=("version",),
    schema=ibis.schema([("version", dt.Int64()), ("name", STRING), ("applied_at", TS)]),
    personal=Personal(none=True, note="schema versions"),
)

CORE_TABLES: tuple[TableSpec, ...] = (EVENTS, QUARANTINE, SOURCES, API_KEYS, SPEND)

# -- dashboard users and their sign-in sessions (see touchpoint.users) ------------------------------------
USERS = TableSpec(
    name="users",
    doc="People who sign in to the dashboard: a role and a slow (scrypt) password hash, never the password.",
    key=("name",),
    not_null=("name", "password_hash", "role", "created_at"),
    schema=ibis.schema(
        [
            ("name", STRING),
            ("password_hash", STRING),
            ("role", STRING),  # viewer | analyst | admin
            ("created_at", TS),
            ("disabled_at", TS),
            ("last_sign_in_at", TS),
        ]
    ),
    personal=Personal(none=True, note="dashboard staff accounts, not customers (managed by `touchpoint users`)"),
)

WEB_SESSIONS = TableSpec(
    name="web_sessions",
    doc="Dashboard sign-ins: the SHA-256 of the session cookie, who, with which role, until when.",
    key=("token_hash",),
    not_null=("token_hash", "user_name", "role", "via", "csrf_token", "created_at", "expires_at"),
    schema=ibis.schema(
        [
            ("token_hash", STRING),
            ("user_name", STRING),  # a user's name, or the API key's name when signed in with a key
            ("role", STRING),
            ("via", STRING),  # password | api_key
            ("csrf_token", STRING),
            ("created_at", TS),
            ("expires_at", TS),
            ("ended_at", TS),
        ]
    ),
    personal=Personal(none=True, note="dashboard staff sign-ins, not customers"),
)

USER_TABLES: tuple[TableSpec, ...] = (USERS, WEB_SESSIONS)


# -- identity (see touchpoint.identity.tables) ----------------------------------------------------------
I64, I32, F64, DATE = dt.Int64(), dt.Int32(), dt.Float64(), dt.Date()

IDENTITY_NODES = TableSpec(
    name="identity_nodes",
    doc="One row per identifier, with its component, cluster and profile id.",
    schema=ibis.schema(
        [
            ("node_id", I64),
            ("id_type", STRING),
            ("id_value", STRING),
            ("rank", I32),
            ("first_seen", TS),
            ("last_seen", TS),
            ("events", I64),
            ("component", I64),
            ("cluster", I64),
            ("profile_id", STRING),
        ]
    ),
    personal=Personal(profile=("profile_id",), kinds=(("id_type", "id_value"),)),
)
IDENTITY_LINKS = TableSpec(
    name="identity_links",
    doc="One row per pair of identifiers seen on one event (src < dst), accepted or refused with a reason.",
    schema=ibis.schema(
        [
            ("src", I64),
            ("dst", I64),
            ("message_id", STRING),
            ("first_seen", TS),
            ("last_seen", TS),
            ("events", I64),
            ("status", STRING),
            ("reason", STRING),
        ]
    ),
    personal=Personal(nodes=("src", "dst"), messages=("message_id",)),
)
IDENTITY_RECENT = TableSpec(
    name="identity_recent",
    doc="Events of the last hour before the resolved watermark, so none is resolved twice.",
    schema=ibis.schema([("message_id", STRING), ("received_at", TS)]),
    personal=Personal(messages=("message_id",)),
)
EVENT_IDENTITIES = TableSpec(
    name="event_identities",
    doc="Each resolved event's most trusted identifier (its identity node): the event belongs to that "
    "node's profile. Maintained by the identity update (new events get a row; node ids are stable, so a "
    "merge or split changes no row); events whose identifiers are all blocked have none. Each row also "
    "carries the event's kind, times and properties (identity state version 3), so the behaviour of a "
    "set of profiles is read here by node id alone; a rebuild writes the rows in timestamp order, so a "
    "time window skips row groups.",
    key=("message_id",),
    schema=ibis.schema(
        [
            ("message_id", STRING),
            ("node_id", I64),
            ("type", STRING),
            ("event", STRING),
            ("timestamp", TS),
            ("received_at", TS),
            ("properties", JSON),
        ]
    ),
    personal=Personal(messages=("message_id",), nodes=("node_id",), payloads=("properties",)),
)
IDENTITY_OVERRIDES = TableSpec(
    name="identity_overrides",
    doc="Manual identity decisions: 'split' (the identifier links to nothing) or 'merge' (force a link).",
    schema=ibis.schema(
        [
            ("kind", STRING),
            ("id_type", STRING),
            ("id_value", STRING),
            ("other_type", STRING),
            ("other_value", STRING),
            ("created_at", TS),
            ("note", STRING),
        ]
    ),
    personal=Personal(kinds=(("id_type", "id_value"), ("other_type", "other_value"))),
)
IDENTITY_MERGE_LOG = TableSpec(
    name="identity_merge_log",
    doc="Every merge and split: which profiles, which link, which event, when.",
    schema=ibis.schema(
        [
            ("logged_at", TS),
            ("kind", STRING),  # auto_merge | manual_merge | manual_split | unsplit
            ("profile_id", STRING),
            ("merged_profile_ids", STRING),  # comma-separated, sorted
            ("src_type", STRING),
            ("src_value", STRING),
            ("dst_type", STRING),
            ("dst_value", STRING),
            ("message_id", STRING),
            ("event_timestamp", TS),
            ("note", STRING),
        ]
    ),
    personal=Personal(
        profile=("profile_id",),
        identifiers=("src_value", "dst_value"),
        messages=("message_id",),
        payloads=("merged_profile_ids", "note"),
    ),
)
IDENTITY_STATE = TableSpec(
    name="identity_state",
    doc="The last resolution's state: watermark, rules' fingerprint, when it was built (JSON values).",
    schema=ibis.schema([("key", STRING), ("value", STRING)]),
    personal=Personal(none=True, note="the resolver's watermark and rules"),
)

# -- profiles ----------------------------------------------------------------------------------------
PROFILES = TableSpec(
    name="profiles",
    doc="One row per profile: identifiers, activity, orders, channels and RFM scores as of a date.",
    schema=ibis.schema(
        [
            ("profile_id", STRING),
            ("identifiers", I64),
            ("user_id", STRING),
            ("email", STRING),
            ("first_seen", TS),
            ("last_seen", TS),
            ("events", I64),
            ("sessions", I64),
            ("orders", I64),
            ("revenue", F64),
            ("average_order_value", F64),
            ("last_order_at", TS),
            ("days_since_last_order", I64),
            ("channels", STRING),
            ("channels_touched", I64),
            ("recency_score", I64),
            ("frequency_score", I64),
            ("monetary_score", I64),
            ("rfm", STRING),
            ("as_of", TS),
            ("built_at", TS),
        ]
    ),
    personal=Personal(profile=("profile_id",), identifiers=("user_id", "email")),
)
PROFILE_TRAITS = TableSpec(
    name="profile_traits",
    doc="The latest value of every trait of every profile, with the event it came from.",
    schema=ibis.schema(
        [
            ("profile_id", STRING),
            ("trait", STRING),
            ("value", STRING),
            ("source", STRING),
            ("timestamp", TS),
            ("message_id", STRING),
        ]
    ),
    personal=Personal(profile=("profile_id",), messages=("message_id",), payloads=("value",)),
)

# -- journeys ----------------------------------------------------------------------------------------
SESSIONS = TableSpec(
    name="sessions",
    doc="Sessions of every person (materialised by `touchpoint journeys sessions --write`).",
    schema=ibis.schema(
        [
            ("person", STRING),
            ("session_id", STRING),
            ("session_index", I64),
            ("session_start", TS),
            ("session_end", TS),
            ("events", I64),
            ("pages", I64),
            ("channel", STRING),
            ("campaign", STRING),
            ("source", STRING),
            ("medium", STRING),
            ("landing_path", STRING),
        ]
    ),
    personal=Personal(
        identifiers=("person",), note="person: the customer rule's id (a profile id, else a raw user or anonymous id)"
    ),
)

# -- predictions -------------------------------------------------------------------------------------
PREDICTIONS = TableSpec(
    name="predictions",
    doc="The latest CLV run's per-customer predictions: P(alive), expected purchases and spend, CLV.",
    schema=ibis.schema(
        [
            ("customer_id", STRING),
            ("model", STRING),
            ("run_at", TS),
            ("as_of", DATE),
            ("frequency", F64),
            ("recency", F64),
            ("T", F64),
            ("monetary_value", F64),
            ("p_alive", F64),
            ("expected_purchases", F64),
            ("expected_spend", F64),
            ("clv", F64),
            ("horizon_days", I64),
            ("prob_purchase_window", F64),
            ("purchase_window_days", I64),
            ("next_purchase_at", DATE),
            ("next_purchase_days", F64),
        ]
    ),
    personal=Personal(
        identifiers=("customer_id",), note="the logic behind each row is its prediction_runs row (model, run_at)"
    ),
)
PREDICTION_RUNS = TableSpec(
    name="prediction_runs",
    doc="Every CLV run: model, customers, customer equity with its 90% interval, the full summary (JSON).",
    schema=ibis.schema(
        [
            ("run_at", TS),
            ("model", STRING),
            ("as_of", DATE),
            ("customers", I64),
            ("customer_equity", F64),
            ("equity_low_90", F64),
            ("equity_high_90", F64),
            ("log_likelihood", F64),
            ("summary", STRING),
        ]
    ),
    personal=Personal(none=True, note="per-run aggregates: customer equity, fit summary"),
)
PROPENSITY_SCORES = TableSpec(
    name="propensity_scores",
    doc="Propensity to do an event within a window, per customer, event and window (latest run each).",
    schema=ibis.schema(
        [
            ("customer_id", STRING),
            ("event", STRING),
            ("days", I64),
            ("score", F64),
            ("decile", I64),
            ("model", STRING),
            ("as_of", DATE),
            ("run_at", TS),
        ]
    ),
    personal=Personal(identifiers=("customer_id",)),
)
REPLENISHMENT = TableSpec(
    name="replenishment",
    doc="When each repeat buyer of a product is due to run out.",
    schema=ibis.schema(
        [
            ("customer_id", STRING),
            ("product", STRING),
            ("purchases", I64),
            ("intervals", I64),
            ("days_per_unit", F64),
            ("last_purchase_at", DATE),
            ("last_quantity", F64),
            ("due_at", DATE),
            ("days_until_due", I64),
            ("uncertain", dt.Boolean()),
        ]
    ),
    personal=Personal(identifiers=("customer_id",)),
)

# -- experiments -------------------------------------------------------------------------------------
EXPERIMENTS = TableSpec(
    name="experiments",
    doc="Experiment and holdout definitions; exposures are 'Experiment Viewed' events.",
    key=("key",),
    not_null=("key", "kind", "variants", "weights", "control", "created_at"),
    schema=ibis.schema(
        [
            ("key", STRING),
            ("name", STRING),
            ("kind", STRING),  # experiment | holdout
            ("status", STRING),  # draft | running | stopped
            ("description", STRING),
            ("variants", STRING),  # JSON list of variant ids
            ("weights", STRING),  # JSON list of weights, same order
            ("control", STRING),
            ("metrics", STRING),  # JSON list of metric definitions
            ("unit", STRING),  # user_id | anonymous_id | any (user_id, else anonymous_id)
            ("start_at", TS),
            ("end_at", TS),
            ("weights_history", STRING),  # JSON list of {"at", "weights"}
            ("created_at", TS),
            ("updated_at", TS),
        ]
    ),
    personal=Personal(
        none=True, note="definitions; assignments are derived from the unit's id and exposures are events"
    ),
)

# -- the job runner ------------------------------------------------------------------------------------
JOB_RUNS = TableSpec(
    name="job_runs",
    doc="Every run of a job of `touchpoint serve` (or `touchpoint jobs run`): when, how it ended, rows, error.",
    key=("run_id",),
    not_null=("run_id", "job", "started_at", "status"),
    schema=ibis.schema(
        [
            ("run_id", STRING),
            ("job", STRING),
            ("trigger", STRING),  # schedule | events | manual | retry
            ("attempt", I64),  # 1, then 2, 3, ... while a job keeps failing
            ("started_at", TS),
            ("finished_at", TS),
            ("status", STRING),  # running | succeeded | failed | skipped | interrupted
            ("rows", I64),
            ("seconds", F64),
            ("error", STRING),
            ("summary", STRING),  # JSON: what the job's function returned
        ]
    ),
    personal=Personal(none=True, note="job bookkeeping: counts and errors"),
)
ATTRIBUTION_RESULTS = TableSpec(
    name="attribution_results",
    doc="The latest attribution comparison of every model, refreshed by the 'attribution' job (JSON).",
    key=("run_at",),
    schema=ibis.schema([("run_at", TS), ("models", STRING), ("paths", I64), ("result", STRING)]),
    personal=Personal(none=True, note="aggregate credit per channel"),
)
EXPERIMENT_RESULTS = TableSpec(
    name="experiment_results",
    doc="The latest analysis of every running experiment, refreshed by the 'experiments' job (JSON).",
    key=("key",),
    schema=ibis.schema([("key", STRING), ("analyzed_at", TS), ("status", STRING), ("result", STRING)]),
    personal=Personal(none=True, note="aggregate results per arm"),
)
JOB_TABLES: tuple[TableSpec, ...] = (JOB_RUNS, ATTRIBUTION_RESULTS, EXPERIMENT_RESULTS)

DERIVED_TABLES: tuple[TableSpec, ...] = (
    IDENTITY_NODES,
    IDENTITY_LINKS,
    IDENTITY_RECENT,
    IDENTITY_OVERRIDES,
    IDENTITY_MERGE_LOG,
    IDENTITY_STATE,
    PROFILES,
    PROFILE_TRAITS,
    SESSIONS,
    PREDICTIONS,
    PREDICTION_RUNS,
    PROPENSITY_SCORES,
    REPLENISHMENT,
    EXPERIMENTS,
)


# -- the marketing plan (decisions people make: never rebuilt) ---------------------------------------
PLANS = TableSpec(
    name="plans",
    doc="Marketing plans: goal, behaviour changes, tactics; every save is a new version, none is overwritten.",
    key=("plan_id", "version"),
    not_null=("plan_id", "version", "name", "document", "created_at"),
    schema=ibis.schema(
        [
            ("plan_id", STRING),
            ("version", dt.Int64()),
            ("name", STRING),
            ("document", STRING),  # JSON: the plan as given (goal, behaviour_changes, tactics)
            ("note", STRING),  # what changed in this version
            ("created_at", TS),
        ]
    ),
    personal=Personal(none=True, note="marketing plans"),
)

PLAN_REVIEWS = TableSpec(
    name="plan_reviews",
    doc="Quarterly reviews of a plan version: measured vs expected effect per tactic, decisions, roll-up.",
    key=("plan_id", "quarter", "reviewed_at"),
    not_null=("plan_id", "plan_version", "quarter", "review", "reviewed_at"),
    schema=ibis.schema(
        [
            ("plan_id", STRING),
            ("plan_version", dt.Int64()),
            ("quarter", STRING),
            ("review", STRING),  # JSON: the review as `touchpoint plan review` prints it
            ("reviewed_at", TS),
        ]
    ),
    personal=Personal(none=True, note="aggregate reviews"),
)

PLAN_TABLES: tuple[TableSpec, ...] = (PLANS, PLAN_REVIEWS)

# -- audiences and scores (see touchpoint.audiences) ------------------------------------------------------
AUDIENCES = TableSpec(
    name="audiences",
    doc="Saved audience definitions (JSON), with their current version.",
    key=("name",),
    not_null=("name", "definition", "version", "created_at", "updated_at"),
    schema=ibis.schema(
        [
            ("name", STRING),
            ("description", STRING),
            ("definition", STRING),  # JSON, the definition language of docs/audiences.md
            ("version", I64),
            ("created_at", TS),
            ("updated_at", TS),
        ]
    ),
    personal=Personal(none=True, note="definitions"),
)
AUDIENCE_VERSIONS = TableSpec(
    name="audience_versions",
    doc="Every version of every audience definition, kept when it is changed or deleted.",
    key=("name", "version"),
    not_null=("name", "version", "definition", "created_at"),
    schema=ibis.schema(
        [("name", STRING), ("version", I64), ("definition", STRING), ("created_at", TS), ("deleted_at", TS)]
    ),
    personal=Personal(none=True, note="definitions"),
)
AUDIENCE_MEMBERSHIPS = TableSpec(
    name="audience_memberships",
    doc="Who was in which audience when: one row per stay (exited_at NULL while the profile is a member).",
    key=("audience", "profile_id", "entered_at"),
    not_null=("audience", "profile_id", "entered_at"),
    schema=ibis.schema([("audience", STRING), ("profile_id", STRING), ("entered_at", TS), ("exited_at", TS)]),
    personal=Personal(profile=("profile_id",)),
)
AUDIENCE_STATE = TableSpec(
    name="audience_state",
    doc="Each audience's last evaluation: its clock, the events and models it saw, for incremental refresh.",
    key=("audience",),
    schema=ibis.schema(
        [
            ("audience", STRING),
            ("evaluated_at", TS),  # the evaluation's `now`
            ("events_watermark", TS),  # the latest received_at it had seen
            ("profiles_built_at", TS),
            ("fingerprint", STRING),  # the definition, every audience it names, the models' runs
            ("members", I64),
            ("mode", STRING),  # full | incremental
            ("candidates", I64),
            ("seconds", F64),
        ]
    ),
    personal=Personal(none=True, note="evaluation bookkeeping: counts"),
)

SCORES = TableSpec(
    name="scores",
    doc="Lead score definitions (JSON): fit and engagement rules, caps, ceiling, bands, lifecycle stages.",
    key=("name",),
    not_null=("name", "definition", "version", "created_at", "updated_at"),
    schema=ibis.schema(
        [
            ("name", STRING),
            ("description", STRING),
            ("definition", STRING),
            ("version", I64),
            ("created_at", TS),
            ("updated_at", TS),
        ]
    ),
    personal=Personal(none=True, note="definitions"),
)
SCORE_RESULTS = TableSpec(
    name="score_results",
    doc="Each score's latest points per profile, with its band and lifecycle stage.",
    key=("score", "profile_id"),
    not_null=("score", "profile_id", "points", "computed_at"),
    schema=ibis.schema(
        [
            ("score", STRING),
            ("profile_id", STRING),
            ("points", F64),
            ("fit", F64),
            ("engagement", F64),
            ("band", STRING),
            ("stage", STRING),
            ("computed_at", TS),
        ]
    ),
    personal=Personal(profile=("profile_id",)),
)
SCORE_BANDS = TableSpec(
    name="score_band_entries",
    doc="Every time a profile entered a band of a score (once per entry): the facts a sales hand-off acts on.",
    key=("score", "profile_id", "entered_at"),
    not_null=("score", "profile_id", "band", "entered_at"),
    schema=ibis.schema(
        [("score", STRING), ("profile_id", STRING), ("band", STRING), ("previous", STRING), ("entered_at", TS)]
    ),
    personal=Personal(profile=("profile_id",)),
)
SCORE_STAGES = TableSpec(
    name="score_stages",
    doc="Lifecycle stage changes per score and profile: promotions by the rules, demotions made explicitly.",
    key=("score", "profile_id", "changed_at"),
    not_null=("score", "profile_id", "stage", "changed_at", "kind"),
    schema=ibis.schema(
        [
            ("score", STRING),
            ("profile_id", STRING),
            ("stage", STRING),
            ("previous", STRING),
            ("kind", STRING),  # promoted | demoted
            ("reason", STRING),
            ("changed_at", TS),
        ]
    ),
    personal=Personal(profile=("profile_id",)),
)

SCORE_STATE = TableSpec(
    name="score_state",
    doc="Each lead score's last run: its clock, the events, profiles and models it saw, for incremental runs.",
    key=("score",),
    schema=ibis.schema(
        [
            ("score", STRING),
            ("evaluated_at", TS),  # the run's `now`
            ("events_watermark", TS),  # the latest received_at it had seen
            ("profiles_built_at", TS),  # the latest profile built_at it had seen
            ("fingerprint", STRING),  # the definition, every audience it names, the models' runs
            ("full_at", TS),  # the `now` of the last full run
            ("mode", STRING),  # full | incremental
            ("candidates", I64),
            ("seconds", F64),
        ]
    ),
    personal=Personal(none=True, note="scoring bookkeeping: instants and counts"),
)

AUDIENCE_TABLES: tuple[TableSpec, ...] = (
    AUDIENCES,
    AUDIENCE_VERSIONS,
    AUDIENCE_MEMBERSHIPS,
    AUDIENCE_STATE,
    SCORES,
    SCORE_RESULTS,
    SCORE_BANDS,
    SCORE_STAGES,
)

# -- automations (see touchpoint.automations) ---------------------------------------------------------------
AUTOMATIONS = TableSpec(
    name="automations",
    doc="Saved automation definitions (JSON): trigger, steps, goal, holdout, re-entry; paused or active.",
    key=("name",),
    not_null=("name", "definition", "version", "status", "created_at", "updated_at"),
    schema=ibis.schema(
        [
            ("name", STRING),
            ("definition", STRING),  # JSON, the language of docs/automations.md
            ("version", I64),
            ("status", STRING),  # active | paused
            ("created_at", TS),
            ("updated_at", TS),
        ]
    ),
    personal=Personal(none=True, note="definitions"),
)
AUTOMATION_ENTRIES = TableSpec(
    name="automation_entries",
    doc="Who entered which automation, for which occurrence, and in which arm (treated or held out).",
    key=("automation", "profile_id", "occurrence"),
    not_null=("automation", "profile_id", "occurrence", "arm", "entered_at"),
    schema=ibis.schema(
        [
            ("automation", STRING),
            ("profile_id", STRING),
            ("occurrence", STRING),  # the re-entry policy's key: 'once', or the trigger's own key
            ("arm", STRING),  # treated | holdout
            ("trigger", STRING),  # what triggered it: an event's message_id, an audience change
            ("entered_at", TS),
        ]
    ),
    personal=Personal(profile=("profile_id",), messages=("trigger",)),
)
AUTOMATION_OUTBOX = TableSpec(
    name="automation_outbox",
    doc="Every message an automation decided to send, once per (automation, step, profile, occurrence).",
    key=("automation", "step", "profile_id", "occurrence"),
    not_null=("automation", "step", "profile_id", "occurrence", "channel", "status", "due_at", "created_at"),
    schema=ibis.schema(
        [
            ("automation", STRING),
            ("step", I64),
            ("profile_id", STRING),
            ("occurrence", STRING),
            ("outbox_id", STRING),  # a hash of the key: the Message-ID and the idempotency key derive from it
            ("channel", STRING),  # email | webhook
            ("purpose", STRING),
            ("status", STRING),  # pending | held | sending | retry | sent | dead | capped | suppressed | exited
            ("due_at", TS),
            ("attempts", I64),
            ("last_error", STRING),
            ("payload", STRING),  # JSON: what was rendered at the first attempt (retries resend it)
            ("entered_at", TS),
            ("created_at", TS),
            ("updated_at", TS),
            ("sent_at", TS),
            # migration 14: what pacing did (automations.pacing)
            ("held_until", TS),  # quiet hours held it until this instant (then due_at)
            ("pacing", STRING),  # why: the quiet hours and time zone, the frequency cap, the global control group
        ]
    ),
    personal=Personal(profile=("profile_id",), payloads=("payload", "last_error")),
)
AUTOMATION_STATE = TableSpec(
    name="automation_state",
    doc="Each automation's trigger watermark: the latest event or audience change it has evaluated.",
    key=("automation",),
    schema=ibis.schema(
        [
            ("automation", STRING),
            ("watermark", TS),  # the latest trigger instant evaluated
            ("floor", TS),  # triggers at or before this never enter: its creation, or passed over while paused
            ("evaluated_at", TS),
        ]
    ),
    personal=Personal(none=True, note="trigger watermarks"),
)
UNSUBSCRIBES = TableSpec(
    name="unsubscribes",
    doc="Retired: unsubscribes before consent_history (migration 9 copied them there); nothing writes it now.",
    key=("profile_id", "purpose"),
    not_null=("profile_id", "purpose", "unsubscribed_at"),
    schema=ibis.schema([("profile_id", STRING), ("purpose", STRING), ("source", STRING), ("unsubscribed_at", TS)]),
    personal=Personal(profile=("profile_id",)),
)

AUTOMATION_TABLES: tuple[TableSpec, ...] = (
    AUTOMATIONS,
    AUTOMATION_ENTRIES,
    AUTOMATION_OUTBOX,
    AUTOMATION_STATE,
    UNSUBSCRIBES,
)

AUTOMATION_FLOWS = TableSpec(
    name="automation_flows",
    doc="Where each treated entry of a flow with waits for a time or an event, branches, splits or trait and "
    "audience steps is: the step it waits at, until when, and the path it took (steps, branches, outcomes).",
    key=("automation", "profile_id", "occurrence"),
    not_null=("automation", "profile_id", "occurrence", "status", "path", "entered_at", "updated_at"),
    schema=ibis.schema(
        [
            ("automation", STRING),
            ("profile_id", STRING),
            ("occurrence", STRING),
            ("status", STRING),  # active | waiting | done | exited
            ("position", I64),  # the step it is at (waiting at, or about to take); NULL when done
            ("due_at", TS),  # when to look at it again (a wait's end, a wait_for's timeout)
            ("waiting_since", TS),  # when the wait at `position` began (NULL: not waiting)
            ("path", STRING),  # JSON list: {"step", "kind", "at", and "taken" | "outcome" | "until"}
            ("entered_at", TS),
            ("updated_at", TS),
        ]
    ),
    personal=Personal(profile=("profile_id",), note="the path names steps and branches, never the person's data"),
)
FLOW_TABLES: tuple[TableSpec, ...] = (AUTOMATION_FLOWS,)

# -- privacy: consent (see touchpoint.privacy.consent) ------------------------------------------------------
CONSENT_HISTORY = TableSpec(
    name="consent_history",
    doc="Every consent given or withdrawn, append-only: who (an identifier, resolved to a profile when read), "
    "purpose, granted or denied, where it came from and its proof, when it holds. The current state is derived.",
    key=("consent_id",),
    not_null=("consent_id", "identifier_type", "identifier", "purpose", "granted", "source", "valid_from"),
    schema=ibis.schema(
        [
            ("consent_id", STRING),  # a hash of (source, proof, identifier, purpose): a replay records nothing new
            ("identifier_type", STRING),  # user_id | anonymous_id | email | phone | an external id type | profile_id
            ("identifier", STRING),
            ("purpose", STRING),
            ("granted", dt.Boolean()),
            ("source", STRING),  # event | api | dashboard | cli | unsubscribe | import
            ("proof", STRING),  # the event's messageId, the unsubscribe token's digest, the API request's id
            ("actor", STRING),  # who recorded it (an API key's name, a user), when not the person
            ("valid_from", TS),
            ("valid_until", TS),  # null: until changed
            ("recorded_at", TS),
        ]
    ),
    personal=Personal(
        identifiers=("identifier",),  # an identifier value, or a profile id when no identifier was known
        messages=("proof",),  # an event's consent: its messageId
        note="consent is the person's: erased with them (the erasure log keeps that it happened)",
    ),
)

CONSENT_TABLES: tuple[TableSpec, ...] = (CONSENT_HISTORY,)

# -- privacy: erasure requests and the suppression list (see touchpoint.privacy) --------------------------------
SUPPRESSIONS = TableSpec(
    name="privacy_suppressions",
    doc="Keyed hashes (HMAC-SHA256) of erased people's identifiers: the collector drops their events, counted.",
    key=("hash",),
    not_null=("hash", "added_at"),
    schema=ibis.schema(
        [
            ("hash", STRING),  # hex HMAC-SHA256 of the identifier value, keyed by <data_dir>/privacy.key
            ("id_type", STRING),  # user_id | anonymous_id | email | phone | ...
            ("erasure_id", STRING),
            ("added_at", TS),
            ("dropped", I64),  # events dropped since
            ("last_dropped_at", TS),
        ]
    ),
    personal=Personal(none=True, note="keyed hashes: they identify nobody without the installation's key"),
)
ERASURES = TableSpec(
    name="privacy_erasures",
    doc="Every erasure request: when, who asked, the subject's hash, rows deleted per table; never the data.",
    key=("erasure_id",),
    not_null=("erasure_id", "requested_at", "subject_hash", "status"),
    schema=ibis.schema(
        [
            ("erasure_id", STRING),
            ("requested_at", TS),
            ("finished_at", TS),
            ("actor", STRING),  # the API key's name, or cli:<user>
            ("subject_hash", STRING),  # HMAC of the identifier the request named
            ("identifiers", I64),  # how many identifiers the person had (all suppressed)
            ("deleted", STRING),  # JSON: {table: rows}
            ("files", STRING),  # JSON: {"rewritten": n, "removed": n}
            ("compact_seconds", F64),
            ("status", STRING),  # erased
        ]
    ),
    personal=Personal(none=True, note="the request's record: a keyed hash and counts, never the data"),
)
PRIVACY_TABLES: tuple[TableSpec, ...] = (SUPPRESSIONS, ERASURES)


# -- the audit log (see touchpoint.privacy.audit) -------------------------------------------------------------
AUDIT_LOG = TableSpec(
    name="audit_log",
    doc="Append-only, hash-chained log of every access to personal data and every privacy, key or user change "
    "(who, what, the subject's id, how many rows; never the personal data itself).",
    key=("seq",),
    not_null=("seq", "at", "actor", "surface", "action", "outcome", "prev_hash", "hash"),
    schema=ibis.schema(
        [
            ("seq", I64),  # 1, 2, 3 ... without gaps: a gap is a deleted entry
            ("at", TS),
            ("actor", STRING),  # key:<name>, user:<name>, cli:<os user>, job:<name>, link:unsubscribe
            ("surface", STRING),  # api | cli | web | job
            ("action", STRING),  # e.g. profiles.read, audiences.export, keys.rotate, retention.delete
            ("subject", STRING),  # a profile id, an audience name, sha256:<prefix> of an identifier; never the data
            ("rows", I64),  # how many rows were returned or changed, when known
            ("outcome", STRING),  # ok, or the error code the request ended with
            ("detail", STRING),  # canonical JSON of non-personal details (criteria names, counts per table)
            ("prev_hash", STRING),  # the previous entry's hash (64 zeros for the first)
            ("hash", STRING),  # sha256(prev_hash + canonical content of this entry)
        ]
    ),
    personal=Personal(
        none=True,
        note="who did what, never the data: a subject is a profile id (which points to nobody once the person "
        "is erased) or a hash of an identifier; kept whole so the chain verifies",
    ),
)

AUDIT_TABLES: tuple[TableSpec, ...] = (AUDIT_LOG,)


# -- the marketing-mix model's calibrations (see touchpoint.mmm.calibration) ---------------------------------
MMM_CALIBRATIONS = TableSpec(
    name="mmm_calibrations",
    doc="Lift tests accepted as calibration of the marketing-mix model: source, channel, period, lift with its "
    "interval, spend, ROI with its standard error, who accepted it and when; withdrawn ones are kept, marked.",
    key=("calibration_id",),
    not_null=(
        "calibration_id",
        "source",
        "channel",
        "period_start",
        "period_end",
        "lift",
        "lift_se",
        "spend",
        "roi",
        "roi_se",
        "status",
        "accepted_by",
        "accepted_at",
    ),
    schema=ibis.schema(
        [
            ("calibration_id", STRING),
            ("source", STRING),  # experiment:KEY | automation:NAME | another source's key
            ("channel", STRING),
            ("period_start", dt.Date()),
            ("period_end", dt.Date()),
            ("metric", STRING),
            ("units", dt.Float64()),  # units in the treated arm
            ("lift", dt.Float64()),  # incremental revenue over the treated arm, money
            ("lift_low", dt.Float64()),
            ("lift_high", dt.Float64()),
            ("lift_se", dt.Float64()),
            ("level", dt.Float64()),  # of lift_low..lift_high
            ("spend", dt.Float64()),  # the channel's spend in the period, money
            ("roi", dt.Float64()),
            ("roi_se", dt.Float64()),
            ("status", STRING),  # accepted | withdrawn
            ("accepted_by", STRING),  # an actor, as in the audit log: cli:<os user>, key:<name>, demo
            ("accepted_at", TS),
            ("withdrawn_by", STRING),
            ("withdrawn_at", TS),
            ("details", STRING),  # JSON: the arm, the control, the per-unit lift, the analysis status
        ]
    ),
    personal=Personal(
        none=True,
        note="aggregate lifts of experiments and holdouts; accepted_by/withdrawn_by are actors as in the audit "
        "log (an API key's or an OS user's name), never a customer",
    ),
)

MMM_TABLES: tuple[TableSpec, ...] = (MMM_CALIBRATIONS,)
SCORE_STATE_TABLES: tuple[TableSpec, ...] = (SCORE_STATE,)


def all_tables() -> tuple[TableSpec, ...]:
    """Every table declared in this module (whatever group it belongs to), in declaration order.

    >>> "events" in [t.name for t in all_tables()]
    True
    """
    seen: dict[str, TableSpec] = {}
    for value in globals().values():
        if isinstance(value, TableSpec):
            seen.setdefault(value.name, value)
    return tuple(seen.values())
