"""Versioned schema migrations, recorded in the ``schema_migrations`` table.

A migration is applied once, in order, inside a transaction. To change the schema, append a
new :class:`Migration`; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from touchpoint.warehouse import schema

if TYPE_CHECKING:
    from touchpoint.warehouse.base import Warehouse


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Warehouse], list[str]]


def _core_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.CORE_TABLES]


def _derived_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.DERIVED_TABLES]


def _key_lifecycle(wh: Warehouse) -> list[str]:
    """Write keys and API keys: revocation, rotation with a grace period for the old key, last use."""
    columns = (
        ("revoked_at", schema.TS),
        ("last_used_at", schema.TS),
        ("previous_key_hash", schema.STRING),
        ("previous_key_expires_at", schema.TS),
    )
    return [wh.add_column_sql(table, name, dtype) for table in ("sources", "api_keys") for name, dtype in columns]


def _job_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.JOB_TABLES]


def _user_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.USER_TABLES]


def _plan_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.PLAN_TABLES]


def _audience_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.AUDIENCE_TABLES]


def _automation_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.AUTOMATION_TABLES]


def _consent_history(wh: Warehouse) -> list[str]:
    """The consent history; each unsubscribe recorded so far becomes a denial in it, under the profile's
    most trusted identifier (the profile id itself when the identity tables no longer know it)."""
    nodes = """SELECT profile_id, id_type, id_value,
                      ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY "rank", id_type, id_value) AS tp_n
               FROM identity_nodes"""
    copy = f"""INSERT INTO consent_history
        SELECT 'unsubscribe:' || u.profile_id || ':' || u.purpose,
               COALESCE(n.id_type, 'profile_id'), COALESCE(n.id_value, u.profile_id),
               u.purpose, FALSE, 'unsubscribe', COALESCE(u.source, 'link'), NULL,
               u.unsubscribed_at, NULL, u.unsubscribed_at
        FROM unsubscribes u LEFT JOIN ({nodes}) n ON n.profile_id = u.profile_id AND n.tp_n = 1"""
    return [wh.create_table_sql(schema.CONSENT_HISTORY), copy]


def _privacy_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.PRIVACY_TABLES]


def _outbox_pacing(wh: Warehouse) -> list[str]:
    """The outbox records what pacing did to a message: held by quiet hours until when, and why."""
    return [
        wh.add_column_sql(schema.AUTOMATION_OUTBOX.name, "held_until", schema.TS),
        wh.add_column_sql(schema.AUTOMATION_OUTBOX.name, "pacing", schema.STRING),
    ]


def _audit_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.AUDIT_TABLES]


def _event_identities(wh: Warehouse) -> list[str]:
    """Each resolved event's identity node. Filled by the next identity update: the identity state's
    version 2 marks tables that maintain it, so an older resolution is rebuilt once (and until then
    :func:`touchpoint.identity.event_profiles` computes the mapping from the events, as before)."""
    return [wh.create_table_sql(schema.EVENT_IDENTITIES)]


def _event_facts(wh: Warehouse) -> list[str]:
    """``event_identities`` carries each event's kind, times and properties. The rows stored before are
    kept (their new columns NULL, still read for their node); the identity state's version 3 marks tables
    that fill them, so the next identity update rebuilds an older resolution once."""
    spec = schema.EVENT_IDENTITIES
    return [wh.add_column_sql(spec.name, c, spec.schema[c]) for c in spec.schema.names[2:]]


def _flow_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.FLOW_TABLES]


def _mmm_tables(wh: Warehouse) -> list[str]:
    return [wh.create_table_sql(spec) for spec in schema.MMM_TABLES]


def _score_state(wh: Warehouse) -> list[str]:
    """Each lead score's last run (its watermarks), so the scores job rescores only the touched profiles."""
    return [wh.create_table_sql(spec) for spec in schema.SCORE_STATE_TABLES]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables: events, quarantine, sources, api_keys, spend", _core_tables),
    Migration(2, "keys: revoked_at, last_used_at, previous key with its expiry", _key_lifecycle),
    Migration(
        3,
        "derived tables declared, no longer created on first use: identity, profiles, sessions, "
        "predictions, experiments",
        _derived_tables,
    ),
    Migration(4, "the job runner: job_runs, attribution_results, experiment_results", _job_tables),
    Migration(
        5,
        "audiences and scores: definitions with versions, memberships with history, evaluation state, "
        "lead scores with bands and lifecycle stages",
        _audience_tables,
    ),
    Migration(6, "dashboard users and sign-in sessions", _user_tables),
    Migration(7, "the marketing plan: plans (versioned) and plan_reviews", _plan_tables),
    Migration(
        8,
        "automations: definitions, entries with their arm, the outbox, trigger watermarks, unsubscribes",
        _automation_tables,
    ),
    Migration(9, "consent: an append-only consent_history; unsubscribes copied into it as denials", _consent_history),
    Migration(10, "privacy: erasure requests and the suppression list of erased people", _privacy_tables),
    Migration(11, "the audit log: append-only, each entry chained to the previous one by its hash", _audit_tables),
    Migration(12, "identity: event_identities, each resolved event's most trusted identifier", _event_identities),
    Migration(
        13,
        "automation flows: where each entry of a multi-step flow is (waits, branches, splits) and its path",
        _flow_tables,
    ),
    Migration(
        14, "automation_outbox: held_until and pacing (quiet hours, frequency caps, global control)", _outbox_pacing
    ),
    Migration(15, "the marketing-mix model: mmm_calibrations, lift tests accepted as calibration", _mmm_tables),
    Migration(
        17, "event_identities: each resolved event's type, event, timestamp, received_at and properties", _event_facts
    ),
    Migration(18, "score_state: each lead score's last run, for incremental scoring", _score_state),
)


def migrate(wh: Warehouse) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now.

    The recorded versions are read once first: a warehouse already up to date (every open but the first)
    costs one read, not one transaction per migration (on Spark each read is a job: 1.6 s of a 3-s open).
    Each pending migration then reads them again in its own transaction, since another process may have
    applied it meanwhile."""
    with wh.migration_transaction() as cur:
        cur.run(wh.create_table_sql(schema.MIGRATIONS_TABLE))
        done = {int(row[0]) for row in cur.rows("SELECT version FROM schema_migrations")}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        with wh.migration_transaction() as cur:
            done = {int(row[0]) for row in cur.rows("SELECT version FROM schema_migrations")}
            if migration.version in done:
                continue
            for sql in migration.statements(wh):
                cur.run(sql)
            cur.run(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC).replace(tzinfo=None)],
            )
        applied.append(migration)
    return applied


def pending(wh: Warehouse) -> list[Migration]:
    if not wh.has_table(schema.MIGRATIONS_TABLE.name):
        return list(MIGRATIONS)
    versions = wh.table(schema.MIGRATIONS_TABLE.name).version
    done = {int(v) for v in wh.to_arrow(versions.name("version").as_table()).column("version").to_pylist()}
    return [m for m in MIGRATIONS if m.version not in done]
