"""The uvicorn server of ``touchpoint serve``, with SIGTERM as the expected way to stop.

On SIGTERM (and SIGINT) uvicorn stops accepting connections, answers the requests in flight, then runs
the app's lifespan shutdown: the job runner is told to stop, the group committer commits every queued
event, running jobs finish or stop at their next step, the warehouse closes. uvicorn then re-raises the
signal so the process dies of it; for SIGTERM this server exits 0 instead, which is what process
managers (systemd, Kubernetes) read as a clean stop.
"""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn


class GracefulServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)  # a clean stop: exit 0, not "killed by SIGTERM"
