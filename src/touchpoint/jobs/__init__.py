"""The job runner of ``touchpoint serve``: keeps derived tables and models current (docs/jobs.md).

The pieces: :mod:`~touchpoint.jobs.definitions` (what a job is, the registry :data:`JOBS`,
:func:`register`), :mod:`~touchpoint.jobs.builtin` (profiles, sessions, attribution, experiments,
predictions, mmm, retention, ...), :mod:`~touchpoint.jobs.runner` (threads, no overlap, retries with backoff),
:mod:`~touchpoint.jobs.runlog` (the ``job_runs`` table) and :mod:`~touchpoint.jobs.status`
(staleness, degraded jobs). No library package imports this one; it imports the workflows.

>>> sorted(JOBS)  # doctest: +NORMALIZE_WHITESPACE
['attribution', 'audiences', 'automations', 'deliveries', 'experiments', 'flows',
 'mmm', 'predictions', 'profiles', 'retention', 'scores', 'scores_full', 'sessions']
"""

from __future__ import annotations

from touchpoint.jobs import builtin as _builtin  # registers the built-in jobs
from touchpoint.jobs.definitions import JOBS, Interrupted, Job, JobContext, Skip, configured, get, register
from touchpoint.jobs.runner import JobRunner, execute
from touchpoint.jobs.status import one, overview

__all__ = [
    "JOBS",
    "Interrupted",
    "Job",
    "JobContext",
    "JobRunner",
    "Skip",
    "configured",
    "execute",
    "get",
    "one",
    "overview",
    "register",
]

del _builtin
