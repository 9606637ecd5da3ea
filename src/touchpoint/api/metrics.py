"""``/metrics`` in the Prometheus text format, from an app-local registry (prometheus_client).

Each app has its own :class:`~prometheus_client.CollectorRegistry` (no process-global state, so two apps
in one process, as in tests, never share counters). What is exported:

``touchpoint_events_accepted_total``, ``touchpoint_events_quarantined_total``
    events stored, and input kept in quarantine, by the collector's group commits
``touchpoint_events_suppressed_total``
    events dropped because they come from an erased person (the suppression list; docs/privacy.md)
``touchpoint_events_consent_dropped_total``
    events not stored because their own consent denied analytics (``analytics_denied = drop``)
``touchpoint_events_excluded_from_analytics``
    events stored but left out of every analytics read now (consent to analytics; docs/privacy.md),
    counted in the warehouse at scrape time, at most once a minute
``touchpoint_commit_seconds``
    a histogram of group commit latency (writing one group durably)
``touchpoint_commit_failures_total``, ``touchpoint_queue_events``
    failed group commits; events waiting to be committed now
``touchpoint_job_runs_total{job,status}``, ``touchpoint_job_duration_seconds{job}``
    finished job runs by outcome, and their durations
``touchpoint_job_failures{job}``, ``touchpoint_job_running{job}``, ``touchpoint_job_degraded{job}``
    consecutive failures, whether a run is under way, whether the job is failing or overdue
``touchpoint_resident_memory_bytes``, ``touchpoint_memory_ceiling_bytes``, ``touchpoint_memory_refusals_total``
    the server's resident memory, its ceiling (``memory_ceiling_mb``), and collector requests answered 429
    at it (docs/configuration.md, Limits)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from touchpoint.api.memory import MemoryCeiling, resident_bytes

if TYPE_CHECKING:
    from touchpoint.collect.committer import Collector as EventCollector
    from touchpoint.collect.store import WriteResult
    from touchpoint.config import Settings
    from touchpoint.jobs import Job, JobRunner
    from touchpoint.jobs.runlog import Run
    from touchpoint.warehouse import Warehouse

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class _JobStates(Collector):
    """Job gauges read from the runner at scrape time."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[GaugeMetricFamily]:
        failures = GaugeMetricFamily("touchpoint_job_failures", "Consecutive failed runs of a job", labels=["job"])
        running = GaugeMetricFamily("touchpoint_job_running", "1 while a run of the job is under way", labels=["job"])
        for state in self.runner.states():
            failures.add_metric([state.job.name], state.failures)
            running.add_metric([state.job.name], 1 if state.running is not None else 0)
        yield failures
        yield running


class _Committer(Collector):
    """Commit failures read from the committer's own count at scrape time."""

    def __init__(self, committer: EventCollector) -> None:
        self.committer = committer

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "touchpoint_commit_failures", "Group commits that failed", value=self.committer.stats.failed_commits
        )


class _Memory(Collector):
    """The process's resident memory, its ceiling and the requests refused at it (:mod:`touchpoint.api.memory`)."""

    def __init__(self, ceiling: MemoryCeiling) -> None:
        self.ceiling = ceiling

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "touchpoint_resident_memory_bytes", "Resident memory of the server process", value=resident_bytes() or 0
        )
        yield GaugeMetricFamily(
            "touchpoint_memory_ceiling_bytes",
            "memory_ceiling_mb in bytes (0: none)",
            value=self.ceiling.ceiling_bytes or 0,
        )
        yield CounterMetricFamily(
            "touchpoint_memory_refusals",
            "Collector requests answered 429 because the server was at its memory ceiling",
            value=self.ceiling.refused,
        )


class _AnalyticsExcluded(Collector):
    """Events left out of analytics (:func:`touchpoint.privacy.analytics.excluded`), counted at most once per
    ``every`` seconds: the count is a warehouse query, and a scrape must stay cheap."""

    def __init__(self, warehouse: Warehouse, settings: Settings, every: float = 60.0) -> None:
        self.warehouse, self.settings, self.every = warehouse, settings, every
        self._at = -every
        self._value = 0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from touchpoint.privacy import analytics

        with self._lock:
            if time.monotonic() - self._at >= self.every:
                try:
                    self._value = analytics.excluded(self.warehouse, self.settings)["excluded"]
                except Exception:  # a scrape never fails because the warehouse is busy; the last value stands
                    logging.getLogger(__name__).warning("counting the events excluded from analytics failed")
                self._at = time.monotonic()
        yield GaugeMetricFamily(
            "touchpoint_events_excluded_from_analytics",
            "Events stored but left out of analytics (their analytics consent is denied)",
            value=self._value,
        )


class Metrics:
    """The app's metrics; :meth:`attach` wires the committer and the job runner to them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter("touchpoint_events_accepted", "Events stored by the collector", registry=r)
        self.quarantined = Counter(
            "touchpoint_events_quarantined", "Input kept in quarantine by the collector", registry=r
        )
        self.suppressed = Counter(
            "touchpoint_events_suppressed", "Events dropped because they come from an erased person", registry=r
        )
        self.consent_dropped = Counter(
            "touchpoint_events_consent_dropped",
            "Events not stored because their own consent denied analytics (analytics_denied = drop)",
            registry=r,
        )
        self.commit_seconds = Histogram(
            "touchpoint_commit_seconds", "Group commit latency", buckets=COMMIT_BUCKETS, registry=r
        )
        self.queue = Gauge("touchpoint_queue_events", "Events waiting to be committed", registry=r)
        self.job_runs = Counter("touchpoint_job_runs", "Finished job runs", ["job", "status"], registry=r)
        self.job_seconds = Histogram(
            "touchpoint_job_duration_seconds", "Job run duration", ["job"], buckets=JOB_BUCKETS, registry=r
        )
        self.degraded = Gauge("touchpoint_job_degraded", "1 when the job is failing or overdue", ["job"], registry=r)

    def watch_memory(self, ceiling: MemoryCeiling) -> None:
        self.registry.register(_Memory(ceiling))

    def attach(self, committer: EventCollector, runner: JobRunner | None) -> None:
        self.queue.set_function(lambda: committer.queued_events)
        committer.listeners.append(self._on_commit)
        self.registry.register(_Committer(committer))
        if runner is not None:
            runner.listeners.append(self._on_run)
            self.registry.register(_JobStates(runner))
            for job in runner.jobs:
                self.degraded.labels(job.name).set(0)

    def _on_commit(self, result: WriteResult, seconds: float) -> None:
        self.accepted.inc(result.stored)
        self.quarantined.inc(result.quarantined)
        self.suppressed.inc(result.suppressed)
        self.consent_dropped.inc(result.consent_dropped)
        self.commit_seconds.observe(seconds)

    def watch_analytics(self, warehouse: Warehouse, settings: Settings) -> None:
        """Export how many stored events analytics leaves out (``touchpoint_events_excluded_from_analytics``)."""
        self.registry.register(_AnalyticsExcluded(warehouse, settings))

    def _on_run(self, job: Job, run: Run) -> None:
        self.job_runs.labels(job.name, run.status).inc()
        if run.seconds is not None:
            self.job_seconds.labels(job.name).observe(run.seconds)

    def set_degraded(self, degraded: list[dict[str, Any]], jobs: list[str]) -> None:
        names = {d["name"] for d in degraded}
        for name in jobs:
            self.degraded.labels(name).set(1 if name in names else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
