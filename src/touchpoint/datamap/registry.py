"""What enters, what runs and what leaves: the parts of the data-flow map that code does not already declare.

Tables come from :mod:`touchpoint.warehouse.schema`, jobs (with the tables they read and write) from
:data:`touchpoint.jobs.JOBS`, channels from :data:`touchpoint.automations.channels.CHANNELS`. What is
declared here is the rest: the **sources** (every surface that writes a table: the collector, the file
importers, the API, the dashboard and the CLI), the **models** the jobs and commands fit, and the
**destinations** that send personal data out (one per channel, plus exports). Each source names the
HTTP routes it answers, so a test can walk the app: a route that changes data and is named nowhere here
fails it, as do a table nobody writes, a job or a channel the map does not show.

>>> sorted(MODELS)
['attribution', 'clv', 'mmm', 'propensity', 'replenishment']
>>> next(s for s in SOURCES if s.name == "collector").writes
('events', 'quarantine', 'consent_history')
"""

from __future__ import annotations

from dataclasses import dataclass

from touchpoint.collect.spec import EVENT_TYPES, SHORT_PATHS
from touchpoint.warehouse.schema import all_tables

#: The kinds of source, in the order the map lists them.
SOURCE_KINDS = ("collector", "file", "api", "dashboard", "cli", "system")


@dataclass(frozen=True)
class Source:
    """A way data enters a table: an endpoint, a file importer, a definition saved by hand, the runner itself.

    ``routes`` are ``"METHOD /path"`` of the HTTP API or the dashboard; ``commands`` the CLI commands;
    ``runs`` the jobs or models it runs by hand (``touchpoint jobs run``, ``POST /v1/profiles/rebuild``).
    ``personal`` says whether what it writes is about people (events, identities), as opposed to
    configuration or aggregates.
    """

    name: str
    kind: str
    doc: str
    writes: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    personal: bool = False


@dataclass(frozen=True)
class Model:
    """A statistical model: the tables it reads, the tables it writes, the files it keeps, its purpose."""

    name: str
    label: str
    doc: str
    reads: tuple[str, ...]
    writes: tuple[str, ...] = ()
    files: str = ""  # what it keeps under the data directory, if anything
    purpose: str = "analytics"


@dataclass(frozen=True)
class Destination:
    """Where personal data leaves: a channel of the automations, or an export.

    ``channel`` names the entry of :data:`~touchpoint.automations.channels.CHANNELS` it stands for;
    ``sent_by`` the jobs that send through it; ``purposes`` the consent purposes it is used for
    (``"per step"``: each automation step names its own).
    """

    name: str
    label: str
    doc: str
    reads: tuple[str, ...]
    sends: str
    purposes: str
    channel: str | None = None
    sent_by: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()


_COLLECTOR_ROUTES = tuple(f"POST /v1/{k}" for k in (*EVENT_TYPES, "batch")) + tuple(
    f"POST /v1/{k}" for k in (*SHORT_PATHS, "b")
)

SOURCES: tuple[Source, ...] = (
    Source(
        "collector",
        "collector",
        "The Segment-compatible tracking API: identify, track, page, screen, group, alias and batch "
        "(analytics.js, server libraries); invalid input goes to quarantine with its reason.",
        writes=("events", "quarantine", "consent_history"),
        routes=_COLLECTOR_ROUTES,
        personal=True,
    ),
    Source(
        "event_files",
        "file",
        "Event files (JSON lines, CSV, Parquet) through the collector's validation.",
        writes=("events", "quarantine", "consent_history"),
        commands=("touchpoint import events",),
        personal=True,
    ),
    Source(
        "order_files",
        "file",
        "Order files (one row per order line), stored as 'Order Completed' events.",
        writes=("events", "quarantine", "consent_history"),
        commands=("touchpoint import orders",),
        personal=True,
    ),
    Source(
        "spend_files",
        "file",
        "Ad spend per day and channel (aggregates, no person).",
        writes=("spend", "quarantine"),
        commands=("touchpoint import spend",),
    ),
    Source(
        "quarantine_replay",
        "api",
        "Quarantined input validated again; what passes becomes events.",
        writes=("events", "quarantine", "consent_history"),
        routes=("POST /v1/quarantine/replay", "POST /data/quarantine/replay"),
        commands=("touchpoint quarantine replay",),
        personal=True,
    ),
    Source(
        "experiment_exposures",
        "api",
        "Arms assigned by the API; with expose, the exposures are recorded as events.",
        writes=("events",),
        routes=("POST /v1/experiments/{key}/assign",),
        commands=("touchpoint experiment assign",),
        personal=True,
    ),
    Source(
        "unsubscribe",
        "api",
        "The unsubscribe link of every email (RFC 8058 one-click): a denial of the email's purpose.",
        writes=("consent_history",),
        routes=("POST /v1/unsubscribe",),
        personal=True,
    ),
    Source(
        "consent_statements",
        "api",
        "Consent per purpose recorded by the API, the CLI or the dashboard (events bring theirs via the collector).",
        writes=("consent_history",),
        routes=("POST /v1/consent", "POST /customers/{profile_id}/consent"),
        commands=("touchpoint privacy consent set",),
        personal=True,
    ),
    Source(
        "email_feedback",
        "api",
        "Bounces and spam complaints from the mail provider: complaints and hard bounces deny marketing_email.",
        writes=("consent_history",),
        routes=("POST /v1/email/events",),
        commands=("touchpoint privacy bounces import",),
        personal=True,
    ),
    Source(
        "identity_decisions",
        "api",
        "Merges and splits decided by a person (an override of the identity rules).",
        writes=("identity_overrides",),
        routes=("POST /v1/profiles/{profile}/split", "POST /v1/profiles/merge"),
        commands=("touchpoint profiles split", "touchpoint profiles merge"),
        runs=("profiles",),
        personal=True,
    ),
    Source(
        "source_keys",
        "cli",
        "Event sources and API keys (hashes only); the server records when a key was last used.",
        writes=("sources", "api_keys"),
        routes=(
            "POST /v1/sources/{name}/rotate",
            "POST /v1/sources/{name}/revoke",
            "POST /v1/keys/{name}/rotate",
            "POST /v1/keys/{name}/revoke",
        ),
        commands=("touchpoint sources create", "touchpoint keys create", "touchpoint keys rotate"),
    ),
    Source(
        "dashboard_users",
        "dashboard",
        "Dashboard staff accounts and their sign-in sessions (not customers).",
        writes=("users", "web_sessions"),
        routes=("POST /users", "POST /users/{name}/disable", "POST /signin", "POST /signout"),
        commands=("touchpoint users create", "touchpoint users disable"),
    ),
    Source(
        "experiment_definitions",
        "api",
        "Experiments and holdout groups as defined by a person; their splits.",
        writes=("experiments",),
        routes=("POST /v1/experiments", "POST /v1/holdouts", "PUT /v1/experiments/{key}/weights"),
        commands=("touchpoint experiment create", "touchpoint experiment weights", "touchpoint experiment stop"),
    ),
    Source(
        "plans",
        "api",
        "Marketing plans and their quarterly reviews (every save a new version).",
        writes=("plans", "plan_reviews"),
        routes=("POST /v1/plans", "POST /v1/plans/{plan_id}/reviews"),
        commands=("touchpoint plan create", "touchpoint plan review"),
    ),
    Source(
        "audience_definitions",
        "api",
        "Audiences saved from the API, the dashboard's builder or the CLI; saving computes the members.",
        writes=("audiences", "audience_versions", "audience_memberships", "audience_state"),
        routes=(
            "POST /v1/audiences",
            "PUT /v1/audiences/{name}",
            "DELETE /v1/audiences/{name}",
            "POST /audiences/save",
        ),
        commands=("touchpoint audiences create", "touchpoint audiences delete"),
        runs=("audiences",),
    ),
    Source(
        "score_definitions",
        "api",
        "Lead scores as defined by a person, and stages moved back by hand.",
        writes=("scores", "score_results", "score_band_entries", "score_stages"),
        routes=(
            "POST /v1/scores",
            "POST /v1/scores/{name}/profiles/{profile_id}/demote",
            "POST /customers/{profile_id}/scores/{name}/demote",
        ),
        commands=("touchpoint scores create", "touchpoint scores demote"),
        runs=("scores",),
    ),
    Source(
        "automation_definitions",
        "api",
        "Automations as defined by a person; pausing, resuming and re-queuing dead letters.",
        writes=("automations", "automation_state", "automation_outbox"),
        routes=(
            "POST /v1/automations",
            "POST /v1/automations/{name}/pause",
            "POST /v1/automations/{name}/resume",
            "POST /v1/automations/{name}/replay",
        ),
        commands=("touchpoint automations create", "touchpoint automations pause", "touchpoint automations replay"),
    ),
    Source(
        "mmm_calibrations",
        "api",
        "Lift tests (experiments, automations' holdouts) accepted as calibration of the marketing-mix model, "
        "and withdrawn; accepting or withdrawing refits the model unless told not to.",
        writes=("mmm_calibrations",),
        routes=("POST /v1/mmm/calibrate", "POST /v1/mmm/calibrations/{calibration_id}/withdraw"),
        commands=("touchpoint mmm calibrate", "touchpoint mmm calibrations withdraw"),
        runs=("mmm",),
    ),
    Source(
        "propensity_runs",
        "cli",
        "Propensity models fitted and scored by hand (not a job): P(event within a window) per profile.",
        commands=("touchpoint predict propensity",),
        runs=("propensity",),
    ),
    Source(
        "privacy_erasures",
        "api",
        "Erasure requests (docs/privacy.md): every personal row of the person goes, their identifiers' keyed "
        "hashes go on the suppression list (the collector counts the events it drops there), the request is logged.",
        writes=("privacy_suppressions", "privacy_erasures"),
        routes=("POST /v1/privacy/erase",),
        commands=("touchpoint privacy erase",),
    ),
    Source(
        "manual_runs",
        "api",
        "Jobs run by hand from the API or the CLI (the same workflow as the runner's).",
        routes=(
            "POST /v1/jobs/{name}/run",
            "POST /v1/profiles/rebuild",
            "POST /v1/profiles/update",
            "POST /v1/mmm/fit",
            "POST /v1/audiences/refresh",
            "POST /v1/audiences/{name}/refresh",
            "POST /v1/scores/{name}/run",
        ),
        commands=(
            "touchpoint jobs run",
            "touchpoint profiles rebuild",
            "touchpoint profiles update",
            "touchpoint predict clv",
            "touchpoint predict replenishment",
            "touchpoint mmm fit",
            "touchpoint audiences refresh",
            "touchpoint scores run",
        ),
        runs=("profiles", "clv", "replenishment", "mmm", "audiences", "scores"),
    ),
    Source(
        "unsubscribes_before_consent",
        "system",
        "Unsubscribes recorded before the consent history existed; migration 9 copied them into "
        "consent_history as denials and nothing writes this table any more.",
        writes=("unsubscribes",),
        personal=True,
    ),
    Source(
        "audit",
        "system",
        "Every access to personal data through the API, the CLI and the dashboard, and every privacy, key "
        "or user change: who, what, the subject's id, how many rows (docs/privacy.md).",
        writes=("audit_log",),
    ),
    Source(
        "job_runner",
        "system",
        "The job runner of `touchpoint serve` logs every run; migrations record the schema version.",
        writes=("job_runs", "schema_migrations"),
    ),
)

#: POST routes that change nothing stored: they compute from the request or read the warehouse.
READ_ONLY_ROUTES: tuple[str, ...] = (
    "POST /v1/audiences/preview",
    "POST /audiences/preview",
    "POST /v1/query",
    "POST /v1/attribution/paths",
    "POST /v1/experiments/{key}/analysis",
    "POST /v1/experiments/analysis",
    "POST /v1/mmm/plan",
    "POST /v1/mmm/case",
    "POST /v1/mmm/case.pdf",
)

MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model(
            "clv",
            "CLV: BG/NBD + Gamma-Gamma",
            "Purchases per customer from the orders: expected purchases, P(alive), spend per order, CLV.",
            reads=("events",),
            writes=("predictions", "prediction_runs"),
            purpose="personalisation",
        ),
        Model(
            "replenishment",
            "Replenishment due dates",
            "Each customer's usual interval between orders of a product: when the next one is due.",
            reads=("events",),
            writes=("replenishment",),
            purpose="personalisation",
        ),
        Model(
            "propensity",
            "Propensity (gradient boosting)",
            "P(an event within a window) per profile from its traits and recent events.",
            reads=("events", "profiles", "profile_traits"),
            writes=("propensity_scores",),
            purpose="personalisation",
        ),
        Model(
            "attribution",
            "Attribution: Markov, Shapley, heuristics",
            "Credit for each conversion across the channels of the journeys that led to it; CPA and ROAS.",
            reads=("events", "spend"),
            writes=("attribution_results",),
        ),
        Model(
            "mmm",
            "Marketing-mix model (Bayesian)",
            "Weekly KPI against spend per channel with adstock and saturation; aggregates only.",
            reads=("events", "spend", "mmm_calibrations"),
            files="<data_dir>/mmm: the fitted model (weekly aggregates, no person)",
        ),
    )
}

#: The purpose each job serves (docs/privacy.md, "Consent"); a test fails when a job has none.
JOB_PURPOSES: dict[str, str] = {
    "profiles": "personalisation",
    "sessions": "analytics",
    "attribution": "analytics",
    "experiments": "analytics",
    "predictions": "personalisation",
    "mmm": "analytics",
    "audiences": "personalisation",
    "scores": "personalisation",
    "scores_full": "personalisation",
    "automations": "per step",
    "deliveries": "per step",
    "flows": "per step",
    "retention": "storage limitation",  # the retention job of issue 21 (deletes rows past their rule)
}

#: Jobs that only delete rows from the tables they name (retention): drawn as ``deletes`` edges, and a
#: table they touch stays where its writers put it (events stay raw).
DELETING_JOBS: frozenset[str] = frozenset({"retention"})

DESTINATIONS: tuple[Destination, ...] = (
    Destination(
        "email",
        "Email (SMTP)",
        "Messages of automation steps (send_email) to the profile's own address.",
        reads=("automation_outbox", "profiles", "profile_traits", "predictions"),
        sends="email address, rendered subject and text (traits, predictions), an unsubscribe link",
        purposes="per step (e.g. marketing_email; 'transactional' needs none)",
        channel="email",
        sent_by=("automations", "flows", "deliveries"),
    ),
    Destination(
        "webhook",
        "Webhooks (HTTPS)",
        "Automation steps (webhook) posting to a URL of the definer's choice, e.g. a CRM's lead hand-off.",
        reads=("automation_outbox", "profiles", "profile_traits", "predictions"),
        sends="the rendered JSON body: profile id, user id, traits and predictions named in the template",
        purposes="per step (e.g. sharing)",
        channel="webhook",
        sent_by=("automations", "flows", "deliveries"),
    ),
    Destination(
        "audience_export",
        "Audience export (CSV, JSON lines)",
        "An audience's members, for an ad platform or a spreadsheet.",
        reads=("audience_memberships", "profiles"),
        sends="profile_id, user_id, email, entered_at of each member",
        purposes="none declared by the export (the audience's consent rule selects who is in it)",
        routes=("GET /v1/audiences/{name}/export",),
        commands=("touchpoint audiences export",),
    ),
    Destination(
        "privacy_export",
        "Access export (JSON, ZIP)",
        "Everything held about one person, for that person (GDPR Art. 15 and 20; docs/privacy.md).",
        reads=tuple(t.name for t in all_tables() if t.personal is not None and t.personal.is_personal),
        sends="every row of every personal table that holds the person, with the logic and sources behind them",
        purposes="the person's own request (none needed)",
        routes=("GET /v1/privacy/export", "POST /v1/privacy/export"),
        commands=("touchpoint privacy export",),
    ),
)
